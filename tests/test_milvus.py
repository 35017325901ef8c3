"""The Milvus backend over milvus-lite: what the shared contract suite (conftest's
"milvus" client kind) does not cover. Filters agree with the reference semantics on
random records and random filters; small filtered sets are ranked exactly; what Milvus
cannot express is refused; data moves local → Milvus → local unchanged; Chroma's own
client works against `haima run --backend milvus-lite://...`."""

from __future__ import annotations

import itertools
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import haima
from haima import transfer
from haima.backends.milvus.expressions import LIKE_SPECIALS
from haima.filter_reference import matches
from haima.filters import (
    And,
    DocContains,
    DocRegex,
    Filter,
    Not,
    Or,
    combine,
    parse_where,
    parse_where_document,
)
from tests.helpers.filter_strategies import (
    Record,
    document_strategy,
    records_strategy,
    stored_pairs,
    substrings,
    where_strategy,
)
from tests.helpers.server import ServerProcess
from tests.test_transfer import Interrupted, assert_same, make_source

pytest.importorskip("milvus_lite")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[haima.MilvusClient]:
    path = tmp_path_factory.mktemp("milvus") / "store.db"
    with haima.MilvusClient(str(path)) as client:
        yield client


_names = (f"random-{i}" for i in itertools.count())


def _refused(node: Filter | None) -> bool:
    """Whether the Milvus backend refuses `node`: a regex, or `$contains` of a text
    holding one of LIKE's special characters (see `LIKE_SPECIALS`)."""
    if node is None:
        return False
    if isinstance(node, DocRegex):
        return True
    if isinstance(node, DocContains):
        return bool(LIKE_SPECIALS.intersection(node.text))
    if isinstance(node, (And, Or)):
        return any(_refused(c) for c in node.children)
    return isinstance(node, Not) and _refused(node.child)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), records=records_strategy)
def test_filters_agree_with_the_reference(
    store: haima.MilvusClient, data: st.DataObject, records: list[Record]
) -> None:
    """`get` and `query` on Milvus select exactly what the reference semantics select,
    with a flat index (Milvus filters its own search) and the default one (small filtered
    sets are ranked by Haima)."""
    note(f"records: {records!r}")
    ids = [f"r{i}" for i in range(len(records))]
    vectors = np.random.default_rng(len(records)).standard_normal((len(records), 4))
    cols = [
        store.create_collection(next(_names), configuration=config, embedding_function=None)
        for config in ({"index": {"type": "flat"}}, None)
    ]
    for col in cols:
        col.add(
            ids=ids,
            embeddings=vectors.astype(np.float32),
            metadatas=[md for md, _ in records],
            documents=[doc for _, doc in records],
        )
    where_filters = where_strategy(stored_pairs(records))
    document_filters = document_strategy(substrings(records))
    for use_where, use_document in ((True, False), (False, True), (True, True)):
        where = data.draw(where_filters, label="where") if use_where else None
        where_document = data.draw(document_filters, label="doc") if use_document else None
        node = combine(parse_where(where), parse_where_document(where_document))
        for col in cols:
            if _refused(node):
                with pytest.raises(haima.InvalidFilterError, match=r"\$\w+: the Milvus backend"):
                    col.get(where=where, where_document=where_document)
                continue
            expected = [
                i
                for i, (md, doc) in zip(ids, records, strict=True)
                if node is None or matches(node, md, doc)
            ]
            got = col.get(where=where, where_document=where_document)["ids"]
            assert got == expected  # and in insertion order
            found = col.query(
                query_embeddings=vectors[0].astype(np.float32),
                n_results=len(records),
                where=where,
                where_document=where_document,
            )["ids"][0]
            assert sorted(found) == sorted(expected)
    for col in cols:
        store.delete_collection(col.name)


