"""Where the server runs engine calls: quick reads on the event loop when their request is
alone, everything else in a worker thread (haima/server/http_io.py)."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

pytest.importorskip("fastapi")

from haima.server.http_io import (
    EngineCalls,
    blocking,
    engine_calls,
    parse_json,
    request_deadline,
)

KIND = ("/query", "c1")


def _thread_of(calls: EngineCalls | None, quick: tuple[str, str] | None) -> int:
    async def main() -> int:
        engine_calls.set(calls)
        return await blocking(threading.get_ident, quick=quick)

    return anyio.run(main)


def test_a_quick_call_runs_inline_once_its_kind_was_seen_quick_and_it_is_alone() -> None:
    loop_thread = threading.get_ident()  # anyio.run runs the loop in this thread
    calls = EngineCalls()
    calls.in_flight = 1
    assert _thread_of(calls, KIND) != loop_thread  # never seen: measured in a thread first
    assert _thread_of(calls, KIND) == loop_thread  # it took microseconds: inline now
    assert _thread_of(calls, ("/query", "other")) != loop_thread  # kinds are apart
    assert _thread_of(calls, None) != loop_thread  # not a quick call


def test_a_call_goes_to_a_thread_when_other_requests_are_in_flight() -> None:
    calls = EngineCalls()
    calls.record(KIND, 0.0001)
    calls.in_flight = 2
    assert _thread_of(calls, KIND) != threading.get_ident()


def test_a_slow_kind_goes_back_to_a_thread() -> None:
    calls = EngineCalls()
    calls.in_flight = 1
    calls.record(KIND, 0.0001)

    async def main() -> tuple[int, int]:
        engine_calls.set(calls)
        slow = await blocking(lambda: time.sleep(EngineCalls.INLINE_BELOW * 2), quick=KIND)
        assert slow is None
        return await blocking(threading.get_ident, quick=KIND), threading.get_ident()

    after_slow, loop_thread = anyio.run(main)
    assert after_slow != loop_thread


def test_an_inline_call_keeps_the_request_deadline() -> None:
    from haima import deadline

    calls = EngineCalls()
    calls.in_flight = 1
    calls.record(KIND, 0.0001)

    async def main() -> tuple[bool, int, int]:
        engine_calls.set(calls)
        request_deadline.set((time.monotonic() - 1.0, 1.0))  # already past
        ran = await blocking(lambda: (deadline.expired(), threading.get_ident()), quick=KIND)
        return *ran, threading.get_ident()

    expired, ran_in, loop_thread = anyio.run(main)
    assert ran_in == loop_thread
    assert expired  # SQLite statements of the call would stop
    assert not deadline.expired()  # and the loop's thread is left without a deadline


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"k": 18446744073709551616}', {"k": 2**64}),
        (b'{"k": -9223372036854775809}', {"k": -(2**63) - 1}),
        (b'{"k": 1' + b"0" * 40 + b"}", {"k": 10**40}),
        (b'{"k": NaN}', None),  # json's reading: validation then refuses it by name
        (b'{"v": [0.0012345678901234567, 12.5, -3]}', {"v": [0.0012345678901234567, 12.5, -3]}),
        (b'{"id": "1234567890123456789012"}', {"id": "1234567890123456789012"}),
        (b'{"s": "\\ud800"}', {"s": "\ud800"}),  # a lone surrogate, refused later by name
    ],
)
def test_json_bodies_read_as_python_json_reads_them(raw: bytes, expected: object) -> None:
    import json
    import math

    got = parse_json(raw)
    if expected is None:
        assert math.isnan(got["k"])
    else:
        assert got == expected
        assert got == json.loads(raw)
        assert [type(v) for v in got.values()] == [type(v) for v in json.loads(raw).values()]
