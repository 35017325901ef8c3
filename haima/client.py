"""Clients: one class over any Backend, and constructors for each kind of store."""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from haima import validation
from haima.backends.base import Backend, CollectionModel
from haima.backends.local import LocalBackend
from haima.backends.milvus.uri import is_milvus_target, milvus_uri
from haima.collection import Collection
from haima.config import new_collection_settings
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
        self._backend.create_tenant(validation.namespace_name(name, "tenant"))

    def create_database(self, name: str, tenant: str | None = None) -> None:
        self._backend.create_database(
            tenant or self.tenant, validation.namespace_name(name, "database")
        )

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
        *,
        force: bool = False,
    ) -> Collection:
        fn = (
            default_embedding_function()
            if isinstance(embedding_function, _DefaultEmbedding)
            else embedding_function
        )
        spec = spec_of(fn) if fn is not None else None
        md, config = new_collection_settings(name, configuration, metadata, spec)
        model = self._backend.create_collection(
            self.tenant, self.database, name, md, config, get_or_create
        )
        if get_or_create:
            return self._collection(model, embedding_function, force)
        return Collection(self._backend, model, fn, owner=self)

    def get_or_create_collection(
        self,
        name: str,
        configuration: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        embedding_function: EmbeddingArg = DEFAULT,
        *,
        force: bool = False,
    ) -> Collection:
        return self.create_collection(
            name, configuration, metadata, embedding_function, get_or_create=True, force=force
        )

    def get_collection(
        self, name: str, embedding_function: EmbeddingArg = DEFAULT, *, force: bool = False
    ) -> Collection:
        """The collection, with `embedding_function` or else the one it was created with.
        A function of another model than the stored one is refused (its vectors are not
        comparable) unless `force=True`, for when you know better (e.g. the same model
        served another way)."""
        validation.collection_name(name)
        model = self._backend.get_collection(self.tenant, self.database, name)
        return self._collection(model, embedding_function, force)

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

    def _collection(
        self, model: CollectionModel, embedding_function: EmbeddingArg, force: bool = False
    ) -> Collection:
        """A Collection whose function is the one given or rebuilt from the stored spec."""
        stored = model.configuration.get("embedding_function")
        if isinstance(embedding_function, _DefaultEmbedding):
            fn = _rebuild(stored) if stored else None
        else:
            fn = embedding_function
            given = spec_of(fn) if fn is not None else None
            if stored and given and not force and _identity(given) != _identity(stored):
                raise InvalidArgumentError(
                    f"embedding_function: collection {model.name!r} was created with "
                    f"{_identity(stored)}, not {_identity(given)}; vectors from another model "
                    "are not comparable (pass force=True if you know they are)"
                )
        return Collection(self._backend, model, fn, owner=self)


def _rebuild(spec: Mapping[str, Any]) -> EmbeddingFunction | None:
    try:
        return from_spec(dict(spec))
    except InvalidArgumentError:
        return None  # e.g. a user function: the caller must pass it again


def _identity(spec: Mapping[str, Any]) -> str:
    return model_identity(dict(spec))


class PersistentClient(Client):
    """A client over a database directory: `haima.sqlite3` plus index snapshots."""

    def __init__(
        self,
        path: str | Path = "./haima_data",
        settings: Settings | None = None,
        *,
        tenant: str = DEFAULT_TENANT,
        database: str = DEFAULT_DATABASE,
        create: bool = True,
    ) -> None:
        """`create=False` opens an existing store only: a folder without one raises
        NotFoundError instead of becoming a new, empty store (for read-only use)."""
        settings = settings or Settings()
        backend = LocalBackend(Path(path), settings, create=create)
        super().__init__(settings, tenant=tenant, database=database, backend=backend)
        self.path = Path(path)


