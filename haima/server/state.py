"""What a server process holds: its store, its embedding functions and its metrics."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from haima.backends.base import Backend, CollectionModel
from haima.backends.local import LocalBackend
from haima.collection import Collection
from haima.embeddings import EmbeddingFunction, from_spec
from haima.errors import InvalidArgumentError, NotFoundError
from haima.index.plan_cache import PlanCacheStats
from haima.settings import Settings

log = logging.getLogger("haima.server")

#: At start, the background loads of models and indexes wait for this many seconds
#: without requests...
PRELOAD_QUIET = 0.5
#: ... but no longer than this after the server started.
PRELOAD_WAIT = 10.0


class ServedBackend(Backend, Protocol):
    """What a server needs of its backend besides the Backend protocol: the store's
    namespaces, index states and sizes for the console and /metrics."""

    def all_databases(self) -> list[tuple[str, str]]: ...

    def load_indexes(self) -> None: ...

    def index_status(self, collection_id: str) -> dict[str, Any]: ...

    def version(self, collection_id: str) -> int: ...

    def text_bytes(self, collection_id: str, limit: int) -> tuple[int, int]: ...

    def plan_cache_stats(self) -> PlanCacheStats: ...


@dataclass(frozen=True)
class ServerConfig:
    """How `haima run` was started."""

    path: Path
    #: Serve a Milvus store instead of the local one at `path`: a `connect` target
    #: (milvus://host:19530, milvus+https://host, milvus-lite:///path/store.db).
    milvus: str | None = None
    #: The Milvus token ("user:password" or an API key) and database.
    milvus_token: str | None = None
    milvus_db: str | None = None
    api_key: str | None = None
    allow_reset: bool = False
    #: Request bodies over this size get 413.
    max_request_bytes: int = 256 * 1024 * 1024
    #: Advertised to Chroma clients, which refuse to send bigger batches.
    max_batch_size: int = 100_000
    #: Load in the background the models the store's collections embed with, at start and
    #: when a collection that names one is made, so the first request does not wait.
    preload_embeddings: bool = True
    #: `Settings.filter_view_after`: queries with one filter before it gets a view.
    filter_view_after: int = 3
    #: Seconds a request may take before it is stopped and answered 504 (0: no limit).
    request_timeout: float = 120.0
    #: URL prefixes of embedding APIs the server may call for a collection whose stored
    #: function names one (`haima run --allow-embedding-url`). A collection's configuration
    #: comes from clients: without this, any client could make the server post documents,
    #: with the key from an environment variable of its choice, to any URL.
    embedding_urls: tuple[str, ...] = ()
    #: The web console offers no writes (the API itself is unchanged).
    read_only_console: bool = False


class ServerState:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.settings = Settings(
            allow_reset=config.allow_reset, filter_view_after=config.filter_view_after
        )
        self.backend: ServedBackend = open_backend(config, self.settings)
        self._functions: dict[str, EmbeddingFunction | None] = {}
        self._functions_lock = threading.Lock()
        #: Embedding functions (their specs' JSON) whose preload has started.
        self._preloaded: set[str] = set()

    def close(self) -> None:
        self.backend.close()

    def collection_model(self, tenant: str, database: str, collection_id: str) -> CollectionModel:
        """The collection with this id, which must live in this tenant and database."""
        try:
            model = self.backend.get_collection_by_id(collection_id)
        except NotFoundError:
            # Chroma's clients send ids as canonical UUIDs; Haima's are stored as hex.
            canonical = _uuid_hex(collection_id)
            if canonical is None or canonical == collection_id:
                raise
            model = self.backend.get_collection_by_id(canonical)
        if (model.tenant, model.database) != (tenant, database):
            raise NotFoundError(
                f"collection {collection_id!r} does not exist in database {database!r} "
                f"of tenant {tenant!r}"
            )
        return model

    def collection(self, tenant: str, database: str, collection_id: str) -> Collection:
        model = self.collection_model(tenant, database, collection_id)
        return Collection(self.backend, model, self.function_for(model.configuration))

    def function_for(self, configuration: dict[str, Any]) -> EmbeddingFunction | None:
        """The collection's stored embedding function, built once per spec; None when it
        has none that this server can run (then callers must send embeddings)."""
        spec = configuration.get("embedding_function")
        if not spec:
            return None
        key = _spec_key(spec)
        with self._functions_lock:
            if key not in self._functions:
                try:
                    self._functions[key] = self._allowed(from_spec(dict(spec)))
                except InvalidArgumentError:
                    self._functions[key] = None  # a user's own function, or a Chroma client's
            return self._functions[key]

    def _allowed(self, fn: EmbeddingFunction) -> EmbeddingFunction | None:
        """`fn` if the server may run it: local models always; a function that calls an
        API only when its URL starts with an operator's `--allow-embedding-url` and its key
        comes from a variable named like one (`*_API_KEY`). None otherwise: the clients
        must then send embeddings, as for a function the server does not know."""
        base_url = getattr(fn, "base_url", None)
        if base_url is None:
            return fn  # runs in this process, reads nothing from the environment
        if not any(str(base_url).startswith(prefix) for prefix in self.config.embedding_urls):
            log.warning(
                "not calling the embedding API at %s for a collection (not allowed by "
                "--allow-embedding-url); clients must send embeddings",
                base_url,
            )
            return None
        key_env = getattr(fn, "api_key_env", None)
        if key_env is not None and not str(key_env).endswith("_API_KEY"):
            log.warning("not reading the key variable %s named by a collection", key_env)
            return None
        return fn

    def preload_models(
        self,
        configurations: Iterable[dict[str, Any]] | None = None,
        quiet_for: Callable[[], float] | None = None,
    ) -> threading.Thread | None:
        """Load, on a background thread (returned, started), the local models that these
        collection configurations (None: every collection in the store) embed with. A
        store whose collections get their embeddings from clients loads none (and spares
        the memory: the default model takes ~150 MB). Each model is preloaded once: None
        (no thread) when every given configuration's was already.

        `quiet_for` (seconds since the last request): the load first waits for a pause of
        PRELOAD_QUIET seconds, at most PRELOAD_WAIT, because parts of it hold the GIL for
        tens of milliseconds at a time: begun at once, it slowed the first requests after
        a restart. Requests that need a model meanwhile wait for it or load it themselves;
        a failure is logged here and reported, naming its cause, to each request that
        needs the model (which tries again)."""

        given = None if configurations is None else self._not_preloaded(configurations)
        if given is not None and not given:
            return None

        def load() -> None:
            found = self._not_preloaded(self._all_configurations()) if given is None else given
            for configuration in found:
                fn = self.function_for(configuration)
                load_model = getattr(fn, "load", None)
                if callable(load_model):
                    load_model()
                    spec = configuration.get("embedding_function")
                    log.info("embedding model loaded: %s", json.dumps(spec))

        # A failure is a broken install or model file; the requests that need it report it.
        return _in_background("haima-model-preload", load, _pause_of(quiet_for), "embedding model")

    def _not_preloaded(self, configurations: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Those of `configurations` naming a function not preloaded yet, marked as being
        preloaded now (one per function)."""
        out = []
        with self._functions_lock:
            for configuration in configurations:
                spec = configuration.get("embedding_function")
                if spec and _spec_key(spec) not in self._preloaded:
                    self._preloaded.add(_spec_key(spec))
                    out.append(configuration)
        return out

    def load_indexes(self, serving: threading.Event | None = None) -> threading.Thread:
        """Load the collections' indexes on a background thread (returned, started), so
        that queries find them loaded. With `serving` (set once the server has answered
        its first request), the load waits for it, at most PRELOAD_QUIET seconds: begun
        during start-up, reading vectors back from SQLite delayed the first heartbeat by
        0.3 s (it holds the GIL in stretches); begun after a pause in requests, it left
        the first query after a restart to load its index itself (0.15 s at 30,000 x 384,
        against 0.07 s for Chroma). A query arriving first loads its own, off the lock,
        and waits for a load of the same index under way. A failure is logged, and the
        query that needs the index meets it again."""

        def wait() -> None:
            if serving is not None:
                serving.wait(timeout=PRELOAD_QUIET)

        return _in_background(
            "haima-index-load", self.backend.load_indexes, wait, "loading indexes at start"
        )

    def _all_collections(self) -> list[CollectionModel]:
        return [
            model
            for tenant, database in self.backend.all_databases()
            for model in self.backend.list_collections(tenant, database, None, None)
        ]

    def _all_configurations(self) -> list[dict[str, Any]]:
        return [model.configuration for model in self._all_collections()]

    def collection_sizes(self) -> list[tuple[str, str, str, int]]:
        return [
            (model.tenant, model.database, model.name, self.backend.count(model.id))
            for model in self._all_collections()
        ]


