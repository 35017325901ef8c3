"""Clients: one class over any Backend, and constructors for each kind of store."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from haima import validation
from haima.backends.base import Backend, CollectionModel
from haima.backends.local import LocalBackend
from haima.collection import Collection
from haima.config import parse_configuration
from haima.embeddings import EmbeddingFunction, from_spec, spec_of
from haima.embeddings.base import model_identity
from haima.errors import InvalidArgumentError
from haima.settings import Settings
from haima.storage.sqlite import DEFAULT_DATABASE, DEFAULT_TENANT


class _DefaultEmbedding:
    """Marker for 'the stored function, else the default model'."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _DefaultEmbedding()
EmbeddingArg = EmbeddingFunction | None | _DefaultEmbedding


def default_embedding_function() -> EmbeddingFunction | None:
    """The packaged offline model, when the embeddings layer provides one."""
    from haima import embeddings

    factory = getattr(embeddings, "default_embedding_function", None)
    return factory() if factory is not None else None


class Client:
    """The Chroma-style client. `Client()` keeps everything in memory; see
    `PersistentClient` for a database on disk."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        tenant: str = DEFAULT_TENANT,
        database: str = DEFAULT_DATABASE,
        backend: Backend | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._backend: Backend = (
            backend if backend is not None else LocalBackend(None, self.settings)
        )
        self.tenant = tenant
        self.database = database
        # Close (and snapshot indexes) when the client is collected or the process exits.
        self._finalizer = weakref.finalize(self, self._backend.close)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Write index snapshots and release the store. Idempotent."""
        self._finalizer()

    # -- server-ish --------------------------------------------------------------------------

    def heartbeat(self) -> int:
        """Nanoseconds since the epoch, as Chroma answers."""
        return self._backend.heartbeat()

    def reset(self) -> bool:
        """Delete every collection, database and tenant. Needs Settings(allow_reset=True)."""
        self._backend.reset()
        return True

    # -- tenants and databases ----------------------------------------------------------------

    def create_tenant(self, name: str) -> None:
        self._backend.create_tenant(_namespace(name, "tenant"))

    def create_database(self, name: str, tenant: str | None = None) -> None:
        self._backend.create_database(tenant or self.tenant, _namespace(name, "database"))

    def list_databases(self, tenant: str | None = None) -> list[str]:
        return self._backend.list_databases(tenant or self.tenant)

    def delete_database(self, name: str, tenant: str | None = None) -> None:
        self._backend.delete_database(tenant or self.tenant, name)

    def set_database(self, database: str, tenant: str | None = None) -> None:
        """Work in another database (it must exist)."""
        self._backend.get_database(tenant or self.tenant, database)
        self.tenant = tenant or self.tenant
        self.database = database

    # -- collections ---------------------------------------------------------------------------

    def create_collection(
        self,
        name: str,
        configuration: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        embedding_function: EmbeddingArg = DEFAULT,
        get_or_create: bool = False,
    ) -> Collection:
        validation.collection_name(name)
        md = validation.collection_metadata(metadata)
        fn = (
            default_embedding_function()
            if isinstance(embedding_function, _DefaultEmbedding)
            else embedding_function
        )
        config = parse_configuration(configuration, md)
        spec = spec_of(fn) if fn is not None else None
        if spec is not None and config.embedding_function is None:
            config = type(config)(metric=config.metric, index=config.index, embedding_function=spec)
        model = self._backend.create_collection(
            self.tenant, self.database, name, md, config.to_json(), get_or_create
        )
        if get_or_create:
            return self._collection(model, embedding_function)
        return Collection(self._backend, model, fn)

    def get_or_create_collection(
        self,
        name: str,
        configuration: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        embedding_function: EmbeddingArg = DEFAULT,
    ) -> Collection:
        return self.create_collection(
            name, configuration, metadata, embedding_function, get_or_create=True
        )

    def get_collection(self, name: str, embedding_function: EmbeddingArg = DEFAULT) -> Collection:
        validation.collection_name(name)
        model = self._backend.get_collection(self.tenant, self.database, name)
        return self._collection(model, embedding_function)

    def list_collections(
        self, limit: int | None = None, offset: int | None = None
    ) -> list[Collection]:
        models = self._backend.list_collections(
            self.tenant,
            self.database,
            validation.non_negative_int(limit, "limit"),
            validation.non_negative_int(offset, "offset"),
        )
        return [self._collection(m, DEFAULT) for m in models]

    def count_collections(self) -> int:
        return self._backend.count_collections(self.tenant, self.database)

    def delete_collection(self, name: str) -> None:
        validation.collection_name(name)
        self._backend.delete_collection(self.tenant, self.database, name)

    def _collection(self, model: CollectionModel, embedding_function: EmbeddingArg) -> Collection:
        """A Collection whose function is the one given or rebuilt from the stored spec."""
        stored = model.configuration.get("embedding_function")
        if isinstance(embedding_function, _DefaultEmbedding):
            fn = _rebuild(stored) if stored else None
        else:
            fn = embedding_function
            given = spec_of(fn) if fn is not None else None
            if stored and given and _identity(given) != _identity(stored):
                raise InvalidArgumentError(
                    f"embedding_function: collection {model.name!r} was created with "
                    f"{_identity(stored)}, not {_identity(given)}; vectors from another model "
                    "are not comparable"
                )
        return Collection(self._backend, model, fn)


def _rebuild(spec: Mapping[str, Any]) -> EmbeddingFunction | None:
    try:
        return from_spec(dict(spec))
    except InvalidArgumentError:
        return None  # e.g. a user function: the caller must pass it again


def _identity(spec: Mapping[str, Any]) -> str:
    return model_identity(dict(spec))


def _namespace(name: Any, field: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgumentError(f"{field}: expected a non-empty name, got {name!r}")
    return name


class PersistentClient(Client):
    """A client over a database directory: `haima.sqlite3` plus index snapshots."""

    def __init__(
        self,
        path: str | Path = "./haima_data",
        settings: Settings | None = None,
        *,
        tenant: str = DEFAULT_TENANT,
        database: str = DEFAULT_DATABASE,
    ) -> None:
        settings = settings or Settings()
        super().__init__(
            settings, tenant=tenant, database=database, backend=LocalBackend(Path(path), settings)
        )
        self.path = Path(path)
