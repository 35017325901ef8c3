"""ASGI middleware: API-key auth, the request size limit, request deadlines, errors as
answers, access logs and metrics.

Plain ASGI rather than Starlette's BaseHTTPMiddleware: it adds no task per request and can
stop reading a body that is over the limit.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from haima.backends.wire import API_PREFIX, error_body
from haima.errors import AuthorizationError, HaimaError, PayloadTooLargeError
from haima.server.http_io import EngineCalls, engine_calls, request_deadline
from haima.server.metrics import Metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("haima.access")
log = logging.getLogger("haima.server")

#: Routes open without a key, so that load balancers can probe a locked server.
OPEN_PATHS = frozenset({f"{API_PREFIX}/heartbeat"})


async def send_error(send: Send, error: HaimaError, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps(error_body(error)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class AuthMiddleware:
    """Every route but the heartbeat needs `Authorization: Bearer KEY` or Chroma's
    `X-Chroma-Token: KEY`; keys are compared in constant time."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self._key = api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = _presented_key(scope["headers"])
        if given is None or not hmac.compare_digest(given, self._key):
            problem = "missing" if given is None else "wrong"
            error = AuthorizationError(
                f"{problem} API key: send 'Authorization: Bearer <key>' or 'X-Chroma-Token: <key>'"
            )
            await send_error(send, error, [(b"www-authenticate", b"Bearer")])
            return
        await self.app(scope, receive, send)


def _presented_key(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:].strip()
        if lowered == b"x-chroma-token":
            return value.strip()
    return None


class _BodyTooLarge(Exception):
    pass


class SizeLimitMiddleware:
    """Answers 413 when a request body is over `max_bytes`, announced or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name.lower() == b"content-length" and int(value or 0) > self.max_bytes:
                await send_error(send, self._error(int(value)), [])
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await send_error(send, self._error(seen), [])

    def _error(self, size: int) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"request body: {size} bytes is over the server's limit of {self.max_bytes} bytes; "
            "send smaller batches or start the server with a larger --max-request-mb"
        )


class ObserveMiddleware:
    """Counts and times each request by route template, writes one JSON access-log line
    per request, and keeps the count of requests in flight that `calls` decides by."""

    def __init__(self, app: ASGIApp, metrics: Metrics, calls: EngineCalls) -> None:
        self.app = app
        self.metrics = metrics
        self.calls = calls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        engine_calls.set(self.calls)
        self.calls.in_flight += 1

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.calls.in_flight -= 1
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            if scope["path"].startswith(API_PREFIX) and not route.startswith(API_PREFIX):
                route = API_PREFIX + route  # routes of the included router omit the prefix
            self.metrics.observe(scope["method"], route, status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_log.info(
                    json.dumps(
                        {
                            "method": scope["method"],
                            "path": scope["path"],
                            "route": route,
                            "status": status,
                            "ms": round(elapsed * 1000, 3),
                            "client": f"{client[0]}:{client[1]}" if client else None,
                        }
                    )
                )


class DeadlineMiddleware:
    """Gives each request its deadline, `seconds` from its start (see http_io.blocking)."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request_deadline.set((time.monotonic() + self.seconds, self.seconds))
        await self.app(scope, receive, send)


class ErrorMiddleware:
    """Answers any exception that escaped the routes' handlers with a 500 naming it.

    Starlette's own last-resort handler re-raises after answering, and uvicorn then
    closes the connection: a keep-alive client lost its next request to "connection reset
    by peer". Here the exception ends with the answer, and the connection stays usable.
    """

    def __init__(
        self, app: ASGIApp, render: Callable[[str, HaimaError], tuple[int, bytes]]
    ) -> None:
        self.app = app
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.exception("unexpected error in %s %s", scope["method"], scope["path"])
            if started:
                raise  # half an answer is out: only closing the connection can end it
            error = HaimaError(f"internal error: {type(exc).__name__}: {exc}")
            status, body = self.render(scope["path"], error)
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
