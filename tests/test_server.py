"""The server itself: error shapes, the size limit, metrics, docs, server-side embedding,
and a clean shutdown. Chroma's client, the OpenAI endpoint, auth and load have files of
their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

pytest.importorskip("fastapi")

import haima
from tests.helpers.server import ServerProcess

COLLECTIONS = "/api/v2/tenants/default_tenant/databases/default_database/collections"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("server")
    with ServerProcess(root / "store", "--max-request-mb", "1") as process:
        yield process


def _create(server: ServerProcess, name: str, **body: object) -> dict[str, object]:
    response = httpx.post(server.url + COLLECTIONS, json={"name": name, **body})
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def test_errors_have_chroma_shape_and_status(server: ServerProcess) -> None:
    missing = httpx.get(f"{server.url}{COLLECTIONS}/no-such-thing")
    assert missing.status_code == 404
    assert missing.json()["error"] == "NotFoundError"
    assert "no-such-thing" in missing.json()["message"]

    _create(server, "dupe")
    again = httpx.post(server.url + COLLECTIONS, json={"name": "dupe"})
    assert again.status_code == 409
    assert again.json()["error"] == "UniqueConstraintError"

    garbled = httpx.post(
        server.url + COLLECTIONS, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert garbled.status_code == 400
    assert "not valid JSON" in garbled.json()["message"]

    bad_name = httpx.post(server.url + COLLECTIONS, json={"name": "a"})
    assert bad_name.status_code == 400
    assert bad_name.json()["message"].startswith("name:")


def test_bad_records_name_the_field_and_write_nothing(server: ServerProcess) -> None:
    collection = _create(server, "strict")
    base = f"{server.url}{COLLECTIONS}/{collection['id']}"
    response = httpx.post(
        base + "/add",
        json={
            "ids": ["a", "b"],
            "embeddings": [[1.0, 0.0], [0.0, 1.0]],
            "metadatas": [{"ok": 1}, {"nested": {"no": 1}}],
        },
    )
    assert response.status_code == 400
    assert "metadatas[1]" in response.json()["message"]
    assert httpx.get(base + "/count").json() == 0


def test_request_size_limit_gives_413(server: ServerProcess) -> None:
    collection = _create(server, "bounded")
    ids = [f"id{i}" for i in range(3000)]
    vectors = np.zeros((3000, 128), dtype=np.float32).tolist()
    response = httpx.post(
        f"{server.url}{COLLECTIONS}/{collection['id']}/add",
        json={"ids": ids, "embeddings": vectors},
    )
    assert response.status_code == 413
    assert "over the server's limit" in response.json()["message"]

    with haima.HttpClient.from_url(server.url) as client:
        handle = client.get_collection("bounded", embedding_function=None)
        with pytest.raises(haima.HaimaError, match="limit") as raised:
            handle.add(ids=ids, embeddings=np.ones((3000, 128), dtype=np.float32))
        assert raised.value.status_code == 413
        assert handle.count() == 0


def test_server_side_embedding_with_the_stored_spec(server: ServerProcess) -> None:
    """Documents and query texts without vectors are embedded on the server by the
    collection's recorded function (here the default model)."""
    collection = _create(server, "embedded-here")
    base = f"{server.url}{COLLECTIONS}/{collection['id']}"
    docs = [
        "北京是中国的首都",
        "The cat sleeps on the sofa",
        "苹果手机的电池续航",
        "Stock markets fell",
    ]
    added = httpx.post(base + "/add", json={"ids": ["zh1", "en1", "zh2", "en2"], "documents": docs})
    assert added.status_code == 200, added.text
    for text, expected in (("中国的首都是哪里", "zh1"), ("a kitten napping on a couch", "en1")):
        hits = httpx.post(base + "/query", json={"query_texts": [text], "n_results": 1}).json()
        assert hits["ids"] == [[expected]]


