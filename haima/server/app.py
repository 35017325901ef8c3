"""The FastAPI application: Chroma's REST API v2, OpenAI-compatible embeddings, metrics,
the web console.

`create_app(config)` builds an app over one persistent store. `haima run` serves it with
uvicorn; with several workers each process opens the store itself (SQLite's WAL lets them
share it), which is why the configuration can also come from the environment.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

import haima
from haima._process import tune_for_serving
from haima.backends.wire import API_PREFIX, error_body
from haima.errors import HaimaError, InvalidArgumentError, NotFoundError
from haima.server import openapi, routes_chroma, routes_console, routes_openai
from haima.server.http_io import EngineCalls, blocking, json_response
from haima.server.metrics import Metrics
from haima.server.middleware import (
    AuthMiddleware,
    DeadlineMiddleware,
    ErrorMiddleware,
    ObserveMiddleware,
    SizeLimitMiddleware,
)
from haima.server.state import ServerConfig, ServerState

log = logging.getLogger("haima.server")

#: Environment variable carrying the configuration to worker processes.
CONFIG_ENV = "HAIMA_SERVER_CONFIG"


def create_app(config: ServerConfig) -> FastAPI:
    models = routes_openai.ModelPool()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = ServerState(config)
        app.state.haima = state
        state.load_indexes(serving=app.state.metrics.answered)
        if config.preload_embeddings:
            # In the background, once requests pause: the server answers meanwhile.
            state.preload_models(quiet_for=app.state.metrics.quiet_for)
        try:
            yield
        finally:
            # Writes are durable when acknowledged; closing saves index snapshots so the
            # next start does not rebuild them.
            await blocking(state.close)

    app = FastAPI(
        title="Haima",
        version=haima.__version__,
        summary="Vector database for LLM applications (Chroma API v2 compatible)",
        lifespan=lifespan,
    )
    app.include_router(routes_chroma.build_router(), prefix=API_PREFIX)
    app.include_router(routes_openai.build_router(models))
    app.include_router(routes_console.build_router(), prefix=routes_console.CONSOLE_API)
    _add_service_routes(app)
    openapi.install(app)
    _add_error_handlers(app)
    # Outermost last: observe everything, answer any error, then auth, the size limit and
    # the deadline.
    if config.request_timeout:
        app.add_middleware(DeadlineMiddleware, seconds=config.request_timeout)
    app.add_middleware(SizeLimitMiddleware, max_bytes=config.max_request_bytes)
    if config.api_key:
        app.add_middleware(AuthMiddleware, api_key=config.api_key)
    app.add_middleware(ErrorMiddleware, render=error_answer)
    app.state.metrics = Metrics()
    app.add_middleware(ObserveMiddleware, metrics=app.state.metrics, calls=EngineCalls())
    routes_console.install(app, config)  # the web console's files: outermost, see there
    return app


def _add_service_routes(app: FastAPI) -> None:
    @app.get("/", tags=["Service"])
    async def root() -> Response:
        return json_response(
            {
                "name": "haima",
                "version": haima.__version__,
                "docs": "/docs",
                "chroma_api": API_PREFIX,
                "embeddings": "/v1/embeddings",
                "metrics": "/metrics",
            }
        )

    @app.get("/metrics", tags=["Service"])
    async def metrics(request: Request) -> Response:
        state: ServerState = request.app.state.haima
        sizes = await blocking(state.collection_sizes)
        plans = await blocking(state.backend.plan_cache_stats)
        text = request.app.state.metrics.render(sizes, plans)
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


def error_answer(path: str, error: HaimaError) -> tuple[int, bytes]:
    """The status and JSON body that answer `error` on `path`."""
    body: dict[str, Any]
    if path.startswith("/v1/"):
        # OpenAI's clients read {"error": {"message": ...}}.
        kind = "invalid_request_error" if error.status_code < 500 else "server_error"
        body = {"error": {"message": str(error), "type": kind, "param": None, "code": None}}
    else:
        body = error_body(error)
    return error.status_code, json.dumps(body, ensure_ascii=False).encode()


def _add_error_handlers(app: FastAPI) -> None:
    """Errors the routes raise on purpose; anything else is answered by ErrorMiddleware."""

    def respond(request: Request, error: HaimaError) -> Response:
        status, body = error_answer(request.url.path, error)
        return Response(body, status_code=status, media_type="application/json")

    @app.exception_handler(HaimaError)
    async def haima_error(request: Request, exc: HaimaError) -> Response:
        return respond(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return respond(request, InvalidArgumentError(problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            error: HaimaError = NotFoundError(f"no route {request.method} {request.url.path}")
        else:
            error = HaimaError(str(exc.detail))
            error.status_code = exc.status_code
        return respond(request, error)


def config_to_environment(config: ServerConfig) -> str:
    data = asdict(config)
    data["path"] = str(config.path)
    return json.dumps(data)


def app_from_environment() -> FastAPI:
    """The app factory uvicorn's worker processes call (`--workers N`)."""
    data = json.loads(os.environ[CONFIG_ENV])
    data["path"] = Path(data["path"])
    data["embedding_urls"] = tuple(data.get("embedding_urls", ()))
    return app_for_serving(ServerConfig(**data))


def app_for_serving(config: ServerConfig) -> FastAPI:
    """`create_app` in a process that only serves Haima (`haima run` and each of its
    workers), which is tuned once the app exists (`_process.tune_for_serving`)."""
    app = create_app(config)
    tune_for_serving()
    return app
