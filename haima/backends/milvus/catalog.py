"""The catalog: Haima's tenants, databases and collections, kept in one Milvus
collection of the Milvus database Haima was given (`haima_catalog`).

Haima's names are free text (a collection may be called `知识库-v2`) while Milvus's
collection names are `[A-Za-z0-9_]`; so each Haima collection's records live in a
Milvus collection named by its id (`haima_<32 hex digits>`), and the catalog maps names to
ids. Renaming a collection is then a catalog write, and tenants and databases work on
deployments that allow one Milvus database (Zilliz Cloud's free tier, milvus-lite).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from haima.backends.milvus.expressions import string_literal
from haima.types import CollectionModel

CATALOG_COLLECTION = "haima_catalog"
#: Milvus collections need a vector field; the catalog's holds nothing.
_PLACEHOLDER_VECTOR = [0.0, 0.0]
_KEY_MAX = 2048


def records_collection_name(collection_id: str) -> str:
    return "haima_" + collection_id.replace("-", "")


@dataclass(frozen=True)
class CatalogCollection:
    """A collection as the catalog holds it."""

    id: str
    tenant: str
    database: str
    name: str
    metadata: dict[str, Any] | None
    configuration: dict[str, Any]
    dimension: int | None
    created: int
    #: The Milvus collection holding the records: `haima_<id hex>`, or a successor made
    #: when a configuration change needed a new schema.
    milvus_name: str = ""

    def __post_init__(self) -> None:
        if not self.milvus_name:
            object.__setattr__(self, "milvus_name", records_collection_name(self.id))

    def model(self) -> CollectionModel:
        return CollectionModel(
            id=self.id,
            name=self.name,
            tenant=self.tenant,
            database=self.database,
            metadata=self.metadata,
            configuration=self.configuration,
            dimension=self.dimension,
        )


class Catalog:
    """Reads and writes of the catalog collection (strongly consistent: another client
    sees a collection as soon as it is created)."""

    def __init__(self, pymilvus: Any, client: Any) -> None:
        self._client = client
        if not client.has_collection(CATALOG_COLLECTION):
            self._create(pymilvus)
        client.load_collection(CATALOG_COLLECTION)

    def _create(self, pymilvus: Any) -> None:
        data_type = pymilvus.DataType
        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("key", data_type.VARCHAR, is_primary=True, max_length=_KEY_MAX)
        schema.add_field("kind", data_type.VARCHAR, max_length=16)
        schema.add_field("tenant", data_type.VARCHAR, max_length=1024)
        schema.add_field("database", data_type.VARCHAR, max_length=1024)
        schema.add_field("name", data_type.VARCHAR, max_length=1024)
        schema.add_field("body", data_type.VARCHAR, max_length=65_535)
        schema.add_field("created", data_type.INT64)
        schema.add_field("placeholder", data_type.FLOAT_VECTOR, dim=len(_PLACEHOLDER_VECTOR))
        params = self._client.prepare_index_params()
        params.add_index("placeholder", index_type="FLAT", metric_type="L2")
        self._client.create_collection(
            CATALOG_COLLECTION, schema=schema, index_params=params, consistency_level="Strong"
        )

    # -- rows --------------------------------------------------------------------------------

    def _put(
        self,
        key: list[str],
        kind: str,
        tenant: str,
        database: str,
        name: str,
        body: dict[str, Any],
        created: int | None = None,
    ) -> None:
        self._client.upsert(
            CATALOG_COLLECTION,
            [
                {
                    "key": json.dumps(key, ensure_ascii=False),
                    "kind": kind,
                    "tenant": tenant,
                    "database": database,
                    "name": name,
                    "body": json.dumps(body, ensure_ascii=False),
                    "created": created if created is not None else time.time_ns(),
                    "placeholder": _PLACEHOLDER_VECTOR,
                }
            ],
        )

    def _rows(self, expression: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._client.query(
            CATALOG_COLLECTION,
            filter=expression,
            output_fields=["key", "kind", "tenant", "database", "name", "body", "created"],
        )
        return sorted(rows, key=lambda r: (r["created"], r["key"]))

    def _delete(self, key: list[str]) -> None:
        self._client.delete(
            CATALOG_COLLECTION,
            filter=f"key == {string_literal(json.dumps(key, ensure_ascii=False))}",
        )

    # -- tenants and databases -------------------------------------------------------------

    def put_tenant(self, tenant: str) -> None:
        if not self.has_tenant(tenant):
            self._put(["tenant", tenant], "tenant", tenant, "", "", {})

    def has_tenant(self, tenant: str) -> bool:
        return bool(self._rows(f'kind == "tenant" and tenant == {string_literal(tenant)}'))

    def tenants(self) -> list[str]:
        return [r["tenant"] for r in self._rows('kind == "tenant"')]

    def put_database(self, tenant: str, database: str) -> None:
        self._put(["database", tenant, database], "database", tenant, database, "", {})

    def databases(self, tenant: str) -> list[str]:
        rows = self._rows(f'kind == "database" and tenant == {string_literal(tenant)}')
        return [r["database"] for r in rows]

    def delete_database(self, tenant: str, database: str) -> None:
        self._delete(["database", tenant, database])

    def delete_tenant(self, tenant: str) -> None:
        self._delete(["tenant", tenant])

    # -- collections ---------------------------------------------------------------------------

    def put_collection(self, c: CatalogCollection) -> None:
        body = {
            "metadata": c.metadata,
            "configuration": c.configuration,
            "dimension": c.dimension,
            "milvus_name": c.milvus_name,
        }
        self._put(["collection", c.id], "collection", c.tenant, c.database, c.name, body, c.created)

    def collections(
        self, tenant: str, database: str, name: str | None = None
    ) -> list[CatalogCollection]:
        expression = (
            f'kind == "collection" and tenant == {string_literal(tenant)} '
            f"and database == {string_literal(database)}"
        )
        if name is not None:
            expression += f" and name == {string_literal(name)}"
        return [self._collection(r) for r in self._rows(expression)]

    def collection_by_id(self, collection_id: str) -> CatalogCollection | None:
        key = json.dumps(["collection", collection_id])
        rows = self._rows(f"key == {string_literal(key)}")
        return self._collection(rows[0]) if rows else None

    def all_collections(self) -> list[CatalogCollection]:
        return [self._collection(r) for r in self._rows('kind == "collection"')]

    def delete_collection(self, collection_id: str) -> None:
        self._delete(["collection", collection_id])

    @staticmethod
    def _collection(row: dict[str, Any]) -> CatalogCollection:
        body = json.loads(row["body"])
        return CatalogCollection(
            id=json.loads(row["key"])[1],
            tenant=row["tenant"],
            database=row["database"],
            name=row["name"],
            metadata=body["metadata"],
            configuration=body["configuration"],
            dimension=body["dimension"],
            created=row["created"],
            milvus_name=body.get("milvus_name", ""),
        )
