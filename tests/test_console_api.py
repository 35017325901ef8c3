"""The console's routes (`/api/v2/haima/...`) over a real `haima run`, without a browser:
the page and its files at `/`, statistics, the projected sample, a dropped query, a
record's neighbours, the words of a query; and the pieces behind them (PCA, latency
percentiles, index state) in process.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

pytest.importorskip("fastapi")

import haima
from haima.backends.local import LocalBackend
from haima.config import CollectionConfiguration, parse_configuration
from haima.server import console_data
from haima.server.console_data import MAX_MAP_SAMPLE, SizeCache, index_status
from haima.server.metrics import BUCKETS, Metrics, RequestTotals
from haima.server.projection import EXACT_MAX_DIM, fit_pca
from haima.settings import Settings
from tests.helpers.console_seed import collections_url
from tests.helpers.server import ServerProcess

KEY = "console-api-key"
HAIMA = "/api/v2/haima"
DB = "/tenants/default_tenant/databases/default_database"
DIM = 16
COUNT = 1_200


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("console-api")
    with ServerProcess(root / "store", "--no-preload", "--no-access-log") as process:
        yield process


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("console-api-locked")
    args = ("--no-preload", "--no-access-log", "--api-key", KEY, "--read-only-console")
    with ServerProcess(root / "store", *args) as process:
        yield process


@pytest.fixture(scope="module")
def clusters(server: ServerProcess) -> dict[str, Any]:
    """COUNT vectors around three centres (l2, so the map projects them as they are)."""
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((3, DIM)).astype(np.float32) * 5
    labels = rng.integers(0, 3, COUNT)
    vectors = (centres[labels] + rng.standard_normal((COUNT, DIM))).astype(np.float32)
    ids = [f"v{i}" for i in range(COUNT)]
    with haima.HttpClient.from_url(server.url) as client:
        col = client.create_collection(
            "clusters", configuration={"metric": "l2"}, embedding_function=None
        )
        col.add(
            ids=ids,
            embeddings=vectors,
            documents=[f"vector {i}" for i in range(COUNT)],
            metadatas=[{"label": int(label)} for label in labels],
        )
    return {"vectors": vectors, "ids": ids, "centres": centres, "id": col.id}


def route(server: ServerProcess, collection_id: str, tail: str) -> str:
    return f"{server.url}{HAIMA}{DB}/collections/{collection_id}/{tail}"


# -- the page ----------------------------------------------------------------------------------


def test_root_serves_the_console_to_browsers_and_json_to_others(server: ServerProcess) -> None:
    page = httpx.get(server.url + "/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/console/app.js">' in page.text
    assert '<meta name="haima-auth" content="none">' in page.text
    policy = page.headers["content-security-policy"]
    assert "connect-src 'self'" in policy and "default-src 'none'" in policy

    for accept in ("application/json", "*/*"):
        index = httpx.get(server.url + "/", headers={"Accept": accept})
        assert index.headers["content-type"] == "application/json"
        assert index.json()["name"] == "haima"

    again = httpx.get(
        server.url + "/", headers={"Accept": "text/html", "If-None-Match": page.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""


def test_every_file_the_page_loads_is_served_from_the_package(server: ServerProcess) -> None:
    """Follows the page's references (links, scripts, module imports) and fetches each:
    a file missing from the package, or a reference to another host, fails here."""
    html = httpx.get(server.url + "/", headers={"Accept": "text/html"}).text
    pending = re.findall(r'(?:src|href)="(/console/[^"]+)"', html)
    assert "/console/app.js" in pending and "/console/app.css" in pending
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)
    seen: dict[str, str] = {}
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        response = httpx.get(server.url + path)
        assert response.status_code == 200, path
        seen[path] = response.headers["content-type"]
        if path.endswith(".js"):
            code = response.text.replace('"http://www.w3.org/2000/svg"', "")  # a name, not a URL
            assert "http://" not in code and "https://" not in code, path
            pending += [
                f"/console/{name}" for name in re.findall(r'from "\./([\w-]+\.js)"', response.text)
            ]
    assert seen["/console/app.js"].startswith("text/javascript")
    assert seen["/console/app.css"].startswith("text/css")
    assert {"/console/api.js", "/console/map.js", "/console/eval.js"} <= set(seen)
    missing = httpx.get(server.url + "/console/nothing.js")
    assert missing.status_code == 404


def test_a_locked_server_serves_its_page_but_no_data_without_the_key(
    locked: ServerProcess,
) -> None:
    page = httpx.get(locked.url + "/", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert '<meta name="haima-auth" content="key">' in page.text
    assert httpx.get(locked.url + "/console/app.js").status_code == 200
    assert httpx.get(locked.url + "/", headers={"Accept": "application/json"}).status_code == 401
    for path in ("info", "server", "collections"):
        refused = httpx.get(f"{locked.url}{HAIMA}/{path}")
        assert refused.status_code == 401 and refused.json()["error"] == "AuthorizationError"
    info = httpx.get(f"{locked.url}{HAIMA}/info", headers={"X-Chroma-Token": KEY}).json()
    assert info["read_only_console"] is True and info["auth"] is True
    assert info["version"] == haima.__version__


def test_info_of_an_open_server(server: ServerProcess) -> None:
    info = httpx.get(f"{server.url}{HAIMA}/info").json()
    assert (info["read_only_console"], info["auth"]) == (False, False)
    assert info["chroma_api"] == "/api/v2" and info["max_map_sample"] == MAX_MAP_SAMPLE


# -- statistics --------------------------------------------------------------------------------


def test_collection_statistics(server: ServerProcess, clusters: dict[str, Any]) -> None:
    ids, docs = ["a", "bb", "ccc"], ["一二三", "four", None]
    with haima.HttpClient.from_url(server.url) as client:
        plain = client.create_collection(
            "plain-flat",
            configuration={"index": {"type": "flat"}, "metric": "ip", "keyword": {"enabled": True}},
            embedding_function=None,
        )
        plain.add(ids=ids, embeddings=np.eye(3, 5, dtype=np.float32), documents=docs)
        hnsw = client.create_collection(
            "graph", configuration={"index": {"type": "hnsw"}}, embedding_function=None
        )
        hnsw.add(
            ids=[f"g{i}" for i in range(300)], embeddings=np.random.default_rng(1).random((300, 8))
        )
        hnsw.build_index()

    stats = httpx.get(route(server, plain.id, "stats")).json()
    assert (stats["name"], stats["count"], stats["dimension"], stats["metric"]) == (
        "plain-flat",
        3,
        5,
        "ip",
    )
    assert stats["keyword"] is True and stats["embedding"] is None
    assert stats["index"]["type"] == "flat" and stats["index"]["state"] == "ready"
    assert stats["index"]["ann"] is None and stats["index"]["exact"] == 3
    text = sum(len(i.encode()) for i in ids) + sum(len(d.encode()) for d in docs if d)
    assert stats["bytes"]["vectors"] == 3 * 5 * 4
    assert stats["bytes"]["text"] == text  # no metadata: ids and documents, in UTF-8 bytes
    assert stats["bytes"]["text_estimated"] is False
    assert stats["bytes"]["total"] == sum(stats["bytes"][k] for k in ("index", "vectors", "text"))

    graph = httpx.get(route(server, hnsw.id, "stats")).json()
    assert (graph["index"]["type"], graph["index"]["ann"], graph["index"]["state"]) == (
        "hnsw",
        "hnsw",
        "ready",
    )
    assert graph["index"]["indexed"] == 300 and graph["index"]["pending"] == 0
    assert graph["bytes"]["index"] > 300 * 8 * 4  # the snapshot build_index wrote

    listing = httpx.get(f"{server.url}{HAIMA}/collections").json()["databases"]
    default = next(
        d for d in listing if (d["tenant"], d["database"]) == ("default_tenant", "default_database")
    )
    by_name = {c["name"]: c for c in default["collections"]}
    assert by_name["clusters"]["count"] == COUNT and by_name["graph"]["count"] == 300
    assert by_name["plain-flat"] == stats

    missing = httpx.get(route(server, "0" * 32, "stats"))
    assert missing.status_code == 404


def test_every_tenant_and_database_is_listed(server: ServerProcess) -> None:
    with haima.HttpClient.from_url(server.url) as admin:
        admin.create_tenant("globex")
        admin.create_database("archive", tenant="globex")
    with haima.HttpClient.from_url(server.url, tenant="globex", database="archive") as client:
        client.create_collection("old-notes", embedding_function=None).add(
            ids=["x"], embeddings=[[1.0]]
        )
    listing = httpx.get(f"{server.url}{HAIMA}/collections").json()["databases"]
    pairs = {(d["tenant"], d["database"]): [c["name"] for c in d["collections"]] for d in listing}
    assert pairs[("globex", "archive")] == ["old-notes"]
    assert ("default_tenant", "default_database") in pairs


def test_server_statistics_count_the_api_requests(
    server: ServerProcess, clusters: dict[str, Any]
) -> None:
    count_url = f"{collections_url(server.url)}/{clusters['id']}/count"
    before = httpx.get(f"{server.url}{HAIMA}/server").json()
    for _ in range(25):
        assert httpx.get(count_url).json() == COUNT
    stats = httpx.get(f"{server.url}{HAIMA}/server").json()
    assert stats["version"] == haima.__version__
    assert stats["uptime_s"] > 0 and stats["window_s"] > 0
    # The window may have moved on between the two calls, so compare rates loosely; the
    # 25 requests are in the window either way, and the console's calls are left out.
    assert stats["requests"] >= 25
    assert stats["requests_per_s"] == pytest.approx(stats["requests"] / stats["window_s"])
    p50, p99 = stats["latency_ms"]["p50"], stats["latency_ms"]["p99"]
    assert 0 < p50 <= p99 <= BUCKETS[-1] * 1000
    sizes = httpx.get(f"{server.url}{HAIMA}/collections").json()["databases"]
    assert stats["collections"] == sum(len(d["collections"]) for d in sizes)
    assert stats["records"] == sum(c["count"] for d in sizes for c in d["collections"])
    assert before["requests"] <= stats["requests"]


# -- the map -----------------------------------------------------------------------------------


def reference_pca(vectors: np.ndarray) -> np.ndarray:
    """The two leading principal axes by a full SVD (rows, signs free)."""
    centred = vectors.astype(np.float64) - vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return vt[:2]


def test_the_map_projects_a_seeded_uniform_sample(
    server: ServerProcess, clusters: dict[str, Any]
) -> None:
    url = route(server, clusters["id"], "map")
    first = httpx.post(url, json={"sample": 1_000}).json()
    assert first["total"] == COUNT
    assert len(first["ids"]) == len(set(first["ids"])) == len(first["points"]) == 1_000
    assert set(first["ids"]) <= set(clusters["ids"])
    assert first["normalised"] is False  # l2: vectors projected as they are
    again = httpx.post(url, json={"sample": 1_000}).json()
    assert again == first  # seeded: the same sample and the same projection
    other_seed = httpx.post(url, json={"sample": 1_000, "seed": 5}).json()
    assert other_seed["ids"] != first["ids"]

    index = {record_id: i for i, record_id in enumerate(clusters["ids"])}
    sample = clusters["vectors"][[index[i] for i in first["ids"]]].astype(np.float64)
    axes = reference_pca(sample)
    expected = (sample - sample.mean(axis=0)) @ axes.T
    got = np.asarray(first["points"])
    for axis in range(2):  # equal up to the sign of each axis
        sign = np.sign(np.dot(got[:, axis], expected[:, axis]))
        np.testing.assert_allclose(got[:, axis], sign * expected[:, axis], atol=1e-3)
    assert first["documents"][0] == f"vector {first['ids'][0][1:]}"
    assert first["metadatas"][0]["label"] in (0, 1, 2)

    whole = httpx.post(url, json={"sample": MAX_MAP_SAMPLE}).json()
    assert sorted(whole["ids"]) == sorted(clusters["ids"])  # fewer records than asked: all

    with haima.HttpClient.from_url(server.url) as client:
        empty = client.create_collection("nothing-yet", embedding_function=None)
    nothing = httpx.post(route(server, empty.id, "map"), json={}).json()
    assert (nothing["total"], nothing["ids"], nothing["points"]) == (0, [], [])
    assert httpx.get(route(server, empty.id, "stats")).json()["index"]["state"] == "empty"

    too_many = httpx.post(url, json={"sample": MAX_MAP_SAMPLE + 1})
    assert too_many.status_code == 400
    assert (
        too_many.json()["message"] == f"sample: at most {MAX_MAP_SAMPLE}, got {MAX_MAP_SAMPLE + 1}"
    )
    assert httpx.post(url, json={"sample": 0}).status_code == 400


def test_a_dropped_query_lands_among_its_neighbours(
    server: ServerProcess, clusters: dict[str, Any]
) -> None:
    centre = clusters["centres"][1]
    answer = httpx.post(
        route(server, clusters["id"], "map/query"),
        json={"sample": 1_000, "query_embeddings": [centre.tolist()], "n_results": 7},
    ).json()
    with haima.HttpClient.from_url(server.url) as client:
        col = client.get_collection("clusters", embedding_function=None)
        expected = col.query(
            query_embeddings=[centre], n_results=7, include=["distances", "embeddings"]
        )
    assert [n["id"] for n in answer["neighbors"]] == expected["ids"][0]
    assert [n["distance"] for n in answer["neighbors"]] == pytest.approx(
        expected["distances"][0], rel=1e-5
    )

    sample = httpx.post(route(server, clusters["id"], "map"), json={"sample": 1_000}).json()
    index = {record_id: i for i, record_id in enumerate(clusters["ids"])}
    vectors = clusters["vectors"][[index[i] for i in sample["ids"]]].astype(np.float64)
    mean, axes = vectors.mean(axis=0), reference_pca(vectors)
    signs = np.sign(np.sum(np.asarray(sample["points"]) * ((vectors - mean) @ axes.T), axis=0))
    where = signs * ((centre - mean) @ axes.T)
    np.testing.assert_allclose(answer["point"], where, atol=1e-3)
    for neighbour, vector in zip(answer["neighbors"], expected["embeddings"][0], strict=True):
        np.testing.assert_allclose(
            neighbour["point"], signs * ((vector - mean) @ axes.T), atol=1e-3
        )

    both = httpx.post(
        route(server, clusters["id"], "map/query"),
        json={"query_embeddings": [centre.tolist()], "query_texts": ["x"]},
    )
    assert both.status_code == 400 and "exactly one" in both.json()["message"]
    text = httpx.post(route(server, clusters["id"], "map/query"), json={"query_texts": ["x"]})
    assert text.status_code == 400 and "no embedding function" in text.json()["message"]
    wrong_dim = httpx.post(
        route(server, clusters["id"], "map/query"), json={"query_embeddings": [[1.0, 2.0]]}
    )
    assert wrong_dim.status_code == 400 and "dimension" in wrong_dim.json()["message"]


# -- a record ----------------------------------------------------------------------------------


def test_a_records_neighbours_and_norm(server: ServerProcess, clusters: dict[str, Any]) -> None:
    answer = httpx.post(
        route(server, clusters["id"], "neighbors"), json={"id": "v17", "n_results": 5}
    ).json()
    vector = clusters["vectors"][17]
    assert answer["norm"] == pytest.approx(
        float(np.linalg.norm(vector.astype(np.float64))), rel=1e-6
    )
    assert answer["dimension"] == DIM and answer["document"] == "vector 17"
    assert answer["head"] == pytest.approx(vector[:8].tolist())
    with haima.HttpClient.from_url(server.url) as client:
        col = client.get_collection("clusters", embedding_function=None)
        nearest = col.query(query_embeddings=[vector], n_results=6)["ids"][0]
    assert [n["id"] for n in answer["neighbors"]] == [i for i in nearest if i != "v17"][:5]

    missing = httpx.post(route(server, clusters["id"], "neighbors"), json={"id": "nope"})
    assert missing.status_code == 404 and "no record 'nope'" in missing.json()["message"]
    no_id = httpx.post(route(server, clusters["id"], "neighbors"), json={})
    assert no_id.status_code == 400 and no_id.json()["message"].startswith("id")
    too_many = httpx.post(
        route(server, clusters["id"], "neighbors"), json={"id": "v1", "n_results": 101}
    )
    assert too_many.status_code == 400

    with haima.HttpClient.from_url(server.url) as client:
        odd = client.create_collection("odd-ids", embedding_function=None)
        odd.add(ids=["a/b ?#%", "c"], embeddings=[[1.0, 0.0], [0.9, 0.1]])
    found = httpx.post(route(server, odd.id, "neighbors"), json={"id": "a/b ?#%"}).json()
    assert found["id"] == "a/b ?#%" and [n["id"] for n in found["neighbors"]] == ["c"]


def test_query_terms_are_segmented_as_the_keyword_index_does(server: ServerProcess) -> None:
    terms = httpx.post(f"{server.url}{HAIMA}/terms", json={"text": "北京的天气 and HNSW"}).json()
    assert terms["segmented"] is True
    assert {"北京", "天气", "HNSW"} <= set(terms["terms"]) and "的" not in terms["terms"]
    bad = httpx.post(f"{server.url}{HAIMA}/terms", json={"text": 3})
    assert bad.status_code == 400 and bad.json()["message"] == "text: expected a string, got int"


# -- in process --------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [6, EXACT_MAX_DIM + 60])
def test_pca_finds_the_leading_axes(dim: int) -> None:
    """Exact below EXACT_MAX_DIM, randomized above: both match a full SVD."""
    rng = np.random.default_rng(dim)
    scales = np.ones(dim)
    scales[:2] = (9.0, 4.0)  # two clear leading directions
    basis, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    vectors = (rng.standard_normal((800, dim)) * scales) @ basis.T + 3.0
    projection = fit_pca(vectors)
    reference = reference_pca(vectors)
    for got, want in zip(projection.components, reference, strict=True):
        assert abs(float(np.dot(got, want))) == pytest.approx(1.0, abs=1e-6)
    centred = vectors - vectors.mean(axis=0)
    shares = np.square(centred @ reference.T).sum(axis=0) / np.square(centred).sum()
    assert projection.explained == pytest.approx(tuple(shares), rel=1e-6)
    again = fit_pca(vectors)
    np.testing.assert_array_equal(again.components, projection.components)


def test_pca_of_directions_ignores_lengths() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((200, 10))
    scaled = vectors * rng.uniform(0.1, 10, (200, 1))
    np.testing.assert_allclose(
        fit_pca(vectors, normalise=True).apply(vectors),
        fit_pca(scaled, normalise=True).apply(scaled),
        atol=1e-9,
    )


def test_pca_of_too_few_vectors_is_defined() -> None:
    assert fit_pca(np.ones((1, 4))).apply(np.ones((1, 4))).tolist() == [[0.0, 0.0]]
    assert fit_pca(np.zeros((0, 3))).explained == (0.0, 0.0)


def test_latency_quantiles_interpolate_within_buckets() -> None:
    metrics = Metrics()
    start = metrics.totals()
    for seconds in [0.0015] * 50 + [0.003] * 49 + [20.0]:  # 20 s: past the last bucket
        metrics.observe("GET", "/api/v2/x", 200, seconds)
    metrics.observe("GET", "/api/v2/haima/server", 200, 0.3)
    window = metrics.totals(exclude_prefix="/api/v2/haima").since(start)
    assert window.count == 100
    # 50 in (1 ms, 2.5 ms]: the median is the top of that bucket
    assert window.quantile(0.5) == pytest.approx(0.0025)
    # 99th: the last of 49 in (2.5 ms, 5 ms]
    assert window.quantile(0.99) == pytest.approx(0.005)
    assert window.quantile(1.0) == BUCKETS[-1]
    assert RequestTotals(0.0, 0, (0,) * (len(BUCKETS) + 1)).since(start).quantile(0.5) is None
    assert metrics.totals().count == 101


def test_index_state_building_ready_and_not_loaded(tmp_path: Path) -> None:
    settings = Settings(background_indexing=False)
    backend = LocalBackend(tmp_path / "store", settings)
    configuration = parse_configuration({"index": {"type": "hnsw"}}).to_json()
    model = backend.create_collection(
        "default_tenant", "default_database", "g", None, configuration, False
    )
    vectors = np.random.default_rng(0).random((50, 4)).astype(np.float32)
    backend.add(model.id, [f"r{i}" for i in range(50)], vectors, None, None)
    config = CollectionConfiguration.from_json(model.configuration)
    building = index_status(backend, model.id, config)
    assert (building["state"], building["pending"], building["ann"]) == ("building", 50, None)
    backend.build_index(model.id)
    ready = index_status(backend, model.id, config)
    assert (ready["state"], ready["pending"], ready["ann"], ready["indexed"]) == (
        "ready",
        0,
        "hnsw",
        50,
    )
    backend.close()
    reopened = LocalBackend(tmp_path / "store", settings)
    try:
        cold = index_status(reopened, model.id, config)
        assert (cold["state"], cold["ann"]) == ("not loaded", "hnsw")
    finally:
        reopened.close()


def test_text_bytes_of_large_collections_are_estimated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console_data, "EXACT_TEXT_ROWS", 40)
    backend = LocalBackend(tmp_path / "store", Settings(background_indexing=False))
    try:
        configuration = parse_configuration(None).to_json()
        model = backend.create_collection(
            "default_tenant", "default_database", "c", None, configuration, False
        )
        ids = [f"id{i:03d}" for i in range(100)]  # every record the same size
        vectors = np.ones((100, 2), np.float32)
        backend.add(model.id, ids, vectors, ["文档" * 5] * 100, None)
        sizes = SizeCache()
        each = len(ids[0]) + len(("文档" * 5).encode())
        assert sizes.text_bytes(backend, model.id, 100) == (100 * each, True)  # from 40
        backend.add(model.id, ["x"], vectors[:1], None, None)  # 1 byte: a new version
        assert sizes.text_bytes(backend, model.id, 101) == (101 * each, True)
        monkeypatch.setattr(console_data, "EXACT_TEXT_ROWS", 1_000)
        assert sizes.text_bytes(backend, model.id, 101) == (101 * each, True)  # cached
        assert SizeCache().text_bytes(backend, model.id, 101) == (100 * each + 1, False)
    finally:
        backend.close()
