"""Export, import and migrate between local stores and a Haima server: every record
identical (ids, documents, metadata types, embeddings), settings carried over, runs
resumed after an interruption to the same result, and a source that changes during a
transfer caught by the verification."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import haima
from haima import transfer
from haima.cli import main

try:
    from helpers.server import ServerProcess
except ImportError:  # tests/ imported as a package
    from tests.helpers.server import ServerProcess  # type: ignore[no-redef]

N = 1_234


class Interrupted(Exception):
    pass


def make_source(path: Path, n: int = N) -> dict[str, Any]:
    """A store with two collections of varied records; returns what was written."""
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((n, 24)).astype(np.float32)
    written = {
        "ids": [f"doc-{i:05d}" for i in range(n)],
        "embeddings": embeddings,
        "documents": [None if i % 9 == 0 else f"第 {i} 段 text \u2603" for i in range(n)],
        "metadatas": [
            None
            if i % 11 == 0
            else {"i": i, "f": i / 7, "flag": i % 2 == 0, "tag": "海马", "tags": [i % 3, i % 5]}
            for i in range(n)
        ],
    }
    with haima.PersistentClient(path) as client:
        docs = client.create_collection(
            "docs",
            configuration={"index": {"type": "hnsw", "ef_search": 77}, "metric": "ip",
                           "keyword": {"enabled": True, "weight": 0.6}},
            metadata={"owner": "team-a", "year": 2026},
            embedding_function=None,
        )  # fmt: skip
        docs.add(**written)
        small = client.create_collection("small", embedding_function=None)
        small.add(ids=["only"], embeddings=[[1.0, 2.0]], documents=["one"])
    return written


def assert_same(path: Path, written: dict[str, Any]) -> None:
    with haima.PersistentClient(path, create=False) as client:
        col = client.get_collection("docs", embedding_function=None)
        assert col.metadata == {"owner": "team-a", "year": 2026}
        config = col.configuration
        assert config["metric"] == "ip" and config["index"]["type"] == "hnsw"
        assert config["index"]["ef_search"] == 77
        assert config["keyword"]["enabled"] is True and config["keyword"]["weight"] == 0.6
        got = col.get(include=["embeddings", "documents", "metadatas"])
        order = np.argsort(got["ids"])
        assert [got["ids"][i] for i in order] == written["ids"]
        assert [got["documents"][i] for i in order] == written["documents"]
        metadatas = [got["metadatas"][i] for i in order]
        assert metadatas == written["metadatas"]
        for got_md, want in zip(metadatas, written["metadatas"], strict=True):
            if want is not None:  # types kept: int stays int, bool stays bool
                assert type(got_md["i"]) is int and type(got_md["flag"]) is bool
        embeddings = np.asarray(got["embeddings"])[order]
        assert np.abs(embeddings - written["embeddings"]).max() <= 1e-6
        assert client.get_collection("small", embedding_function=None).count() == 1
        # and the copy is searchable by words (the keyword index came along)
        assert col.query(query_texts=["第 5 段"], n_results=1, mode="keyword")["ids"][0]


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_export_then_import_round_trips(tmp_path: Path, file_format: str) -> None:
    if file_format == "parquet":
        pytest.importorskip("pyarrow")
    written = make_source(tmp_path / "src")
    out = tmp_path / "export"
    report = transfer.export(str(tmp_path / "src"), out, format=file_format, rows_per_part=500)
    assert [(c.name, c.count) for c in report.collections] == [("docs", N), ("small", 1)]
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(entry["complete"] for entry in manifest["collections"])
    back = transfer.import_(out, str(tmp_path / "dst"))
    assert [c.checksum for c in back.collections] == [c.checksum for c in report.collections]
    assert_same(tmp_path / "dst", written)


def test_jsonl_lines_are_self_describing(tmp_path: Path) -> None:
    make_source(tmp_path / "src")
    transfer.export(str(tmp_path / "src"), tmp_path / "out", collections=["small"])
    lines = (tmp_path / "out" / "small.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {"id": "only", "document": "one", "metadata": None, "embedding": [1.0, 2.0]}
    ]


def test_migrate_resumes_an_interrupted_run(tmp_path: Path) -> None:
    written = make_source(tmp_path / "src")

    def stop_after_two(name: str, done: int) -> None:
        if name == "docs" and done >= 400:
            raise Interrupted

    with pytest.raises(Interrupted):
        transfer.migrate(str(tmp_path / "src"), str(tmp_path / "dst"), batch_size=200,
                         after_batch=stop_after_two)  # fmt: skip
    with haima.PersistentClient(tmp_path / "dst") as partial:
        assert partial.get_collection("docs", embedding_function=None).count() == 400
    report = transfer.migrate(str(tmp_path / "src"), str(tmp_path / "dst"), batch_size=200)
    assert report.collections[0].resumed_at == 400
    assert_same(tmp_path / "dst", written)
    uninterrupted = transfer.migrate(str(tmp_path / "src"), str(tmp_path / "fresh"))
    assert [c.checksum for c in uninterrupted.collections] == [
        c.checksum for c in report.collections
    ]


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_an_interrupted_export_resumes_to_the_same_files(tmp_path: Path, file_format: str) -> None:
    if file_format == "parquet":
        pytest.importorskip("pyarrow")
    make_source(tmp_path / "src")
    src = str(tmp_path / "src")

    def stop(name: str, done: int) -> None:
        if name == "docs" and done >= 600:
            raise Interrupted

    with pytest.raises(Interrupted):
        transfer.export(src, tmp_path / "a", format=file_format, batch_size=300,
                        rows_per_part=300, after_batch=stop)  # fmt: skip
    transfer.export(src, tmp_path / "a", format=file_format, batch_size=300, rows_per_part=300)
    transfer.export(src, tmp_path / "b", format=file_format, batch_size=300, rows_per_part=300)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.*"))
    assert files_a == files_b
    for name in files_a:
        if name.suffix == ".jsonl":
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    readback = [b.ids for b in transfer.read_export(tmp_path / "a", "docs")]
    assert sum(map(len, readback)) == N


def test_a_source_changed_during_the_transfer_fails_verification(tmp_path: Path) -> None:
    make_source(tmp_path / "src")

    def write_to_source(name: str, done: int) -> None:
        if name == "docs" and done == 500:
            with haima.PersistentClient(tmp_path / "src") as client:
                col = client.get_collection("docs", embedding_function=None)
                col.update(ids=["doc-00001"], documents=["changed meanwhile"])

    with pytest.raises(transfer.VerificationError, match="checksums differ"):
        transfer.migrate(str(tmp_path / "src"), str(tmp_path / "dst"), batch_size=500,
                         after_batch=write_to_source)  # fmt: skip


def test_bad_endpoints_and_arguments(tmp_path: Path) -> None:
    make_source(tmp_path / "src")
    src = str(tmp_path / "src")
    with pytest.raises(haima.NotFoundError, match="no Haima store"):
        transfer.migrate(str(tmp_path / "missing"), str(tmp_path / "dst"))
    with pytest.raises(haima.InvalidArgumentError, match=r"ends in \.db"):
        transfer.migrate(src, "milvus-lite:///x.sqlite")
    with pytest.raises(haima.InvalidArgumentError, match="'nope' not found"):
        transfer.migrate(src, str(tmp_path / "dst"), collections=["nope"])
    with pytest.raises(haima.InvalidArgumentError, match="batch_size"):
        transfer.migrate(src, str(tmp_path / "dst"), batch_size=0)
    with pytest.raises(haima.InvalidArgumentError, match="format"):
        transfer.export(src, tmp_path / "out", format="csv")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(haima.InvalidArgumentError, match="not empty"):
        transfer.export(src, tmp_path / "busy")
    with pytest.raises(haima.InvalidArgumentError, match="not a Haima export"):
        transfer.import_(tmp_path / "busy", str(tmp_path / "dst"))


def test_cli_migrate_from_a_haima_server_and_export_import(tmp_path: Path) -> None:
    written = make_source(tmp_path / "served")
    with ServerProcess(tmp_path / "served", "--no-preload", "--no-access-log") as server:
        run = CliRunner().invoke(
            main, ["migrate", "--from", server.url, "--to", str(tmp_path / "dst"), "--json"],
            catch_exceptions=False,
        )  # fmt: skip
        assert run.exit_code == 0, run.output
        assert {c["name"]: c["count"] for c in json.loads(run.stdout)["collections"]} == {
            "docs": N,
            "small": 1,
        }
    assert_same(tmp_path / "dst", written)
    exported = CliRunner().invoke(main, ["export", str(tmp_path / "dst"), str(tmp_path / "x")])
    assert exported.exit_code == 0 and f"docs: {N:,} records verified" in exported.stdout
    imported = CliRunner().invoke(main, ["import", str(tmp_path / "x"), str(tmp_path / "y")])
    assert imported.exit_code == 0, imported.output
    assert_same(tmp_path / "y", written)