def test_small_filtered_sets_are_ranked_exactly(store: haima.MilvusClient) -> None:
    rng = np.random.default_rng(7)
    n, dim = 3000, 32
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    col = store.create_collection(
        "exact-hnsw",
        configuration={"index": {"type": "hnsw", "ef_search": 10}, "metric": "l2"},
        embedding_function=None,
    )
    col.add(
        ids=[f"v{i}" for i in range(n)],
        embeddings=vectors,
        metadatas=[{"bucket": i % 100} for i in range(n)],
    )
    queries = rng.standard_normal((5, dim)).astype(np.float32)
    res = col.query(query_embeddings=queries, n_results=10, where={"bucket": 3})
    members = np.arange(3, n, 100)
    for q, ids, distances in zip(queries, res["ids"], res["distances"] or [], strict=True):
        exact = ((vectors[members] - q) ** 2).sum(axis=1)
        order = np.argsort(exact)[:10]
        assert ids == [f"v{members[j]}" for j in order]
        np.testing.assert_allclose(distances, exact[order], rtol=1e-4)


def test_what_milvus_cannot_hold_is_refused_and_nothing_is_written(
    store: haima.MilvusClient,
) -> None:
    col = store.create_collection("limits", embedding_function=None)
    with pytest.raises(haima.InvalidArgumentError, match=r"documents\[1\].*65535"):
        col.add(
            ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]], documents=["ok", "长" * 30_000]
        )
    assert col.count() == 0
    col.add(ids=["a"], embeddings=[[1.0, 0.0]], documents=["x"])
    with pytest.raises(haima.InvalidFilterError, match=r"where_document\.\$regex: the Milvus"):
        col.query(query_embeddings=[[1.0, 0.0]], where_document={"$regex": "x"})
    with pytest.raises(haima.InvalidFilterError, match=r"\$not_contains: .* % _"):
        col.get(where_document={"$not_contains": "50%_off"})
    with pytest.raises(haima.DimensionMismatchError, match="dimension 2, got 3"):
        col.add(ids=["c"], embeddings=[[1.0, 0.0, 0.0]])


def test_a_second_client_opens_collections_as_they_were_made(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    config = {"index": {"type": "hnsw", "max_neighbors": 24, "ef_search": 64}, "metric": "ip"}
    with haima.MilvusClient(path) as first:
        col = first.create_collection(
            "kb-one", configuration=config, metadata={"owner": "海马"}, embedding_function=None
        )
        col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]])
        col.modify(name="kb-two", configuration={"index": {"ef_search": 80}})
    with haima.MilvusClient(path) as second:
        again = second.get_collection("kb-two", embedding_function=None)
        assert again.metadata == {"owner": "海马"}
        assert again.configuration["metric"] == "ip"
        assert again.configuration["index"]["max_neighbors"] == 24
        assert again.configuration["index"]["ef_search"] == 80
        assert again.query(query_embeddings=[[0.1, 0.9]], n_results=1)["ids"] == [["b"]]
        with pytest.raises(haima.NotFoundError):
            second.get_collection("kb-one")


def test_index_type_change_rebuilds_the_milvus_index(store: haima.MilvusClient) -> None:
    col = store.create_collection("reindex", embedding_function=None)
    vectors = np.random.default_rng(1).standard_normal((200, 8)).astype(np.float32)
    col.add(ids=[f"i{k}" for k in range(200)], embeddings=vectors)
    col.modify(configuration={"index": {"type": "ivf", "nlist": 8, "nprobe": 8}})
    backend = store._backend
    status = backend.index_status(col.id)  # type: ignore[attr-defined]
    assert status["ann"] == "ivf_flat"
    assert col.query(query_embeddings=vectors[17], n_results=1)["ids"] == [["i17"]]


def test_migrate_local_to_milvus_and_back(tmp_path: Path) -> None:
    written = make_source(tmp_path / "src")
    milvus = f"milvus-lite://{tmp_path / 'mid.db'}"

    def stop_early(name: str, done: int) -> None:
        if name == "docs" and done >= 400:
            raise Interrupted

    with pytest.raises(Interrupted):
        transfer.migrate(str(tmp_path / "src"), milvus, batch_size=200, after_batch=stop_early)
    there = transfer.migrate(str(tmp_path / "src"), milvus, batch_size=200)  # resumes
    back = transfer.migrate(milvus, str(tmp_path / "dst"), batch_size=300)
    assert [c.checksum for c in back.collections] == [c.checksum for c in there.collections]
    assert_same(tmp_path / "dst", written)


