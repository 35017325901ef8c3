"""What every route shares: JSON bodies in, JSON responses out, engine calls off the event
loop within the request's deadline.

Bodies are parsed as plain JSON and checked by Haima's validation (the same code and the
same messages as the embedded client), not by pydantic models: embedding payloads are
large, and one set of rules should say what is valid.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import Request, Response

from haima import deadline
from haima.errors import InvalidArgumentError, PayloadTooLargeError, RequestTimeoutError

T = TypeVar("T")

#: When the current request must be answered (time.monotonic()), and its budget in seconds;
#: set per request by `DeadlineMiddleware`. None: no deadline.
request_deadline: ContextVar[tuple[float, float] | None] = ContextVar(
    "haima_request_deadline", default=None
)

#: A JSON array or object costs Python 56-250 bytes however short its text ("[]" is two
#: bytes); more of them than this per record of the largest batch is refused before
#: parsing, which bounds what a body of empty lists can cost (issue 19: 20 MiB of "[],"
#: took 3.3 s and +521 MB before its 400).
CONTAINERS_PER_RECORD = 8
_MIN_CONTAINERS = 10_000
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def json_response(content: Any, status_code: int = 200) -> Response:
    body = json.dumps(content, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Response(body.encode(), status_code=status_code, media_type="application/json")


async def read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object, or InvalidArgumentError (400) saying what is wrong."""
    raw = await request.body()
    if not raw:
        return {}
    _check_containers(raw, request.app.state.haima.config.max_batch_size)
    try:
        data = json.loads(raw)
    except RecursionError:
        raise InvalidArgumentError("request body: JSON nested too deeply") from None
    except ValueError as exc:
        raise InvalidArgumentError(f"request body: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidArgumentError(
            f"request body: expected a JSON object, got {type(data).__name__}"
        )
    return data


def _check_containers(raw: bytes, max_batch_size: int) -> None:
    limit = max(_MIN_CONTAINERS, CONTAINERS_PER_RECORD * max_batch_size)
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return  # the common case: two memchr-speed passes
    # Brackets inside strings (a document of code) do not count: look again without them.
    bare = _JSON_STRING.sub(b"", raw)
    containers = bare.count(b"[") + bare.count(b"{")
    if containers > limit:
        raise PayloadTooLargeError(
            f"request body: {containers} JSON arrays and objects, more than the {limit} a "
            f"request may hold ({CONTAINERS_PER_RECORD} per record of the largest batch, "
            f"{max_batch_size} records)"
        )


async def blocking(fn: Callable[[], T]) -> T:
    """Run an engine call (SQLite, FAISS, a model) in a worker thread, so that the event
    loop goes on serving. Within the request's deadline: SQLite statements stop at it (see
    haima/deadline.py), and past it (with a short grace for that) the answer is a 504
    while the thread, which Python cannot kill, finishes on its own."""
    budget = request_deadline.get()
    if budget is None:
        return await anyio.to_thread.run_sync(fn)
    at, seconds = budget

    def within_deadline() -> T:
        with deadline.within(at - time.monotonic()):
            try:
                return fn()
            except sqlite3.OperationalError:
                if deadline.expired():
                    raise timeout_error(seconds) from None
                raise

    try:
        with anyio.fail_after(max(0.0, at - time.monotonic()) + _GRACE_SECONDS):
            return await anyio.to_thread.run_sync(within_deadline, abandon_on_cancel=True)
    except TimeoutError:
        raise timeout_error(seconds) from None


#: How long past the deadline a worker thread may take to stop by itself.
_GRACE_SECONDS = 1.0


def timeout_error(seconds: float) -> RequestTimeoutError:
    return RequestTimeoutError(
        f"request: stopped after the server's request timeout of {seconds:g} s (haima run "
        "--request-timeout); a write it carried was committed whole or not at all"
    )