def _spec_key(spec: Any) -> str:
    """An embedding function's spec as a key: the same spec, the same function."""
    return json.dumps(spec, sort_keys=True)


def _in_background(
    name: str, work: Callable[[], None], wait: Callable[[], None], what: str
) -> threading.Thread:
    """`work` on a daemon thread (returned, started) after `wait` returns; a failure is
    logged as `what` failing."""

    def run() -> None:
        wait()
        try:
            work()
        except Exception as exc:
            log.error("%s failed: %s: %s", what, type(exc).__name__, exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def _pause_of(quiet_for: Callable[[], float] | None) -> Callable[[], None]:
    """A wait until requests pause for PRELOAD_QUIET seconds, at most PRELOAD_WAIT after
    it starts waiting (no wait without `quiet_for`)."""

    def wait() -> None:
        if quiet_for is None:
            return
        deadline = time.monotonic() + PRELOAD_WAIT
        while quiet_for() < PRELOAD_QUIET and time.monotonic() < deadline:
            time.sleep(0.1)  # a background wait for traffic to pause, not a sync

    return wait


def open_backend(config: ServerConfig, settings: Settings) -> ServedBackend:
    if config.milvus is None:
        return LocalBackend(config.path, settings)
    from haima.backends.milvus.backend import MilvusBackend
    from haima.backends.milvus.uri import milvus_uri

    return MilvusBackend(
        milvus_uri(config.milvus),
        token=config.milvus_token,
        db_name=config.milvus_db,
        settings=settings,
    )


def _uuid_hex(value: str) -> str | None:
    try:
        return uuid.UUID(value).hex
    except ValueError:
        return None