def test_metrics_count_requests_and_records(server: ServerProcess) -> None:
    collection = _create(server, "measured")
    base = f"{server.url}{COLLECTIONS}/{collection['id']}"
    added = httpx.post(
        base + "/add", json={"ids": ["a", "b", "c"], "embeddings": [[1.0], [2.0], [3.0]]}
    )
    assert added.status_code == 200, added.text
    for _ in range(3):
        httpx.get(base + "/count")
    queried = httpx.post(
        base + "/query",
        json={"query_embeddings": [[1.0]], "n_results": 1, "where": {"k": {"$ne": 1}}},
    )
    assert queried.status_code == 200, queried.text
    text = httpx.get(server.url + "/metrics").text
    count_route = "/api/v2/tenants/{tenant}/databases/{database}/collections/{collection_id}/count"
    line = next(
        ln
        for ln in text.splitlines()
        if ln.startswith("haima_requests_total") and f'route="{count_route}"' in ln
    )
    assert int(line.rsplit(" ", 1)[1]) >= 3
    assert (
        'haima_collection_records{tenant="default_tenant",database="default_database",collection="measured"} 3'
        in text
    )
    assert "haima_request_duration_seconds_bucket" in text
    gauges = {
        name: float(value)
        for name, _, value in (ln.partition(" ") for ln in text.splitlines())
        if name.startswith("haima_filter_")
    }
    assert gauges["haima_filter_plans"] >= 1  # the filtered query's plan
    assert gauges["haima_filter_cache_bytes"] > 0
    assert gauges["haima_filter_views"] == gauges["haima_filter_views_building"] == 0


def test_openapi_docs_are_served(server: ServerProcess) -> None:
    docs = httpx.get(server.url + "/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    schema = httpx.get(server.url + "/openapi.json").json()
    assert "/v1/embeddings" in schema["paths"]
    template = "/api/v2/tenants/{tenant}/databases/{database}/collections/{collection_id}"
    assert f"{template}/query" in schema["paths"]


def test_ctrl_c_flushes_and_a_restart_serves_the_same_data(tmp_path: Path) -> None:
    store = tmp_path / "store"
    vectors = np.random.default_rng(0).standard_normal((500, 32)).astype(np.float32)
    process = ServerProcess(store, "--no-preload").start()
    try:
        with haima.HttpClient.from_url(process.url) as client:
            col = client.create_collection("kept", embedding_function=None)
            col.add(ids=[str(i) for i in range(500)], embeddings=vectors)
    finally:
        assert process.stop() == 0
    assert list((store / "indexes").glob("*/index.hidx")), "index snapshot written on shutdown"
    with ServerProcess(store, "--no-preload") as again, haima.HttpClient.from_url(again.url) as c:
        col = c.get_collection("kept", embedding_function=None)
        assert col.count() == 500
        assert col.query(query_embeddings=vectors[7:8], n_results=1)["ids"] == [["7"]]


def test_several_workers_share_one_store(tmp_path: Path) -> None:
    with (
        ServerProcess(tmp_path / "store", "--workers", "2", "--no-preload") as server,
        # A connection per request, so that requests spread over both workers.
        haima.HttpClient.from_url(server.url, headers={"Connection": "close"}) as client,
    ):
        col = client.create_collection("shared", embedding_function=None)
        for i in range(20):
            col.add(ids=[f"r{i}"], embeddings=[[float(i), 1.0]])
            assert col.count() == i + 1  # each worker sees the other's writes
    assert "Started server process" in server.log.read_text()


def test_the_filter_view_setting_reaches_every_worker(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from fastapi.testclient import TestClient

    from haima.cli import main
    from haima.server.app import CONFIG_ENV, app_from_environment, config_to_environment
    from haima.server.state import ServerConfig

    refused = CliRunner().invoke(main, ["run", "--filter-view-after", "-1"])
    assert refused.exit_code == 2 and "--filter-view-after" in refused.output

    # `--workers N` hands the configuration to each process through the environment.
    config = ServerConfig(path=tmp_path / "store", filter_view_after=0, preload_embeddings=False)
    with pytest.MonkeyPatch.context() as patched:
        patched.setenv(CONFIG_ENV, config_to_environment(config))
        # Not this test's subject, and process-wide (the collector, the GIL, scans on one
        # core): left to tests/test_memory.py, which tunes a process of its own.
        patched.setattr("haima.server.app.tune_for_serving", lambda: None)
        app = app_from_environment()
    with TestClient(app):  # runs the app's startup, which opens the store
        assert app.state.haima.settings.filter_view_after == 0
