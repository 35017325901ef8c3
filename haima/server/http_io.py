"""What every route shares: JSON bodies in, JSON responses out, engine calls within the
request's deadline, off the event loop unless they are quick and the request is alone.

Bodies are parsed as plain JSON and checked by Haima's validation (the same code and the
same messages as the embedded client), not by pydantic models: embedding payloads are
large, and one set of rules should say what is valid.

JSON goes through orjson (an 8.5 kB query body parses in 0.03 ms instead of 0.12 ms); what
orjson refuses but Python's json takes (NaN, integers past 64 bits) falls back to json, so
that validation, not the parser, names the field and the problem.
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
import orjson
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
    try:
        body = orjson.dumps(content)
    except TypeError:  # a subclass orjson does not take, or a value json refuses by name
        text = json.dumps(content, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        body = text.encode()
    return Response(body, status_code=status_code, media_type="application/json")


def parse_json(raw: bytes) -> Any:
    """`raw` as JSON: orjson's speed with Python json's leniency and messages."""
    if _may_hold_big_integers(raw):
        return json.loads(raw)  # orjson would read them as floats
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


_DIGITS_AS_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_NINETEEN_DIGITS = b"0" * 19


def _may_hold_big_integers(raw: bytes) -> bool:
    """Whether `raw` may hold an integer of 19 digits or more (2**63 has 19), which
    orjson turns into a float where validation must see the integer to refuse it. Runs of
    19+ digits right after a decimal point are a float's fraction (0.0012345678901234567);
    any other run, even in a string, says maybe. 12 µs for a 384-dimension query."""
    flat = raw.translate(_DIGITS_AS_ZEROS)
    return flat.count(_NINETEEN_DIGITS) != flat.count(b"." + _NINETEEN_DIGITS)


async def read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object, or InvalidArgumentError (400) saying what is wrong."""
    raw = await request.body()
    if not raw:
        return {}
    _check_containers(raw, request.app.state.haima.config.max_batch_size)
    try:
        data = parse_json(raw)
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


class EngineCalls:
    """Where an engine call runs, decided per request.

    A hop to a worker thread and back costs ~0.2-0.35 ms, more than the search of a top-10
    query, so a quick call runs on the event loop when its request is the only one in
    flight: then nothing waits behind it. "Quick" is learnt, not guessed: a kind of call
    (a route on a collection) runs inline only after its last run took under
    `INLINE_BELOW` seconds. Anything else, and every call while other requests are in
    flight, runs in a worker thread so that the loop goes on serving.
    """

    #: Calls that took longer than this last time go to a worker thread.
    INLINE_BELOW = 0.002

    def __init__(self) -> None:
        #: Requests being answered now; counted on the event loop by ObserveMiddleware.
        self.in_flight = 0
        self._last_seconds: dict[tuple[str, str], float] = {}

    def inline(self, kind: tuple[str, str]) -> bool:
        return self.in_flight <= 1 and self._last_seconds.get(kind, 1.0) < self.INLINE_BELOW

    def record(self, kind: tuple[str, str], seconds: float) -> None:
        if len(self._last_seconds) > 10_000:  # collections come and go
            self._last_seconds.clear()
        self._last_seconds[kind] = seconds


#: The app's EngineCalls, set per request by ObserveMiddleware (None outside a request).
engine_calls: ContextVar[EngineCalls | None] = ContextVar("haima_engine_calls", default=None)


async def blocking(fn: Callable[[], T], quick: tuple[str, str] | None = None) -> T:
    """Run an engine call (SQLite, FAISS, a model) in a worker thread, so that the event
    loop goes on serving. Within the request's deadline: SQLite statements stop at it (see
    haima/deadline.py), and past it (with a short grace for that) the answer is a 504
    while the thread, which Python cannot kill, finishes on its own.

    `quick` names a kind of call that may run on the event loop instead (see
    EngineCalls): reads whose cost depends on no model and no other server."""
    calls = engine_calls.get()
    if quick is None or calls is None:
        return await _in_thread(fn)
    if calls.inline(quick):
        budget = request_deadline.get()
        call = fn if budget is None else (lambda: _within(fn, *budget))
        return _timed(call, calls, quick)
    return await _in_thread(lambda: _timed(fn, calls, quick))


async def _in_thread(fn: Callable[[], T]) -> T:
    budget = request_deadline.get()
    if budget is None:
        return await anyio.to_thread.run_sync(fn)
    at, seconds = budget
    try:
        with anyio.fail_after(max(0.0, at - time.monotonic()) + _GRACE_SECONDS):
            return await anyio.to_thread.run_sync(
                lambda: _within(fn, at, seconds), abandon_on_cancel=True
            )
    except TimeoutError:
        raise timeout_error(seconds) from None


def _timed(fn: Callable[[], T], calls: EngineCalls, kind: tuple[str, str]) -> T:
    start = time.perf_counter()
    try:
        return fn()
    finally:
        calls.record(kind, time.perf_counter() - start)


def _within(fn: Callable[[], T], at: float, seconds: float) -> T:
    """`fn()` with SQLite statements stopped at `at`; a stop is a RequestTimeoutError."""
    with deadline.within(at - time.monotonic()):
        try:
            return fn()
        except sqlite3.OperationalError:
            if deadline.expired():
                raise timeout_error(seconds) from None
            raise


#: How long past the deadline a worker thread may take to stop by itself.
_GRACE_SECONDS = 1.0


def timeout_error(seconds: float) -> RequestTimeoutError:
    return RequestTimeoutError(
        f"request: stopped after the server's request timeout of {seconds:g} s (haima run "
        "--request-timeout); a write it carried was committed whole or not at all"
    )