# -- the server on Milvus, with Chroma's own client ------------------------------------------


def test_chroma_client_against_a_server_on_milvus(tmp_path: Path) -> None:
    chromadb = pytest.importorskip("chromadb")
    from chromadb.config import Settings as ChromaSettings

    target = f"milvus-lite://{tmp_path / 'served.db'}"
    with ServerProcess(tmp_path / "unused", "--no-preload", "--backend", target) as server:
        client = chromadb.HttpClient(
            host="127.0.0.1", port=server.port, settings=ChromaSettings(anonymized_telemetry=False)
        )
        name = f"books-{uuid.uuid4().hex[:6]}"
        col = client.create_collection(name, embedding_function=None)
        vectors = np.eye(4, dtype=np.float32)
        col.add(
            ids=["a", "b", "c", "d"],
            embeddings=vectors,
            documents=["北京 capital", "上海 city", "dogs", "cats"],
            metadatas=[{"year": 2020 + i, "tags": ["x"] if i % 2 else ["y"]} for i in range(4)],
        )
        assert col.count() == 4
        res = col.query(
            query_embeddings=[vectors[1].tolist()], n_results=2, where={"year": {"$gte": 2021}}
        )
        assert res["ids"][0][0] == "b" and set(res["ids"][0]) <= {"b", "c", "d"}
        got = col.get(where={"tags": {"$contains": "x"}}, where_document={"$contains": "上海"})
        assert got["ids"] == ["b"]
        col.update(ids=["a"], metadatas=[{"year": 1999}])
        assert col.get(ids=["a"])["metadatas"] == [{"year": 1999, "tags": ["y"]}]
        col.delete(where={"year": {"$lt": 2000}})
        assert col.count() == 3
        assert [c.name for c in client.list_collections()] == [name]
    # the data is in Milvus, where a Haima client finds it
    with haima.connect(target) as direct:
        assert direct.get_collection(name, embedding_function=None).count() == 3


def test_the_cli_works_on_milvus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from haima.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("北京是中国的首都。", encoding="utf-8")
    (tmp_path / "notes" / "b.md").write_text("Milvus shards data across machines.")
    target = ["--url", "milvus-lite://./kb.db"]
    runner = CliRunner()
    first = runner.invoke(main, ["ingest", "notes", "-c", "kbase", *target])
    assert first.exit_code == 0, first.output
    assert "2 added" in first.output
    again = runner.invoke(main, ["ingest", "notes", "-c", "kbase", *target])
    assert "2 unchanged" in again.output  # incremental, as on a local store
    found = runner.invoke(main, ["search", "首都", "-c", "kbase", "--json", *target])
    assert found.exit_code == 0, found.output
    assert "北京是中国的首都" in found.output.split("Milvus shards")[0]


def test_an_unreachable_milvus_is_a_clear_error() -> None:
    from tests.helpers.server import free_port

    with pytest.raises(haima.ServerUnavailableError, match=r"cannot reach Milvus at http://"):
        haima.connect(f"milvus://127.0.0.1:{free_port()}")


def test_an_idle_milvus_lite_connection_stays_usable(tmp_path: Path) -> None:
    """gRPC's keepalive pings are off for milvus-lite, whose server answers pymilvus's
    10-second pings with "too many pings"; the option must reach the channel."""
    with haima.MilvusClient(str(tmp_path / "idle.db")) as client:
        handler = client._backend._client._get_connection()  # type: ignore[attr-defined]
        assert handler._grpc_options["grpc.keepalive_permit_without_calls"] == 0
        assert handler._grpc_options["grpc.keepalive_time_ms"] >= 2**31 - 1


def test_without_pymilvus_the_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pymilvus", None)  # import pymilvus → ImportError
    with pytest.raises(haima.MissingDependencyError, match=r"pip install 'haima\[milvus\]'"):
        haima.connect(f"milvus-lite://{tmp_path / 'x.db'}")
    assert list(tmp_path.iterdir()) == []
