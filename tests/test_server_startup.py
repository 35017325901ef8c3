"""`haima run` answers before its embedding model is loaded: the heartbeat, collections
and vector queries work at once, a request that needs the model waits for it, and a model
that cannot load is reported, naming the cause. The model's loading is gated by a file
in a real server process (a launcher that wraps the loader), never by timing."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import haima

try:
    from helpers.server import ServerProcess
except ImportError:  # tests/ imported as a package
    from tests.helpers.server import ServerProcess  # type: ignore[no-redef]

#: Runs the CLI with the default model's loader waiting for `open`, or failing on `fail`,
#: files in the folder named by HAIMA_TEST_GATE; the loader marks its first call `asked`.
GATED_LAUNCHER = """
import os, pathlib, sys, time
import haima.embeddings.default as default
gate = pathlib.Path(os.environ["HAIMA_TEST_GATE"])
original = default._shared_model
def gated():
    (gate / "asked").touch()
    deadline = time.monotonic() + 120
    while not (gate / "open").exists():
        if (gate / "fail").exists():
            raise RuntimeError("model file is corrupt (test)")
        if time.monotonic() > deadline:
            raise RuntimeError("the test never opened the gate")
        time.sleep(0.02)
    return original()
default._shared_model = gated
from haima.cli import main
main()
"""


def gated_server(tmp_path: Path, gate: Path) -> ServerProcess:
    gate.mkdir()
    return ServerProcess(
        tmp_path / "store",
        "--no-access-log",
        env={"HAIMA_TEST_GATE": str(gate)},
        launcher=[__import__("sys").executable, "-c", GATED_LAUNCHER],
    )


def test_the_server_answers_while_the_model_loads(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with gated_server(tmp_path, gate) as server, httpx.Client(base_url=server.url) as http:
        # start() returned on a heartbeat: the gate is still closed, so the model is not
        # loaded. Collections and vector search need no model.
        assert http.get("/api/v2/heartbeat").status_code == 200
        base = "/api/v2/tenants/default_tenant/databases/default_database/collections"
        made = http.post(
            base, json={"name": "vectors", "configuration": {"embedding_function": None}}
        )
        assert made.status_code == 200, made.text
        cid = made.json()["id"]
        assert http.post(
            f"{base}/{cid}/add", json={"ids": ["a", "b"], "embeddings": [[1, 0], [0, 1]]}
        ).status_code in (200, 201)
        found = http.post(
            f"{base}/{cid}/query", json={"query_embeddings": [[0.9, 0.1]], "n_results": 1}
        )
        assert found.json()["ids"] == [["a"]]
        assert [c["name"] for c in http.get(base).json()] == ["vectors"]

        # A request that needs the model waits for it...
        answer: list[httpx.Response] = []
        waiting = threading.Thread(
            target=lambda: answer.append(
                httpx.post(
                    f"{server.url}/v1/embeddings",
                    json={"model": "default", "input": ["海马"]},
                    timeout=120,
                )
            )
        )
        waiting.start()
        for _ in range(3):  # other requests are served meanwhile
            assert http.get("/api/v2/heartbeat").status_code == 200
        assert waiting.is_alive() and not answer, "the request did not wait for the model"
        (gate / "open").touch()
        waiting.join(timeout=120)
        # ... and gets it once loaded.
        assert answer and answer[0].status_code == 200, answer[0].text if answer else ""
        assert len(answer[0].json()["data"][0]["embedding"]) == 512


def test_a_model_that_fails_to_load_is_reported_with_its_cause(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with gated_server(tmp_path, gate) as server:
        (gate / "fail").touch()
        response = httpx.post(
            f"{server.url}/v1/embeddings", json={"model": "default", "input": ["x"]}, timeout=120
        )
        assert response.status_code == 500
        body: Any = response.json()
        message = str(body)
        assert "failed to load" in message and "model file is corrupt (test)" in message
        # The server itself goes on.
        assert httpx.get(f"{server.url}/api/v2/heartbeat").status_code == 200


def _wait_for(path: Path, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)  # polling a file the server writes, bounded by the deadline


def test_a_store_whose_collections_use_a_model_loads_it_at_start(tmp_path: Path) -> None:
    with haima.PersistentClient(tmp_path / "store") as client:
        client.create_collection("docs")  # the default model, run by the server
    gate = tmp_path / "gate"
    with gated_server(tmp_path, gate) as server, httpx.Client(base_url=server.url) as http:
        _wait_for(gate / "asked")  # no request needed the model: the preload asked for it
        assert http.get("/api/v2/heartbeat").status_code == 200  # answering meanwhile
        (gate / "open").touch()
        col = haima.HttpClient.from_url(server.url).get_collection("docs")
        col.add(ids=["a"], documents=["海马是一种鱼"])
        assert col.query(query_texts=["海马"], n_results=1)["ids"] == [["a"]]


def test_making_a_collection_that_uses_a_model_starts_loading_it(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with gated_server(tmp_path, gate) as server:
        client = haima.HttpClient.from_url(server.url)
        client.create_collection("docs")
        _wait_for(gate / "asked")  # before any document arrived
        (gate / "open").touch()


def test_collections_embedded_by_clients_load_no_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from haima.embeddings import default
    from haima.server.state import ServerConfig, ServerState

    loads: list[str] = []
    monkeypatch.setattr(default, "_shared_model", lambda: loads.append("default"))
    with haima.PersistentClient(tmp_path / "store") as client:
        client.create_collection("vectors", embedding_function=None)
        client.create_collection("chroma-made", embedding_function=None)
    state = ServerState(ServerConfig(path=tmp_path / "store"))
    try:
        state.preload_models().join(timeout=60)
        assert loads == []
        from haima.config import new_collection_settings
        from haima.embeddings import default_embedding_function, spec_of

        metadata, config = new_collection_settings(
            "docs", None, None, spec_of(default_embedding_function())
        )
        made = state.backend.create_collection(
            "default_tenant", "default_database", "docs", metadata, config, False
        )
        thread = state.preload_models([made.configuration])
        assert thread is not None
        thread.join(timeout=60)
        assert loads == ["default"]  # the check above could fail
        assert state.preload_models([made.configuration]) is None  # once per model
    finally:
        state.close()


def _store_with_an_hnsw_index(path: Path) -> str:
    """A store whose one collection has a built HNSW index and its snapshot; its id."""
    with haima.PersistentClient(path) as client:
        col = client.create_collection(
            "vectors", embedding_function=None, configuration={"index": {"type": "hnsw"}}
        )
        col.add(ids=[f"r{i}" for i in range(300)], embeddings=[[i, 300 - i] for i in range(300)])
        col.build_index()
        return col.id


def test_the_server_loads_index_snapshots_in_the_background(tmp_path: Path) -> None:
    from haima.server.state import ServerConfig, ServerState

    collection_id = _store_with_an_hnsw_index(tmp_path / "store")
    state = ServerState(ServerConfig(path=tmp_path / "store", preload_embeddings=False))
    try:
        assert state.backend.index_status(collection_id)["state"] == "not loaded"
        state.load_indexes().join(timeout=60)
        status = state.backend.index_status(collection_id)
        assert status["state"] == "ready" and status["ann"] == "hnsw", status
    finally:
        state.close()


def test_index_snapshots_load_once_the_server_answers_without_a_pause(
    tmp_path: Path,
) -> None:
    """The load waits for the server's first answer (so that start-up is not slowed),
    not for requests to pause: a client that keeps asking from its first heartbeat
    finds the index loaded, or its query waits for the load under way."""

    from haima.server.state import ServerConfig, ServerState

    collection_id = _store_with_an_hnsw_index(tmp_path / "store")
    state = ServerState(ServerConfig(path=tmp_path / "store", preload_embeddings=False))
    serving = threading.Event()
    try:
        loader = state.load_indexes(serving=serving)
        loader.join(timeout=0.05)
        assert loader.is_alive()  # nothing answered yet: start-up is not slowed
        assert state.backend.index_status(collection_id)["state"] == "not loaded"
        serving.set()  # the first answer
        loader.join(timeout=60)
        assert not loader.is_alive()
        assert state.backend.index_status(collection_id)["state"] == "ready"
    finally:
        state.close()


def test_closing_before_the_background_load_leaves_nothing_to_report(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from haima.server.state import ServerConfig, ServerState

    with haima.PersistentClient(tmp_path / "store") as client:
        col = client.create_collection("vectors", embedding_function=None)
        col.add(ids=["a"], embeddings=[[1.0, 0.0]])
    state = ServerState(ServerConfig(path=tmp_path / "store", preload_embeddings=False))

    serving = threading.Event()
    loader = state.load_indexes(serving=serving)
    state.close()
    serving.set()
    loader.join(timeout=60)
    assert not loader.is_alive()
    assert "loading indexes at start failed" not in caplog.text