class HttpClient(Client):
    """A client of a Haima server (`haima run`): the same API as the embedded clients."""

    def __init__(
        self,
        host: str = "localhost",
        port: int = 8000,
        ssl: bool = False,
        api_key: str | None = None,
        headers: dict[str, str] | None = None,
        settings: Settings | None = None,
        *,
        tenant: str = DEFAULT_TENANT,
        database: str = DEFAULT_DATABASE,
        timeout: float | None = None,
    ) -> None:
        shown = f"[{host}]" if ":" in host else host
        url = f"{'https' if ssl else 'http'}://{shown}:{port}"
        self._init_url(url, api_key, headers, settings, tenant, database, timeout)

    def _init_url(
        self,
        url: str,
        api_key: str | None,
        headers: dict[str, str] | None,
        settings: Settings | None,
        tenant: str,
        database: str,
        timeout: float | None,
    ) -> None:
        # Imported here: httpx is heavy, and embedded users never need it.
        from haima.backends.http import DEFAULT_TIMEOUT, HttpBackend

        backend = HttpBackend(
            url,
            api_key=api_key,
            headers=headers,
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
        )
        super().__init__(settings, tenant=tenant, database=database, backend=backend)
        self._http_backend = backend
        self.url = url

    def wait_until_ready(self, timeout: float = 30.0) -> None:
        """Poll the heartbeat until the server answers, e.g. right after starting it."""
        self._http_backend.wait_until_ready(timeout)

    @classmethod
    def from_url(
        cls,
        url: str,
        api_key: str | None = None,
        headers: dict[str, str] | None = None,
        settings: Settings | None = None,
        *,
        tenant: str = DEFAULT_TENANT,
        database: str = DEFAULT_DATABASE,
        timeout: float | None = None,
    ) -> HttpClient:
        """A client of the server at `url` (e.g. "http://127.0.0.1:8000")."""
        if not url.startswith(("http://", "https://")):
            raise InvalidArgumentError(f"url: expected http:// or https://, got {url!r}")
        client = cls.__new__(cls)
        client._init_url(url, api_key, headers, settings, tenant, database, timeout)
        return client


class MilvusClient(Client):
    """A client over Milvus (`haima[milvus]`): a Milvus server or cluster at `uri`
    ("http://host:19530", "https://...", with `token` "user:password" or an API key),
    or a milvus-lite file ("./store.db"). `db_name`: the Milvus database Haima keeps its
    catalog and collections in. The API is the same as every other client's; what
    differs is listed in docs/scale-out.md."""

    def __init__(
        self,
        uri: str,
        *,
        token: str | None = None,
        db_name: str | None = None,
        settings: Settings | None = None,
        tenant: str = DEFAULT_TENANT,
        database: str = DEFAULT_DATABASE,
    ) -> None:
        # Imported here: pymilvus is an optional dependency, and slow to import.
        from haima.backends.milvus.backend import MilvusBackend

        settings = settings or Settings()
        backend = MilvusBackend(uri, token=token, db_name=db_name, settings=settings)
        super().__init__(settings, tenant=tenant, database=database, backend=backend)
        self.uri = uri


#: A target that names a scheme (`name://...`) rather than a path.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_CONNECT_FORMS = (
    "http:// or https:// (a Haima server), milvus://host:19530 or milvus+https://host "
    "(a Milvus server), milvus-lite:///path/store.db, ':memory:', or a folder path"
)


def connect(target: str, **options: Any) -> Client:
    """A client for `target`: an http(s) URL (a Haima server), a Milvus URI
    (`milvus://host:19530`, `milvus+https://host` with `token=`, `milvus-lite:///path.db`),
    ":memory:", or a store's path. Any other `scheme://` is refused (it would otherwise
    become a folder of that name)."""
    if target.startswith(("http://", "https://")):
        return HttpClient.from_url(target, **options)
    if target == ":memory:":
        return Client(**options)
    scheme = _SCHEME.match(target)
    if scheme is None:
        return PersistentClient(target, **options)
    name = scheme.group(1).lower()
    if is_milvus_target(target):
        return MilvusClient(milvus_uri(target), **options)
    raise InvalidArgumentError(
        f"target: unsupported scheme {name + '://'!r} in {target!r}; connect() takes "
        f"{_CONNECT_FORMS}"
    )
