"""Haima's own routes for the web console, under `/api/v2/haima`: what a console needs
beyond Chroma's API (statistics, a projected sample, a record's neighbours, the words of a
query). They are public API like any other route: the same key, limits and errors.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response

import haima
from haima import validation
from haima.backends.wire import API_PREFIX
from haima.errors import InvalidArgumentError, MissingDependencyError
from haima.server import console_data
from haima.server.console_assets import ConsoleAssets
from haima.server.http_io import blocking, json_response, read_json
from haima.server.state import ServerConfig, ServerState

#: Where these routes live; the console's own requests under it are left out of the
#: request rate and latency it shows (they would measure the console, not the clients).
CONSOLE_API = f"{API_PREFIX}/haima"
COLLECTION = "/tenants/{tenant}/databases/{database}/collections/{collection_id}"

#: Neighbours a record's detail or a dropped query asks for at most.
MAX_NEIGHBOURS = 100


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.haima
    return state


def _int_field(body: dict[str, Any], name: str, default: int, most: int) -> int:
    value = validation.positive_int(body.get(name, default), name)
    if value > most:
        raise InvalidArgumentError(f"{name}: at most {most}, got {value}")
    return value


def build_router() -> APIRouter:
    # Out of /openapi.json for now: that document (and the fuzzing driven by it) covers
    # Chroma's API and the embeddings; these routes are described in docs/console.md.
    router = APIRouter(tags=["Haima console"], include_in_schema=False)
    sizes = console_data.SizeCache()
    maps = console_data.MapCache()
    recent: list[console_data.RecentRequests] = []  # made on first use: metrics live on the app

    def requests_of(request: Request) -> console_data.RecentRequests:
        if not recent:
            recent.append(console_data.RecentRequests(request.app.state.metrics, CONSOLE_API))
        return recent[0]

    @router.get("/info")
    async def info(request: Request) -> Response:
        """What this server is and how the console should behave."""
        config = _state(request).config
        return json_response(
            {
                "name": "haima",
                "version": haima.__version__,
                "read_only_console": config.read_only_console,
                "auth": config.api_key is not None,
                "console": "/",
                "console_api": CONSOLE_API,
                "docs": "/docs",
                "chroma_api": API_PREFIX,
                "embeddings": "/v1/embeddings",
                "metrics": "/metrics",
                "max_map_sample": console_data.MAX_MAP_SAMPLE,
            }
        )

    @router.get("/server")
    async def server(request: Request) -> Response:
        """Version, uptime, the last minute's request rate and latency percentiles."""
        state = _state(request)
        window = requests_of(request).window()
        metrics = request.app.state.metrics
        return json_response(
            await blocking(lambda: console_data.server_stats(state, window, metrics))
        )

    @router.get("/collections")
    async def collections(request: Request) -> Response:
        """Every tenant, database and collection, with each collection's statistics."""
        state = _state(request)
        found = await blocking(lambda: console_data.all_collections(state, sizes))
        return json_response({"databases": found})

    @router.get(COLLECTION + "/stats")
    async def stats(request: Request, tenant: str, database: str, collection_id: str) -> Response:
        state = _state(request)

        def run() -> dict[str, Any]:
            model = state.collection_model(tenant, database, collection_id)
            return console_data.collection_stats(state, model, sizes)

        return json_response(await blocking(run))

    @router.post(COLLECTION + "/map")
    async def sample_map(
        request: Request, tenant: str, database: str, collection_id: str
    ) -> Response:
        """A seeded uniform sample of the vectors projected to 2-D (PCA)."""
        body = await read_json(request)
        state = _state(request)
        size = _int_field(body, "sample", 5_000, console_data.MAX_MAP_SAMPLE)
        seed = validation.non_negative_int(body.get("seed", 0), "seed") or 0

        def run() -> dict[str, Any]:
            collection = state.collection(tenant, database, collection_id)
            return console_data.map_json(maps.sample(state, collection, size, seed))

        return json_response(await blocking(run))

    @router.post(COLLECTION + "/map/query")
    async def map_query(
        request: Request, tenant: str, database: str, collection_id: str
    ) -> Response:
        """Where a query (text or vector) lands on the map of the same sample, and its
        nearest records."""
        body = await read_json(request)
        state = _state(request)
        size = _int_field(body, "sample", 5_000, console_data.MAX_MAP_SAMPLE)
        seed = validation.non_negative_int(body.get("seed", 0), "seed") or 0
        n_results = _int_field(body, "n_results", 10, MAX_NEIGHBOURS)

        def run() -> dict[str, Any]:
            collection = state.collection(tenant, database, collection_id)
            vectors, _ = console_data.query_vectors(state, collection, body)
            sample = maps.sample(state, collection, size, seed)
            return console_data.dropped_query(sample, collection, vectors, n_results)

        return json_response(await blocking(run))

    @router.post(COLLECTION + "/neighbors")
    async def neighbors(
        request: Request, tenant: str, database: str, collection_id: str
    ) -> Response:
        """A record (its id in the body: ids may hold any character) with its vector's
        norm and its nearest records."""
        body = await read_json(request)
        state = _state(request)
        record_id = validation.ids([body.get("id")], "id")[0]
        n_results = _int_field(body, "n_results", 10, MAX_NEIGHBOURS)

        def run() -> dict[str, Any]:
            collection = state.collection(tenant, database, collection_id)
            return console_data.record_neighbours(collection, record_id, n_results)

        return json_response(await blocking(run))

    @router.post("/terms")
    async def terms(request: Request) -> Response:
        """The words a keyword search looks for in `text` (Chinese segmented as the
        keyword index does), so that results can show them highlighted."""
        body = await read_json(request)
        text = body.get("text")
        if not isinstance(text, str):
            raise InvalidArgumentError(f"text: expected a string, got {type(text).__name__}")
        validation.documents([text], 1, "text")
        return json_response(await blocking(lambda: _query_terms(text)))

    return router


def _query_terms(text: str) -> dict[str, Any]:
    from haima import text as segmentation

    try:
        return {"terms": segmentation.query_terms(text), "segmented": True}
    except MissingDependencyError:
        # Without rjieba (the `rag` extra) there is no keyword index either; split on
        # spaces so that vector results still show the query's words.
        return {"terms": list(dict.fromkeys(text.split())), "segmented": False}


def install(app: FastAPI, config: ServerConfig) -> None:
    """Serve the console's pages outside the auth middleware (they hold no data; every
    request they make goes through it). Call after every other middleware is added, so
    that this one is outermost."""
    app.add_middleware(ConsoleAssets, auth_required=config.api_key is not None)
