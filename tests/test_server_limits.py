"""What a request may cost the server: deadlines, body budgets, connections that survive
errors, and a stop that does not wait for a runaway request."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import haima
from haima.embeddings import OpenAIEmbeddingFunction
from haima.errors import HaimaError
from haima.server.middleware import ErrorMiddleware
from tests.fake_openai import FakeOpenAIServer
from tests.helpers.server import ServerProcess

COLLECTIONS = "/api/v2/tenants/default_tenant/databases/default_database/collections"


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("limits")
    with ServerProcess(
        root / "store",
        "--no-preload",
        "--no-access-log",
        "--request-timeout",
        "1",
        "--max-request-mb",
        "64",
        "--allow-embedding-url",
        "http://127.0.0.1:",
        env={"OPENAI_API_KEY": "sk-test"},
    ) as process:
        yield process


def _create(http: httpx.Client, name: str) -> str:
    body = {"name": name, "default_embedding_function": False}
    response = http.post(COLLECTIONS, json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def test_one_connection_survives_every_kind_of_error(server: ServerProcess) -> None:
    ports: set[int] = set()

    def local_port(response: httpx.Response) -> int:
        stream = response.extensions["network_stream"]
        return int(stream.get_extra_info("client_addr")[1])

    with httpx.Client(base_url=server.url, timeout=30) as http:
        collection_id = _create(http, "keepalive")
        records = f"{COLLECTIONS}/{collection_id}"
        answers = [
            http.post(f"{records}/get", content=b"{not json"),  # 400
            http.post(f"{records}/get", json={"where": {"$bad": 1}}),  # 400
            http.get(f"{COLLECTIONS}/no-such-collection"),  # 404
            http.post(COLLECTIONS, json={"name": "keepalive"}),  # 409
            http.post(f"{records}/add", content=b"[" + b"[]," * 900_000 + b"[]]"),  # 413
            http.get("/api/v2/heartbeat"),
        ]
        for response in answers:
            ports.add(local_port(response))
    assert [r.status_code for r in answers] == [400, 400, 404, 409, 413, 200]
    assert len(ports) == 1  # the same keep-alive connection carried every request


def test_unexpected_exceptions_are_answered_not_raised() -> None:
    """Starlette's last-resort handler re-raises after answering, and uvicorn then drops
    the connection; ErrorMiddleware must end the exception with its answer."""

    async def broken_app(scope: Any, receive: Any, send: Any) -> None:
        raise KeyError("boom")

    def render(path: str, error: HaimaError) -> tuple[int, bytes]:
        return error.status_code, json.dumps({"message": str(error), "path": path}).encode()

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": "/api/v2/x", "headers": []}
    asyncio.run(ErrorMiddleware(broken_app, render)(scope, receive, send))
    assert sent[0]["status"] == 500
    body = json.loads(sent[1]["body"])
    assert body == {"message": "internal error: KeyError: 'boom'", "path": "/api/v2/x"}


def test_bodies_of_empty_containers_are_refused_before_parsing(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        collection_id = _create(http, "containers")
        body = b'{"ids": [' + b"[]," * 3_000_000 + b'[]], "embeddings": []}'
        response = http.post(f"{COLLECTIONS}/{collection_id}/add", content=body)
        assert response.status_code == 413
        assert "JSON arrays and objects" in response.json()["message"]
        # Brackets inside strings are text, not structure: such a body is parsed.
        document = "[" * 1_000_000
        response = http.post(
            f"{COLLECTIONS}/{collection_id}/add",
            json={"ids": ["doc"], "embeddings": [[1.0, 2.0]], "documents": [document]},
        )
        assert response.status_code == 200, response.text


def test_json_nested_too_deeply_is_a_400(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        collection_id = _create(http, "deepjson")
        body = b'{"where": ' + b'{"$not": ' * 5000 + b"{}" + b"}" * 5001
        response = http.post(f"{COLLECTIONS}/{collection_id}/get", content=body)
    assert response.status_code == 400
    assert response.json()["message"] == "request body: JSON nested too deeply"


def test_requests_past_the_deadline_get_504_and_others_are_served(
    server: ServerProcess, fake_openai: FakeOpenAIServer
) -> None:
    client = haima.HttpClient.from_url(server.url)
    try:
        fn = OpenAIEmbeddingFunction("fake-embed", base_url=fake_openai.base_url)
        col = client.create_collection("slow", embedding_function=fn)
        add = f"{server.url}{COLLECTIONS}/{col.id}/add"
        fake_openai.delay_next(5.0)  # the server's request timeout is 1 s
        started = time.monotonic()
        # Documents without embeddings: the server embeds them, through the slow model.
        response = httpx.post(add, json={"ids": ["a"], "documents": ["slow"]}, timeout=30)
        assert response.status_code == 504
        assert "request timeout of 1 s" in response.json()["message"]
        assert time.monotonic() - started < 4.5  # answered before the embedding returned
        assert client.heartbeat() > 0  # the server went on serving meanwhile
        response = httpx.post(add, json={"ids": ["b"], "documents": ["fast"]}, timeout=30)
        assert response.status_code == 200, response.text
        assert col.get()["ids"] == ["b"]  # the stopped request wrote nothing
    finally:
        client.close()


def test_sigterm_stops_the_server_while_a_request_runs(
    tmp_path: Path, fake_openai: FakeOpenAIServer
) -> None:
    process = ServerProcess(
        tmp_path / "store",
        "--no-preload",
        "--request-timeout",
        "0",
        "--shutdown-timeout",
        "1",
        "--allow-embedding-url",
        "http://127.0.0.1:",
        env={"OPENAI_API_KEY": "sk-test"},
    ).start()
    client = haima.HttpClient.from_url(process.url, timeout=60)
    try:
        fn = OpenAIEmbeddingFunction("fake-embed", base_url=fake_openai.base_url)
        col = client.create_collection("stuck", embedding_function=fn)
        before = len(fake_openai.embedding_requests())
        fake_openai.delay_next(30.0)
        with httpx.Client(timeout=60) as http:
            url = f"{process.url}{COLLECTIONS}/{col.id}/add"
            pending = _in_thread(lambda: http.post(url, json={"ids": ["x"], "documents": ["y"]}))
            deadline = time.monotonic() + 30
            while len(fake_openai.embedding_requests()) == before:  # the request is running
                assert time.monotonic() < deadline
                time.sleep(0.02)
            assert process.process is not None
            started = time.monotonic()
            process.process.send_signal(signal.SIGTERM)
            process.process.wait(timeout=20)
            stopped_after = time.monotonic() - started
            pending.join(timeout=30)
        assert stopped_after < 10  # not the 30 s the request would have taken
    finally:
        client.close()
        process.kill()
        fake_openai.reset()


def _in_thread(call: Any) -> threading.Thread:
    def run() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server goes away under it
            call()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread
