"""Incremental ingestion: after every run the collection holds exactly what a fresh
ingestion of the folder would; unchanged files are never re-embedded."""

from __future__ import annotations

import hashlib
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import haima
from haima._progress import AUTO_THRESHOLD
from haima.errors import InvalidArgumentError
from haima.rag import Document, IngestReport, MarkdownSplitter, RecursiveSplitter, ingest

DIM = 8


class CountingEmbedding:
    """Deterministic vectors from a hash of the text; records every call's batch size."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            rows.append(np.random.default_rng(seed).standard_normal(DIM))
        return np.asarray(rows, dtype=np.float32)

    @property
    def embedded(self) -> int:
        return sum(self.calls)


@pytest.fixture
def client() -> haima.Client:
    return haima.Client()


def collection(
    client: haima.Client, name: str = "docs"
) -> tuple[haima.Collection, CountingEmbedding]:
    fn = CountingEmbedding()
    return client.get_or_create_collection(name, embedding_function=fn), fn


def snapshot(coll: haima.Collection) -> dict[str, tuple[str | None, dict[str, Any]]]:
    got = coll.get(include=["documents", "metadatas"])
    return {
        i: (d, dict(m or {}))
        for i, d, m in zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True)
    }


def assert_matches_fresh(
    client: haima.Client, coll: haima.Collection, folder: Path, **options: Any
) -> None:
    """The incrementally maintained collection equals a from-scratch ingestion."""
    fresh, _ = collection(client, f"fresh-{len(client.list_collections())}")
    ingest(fresh, folder, progress=False, **options)
    assert snapshot(coll) == snapshot(fresh)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


LONG = "\n\n".join(f"第{i}段。" + "这是一句用来填充的中文句子。" * 6 for i in range(8))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "notes"
    write(root / "a.md", "# Alpha\n\nFirst file.\n\n## Part\n\nMore about alpha.")
    write(root / "sub" / "b.txt", LONG)
    write(root / "c.jsonl", json.dumps({"text": "a row", "lang": "en"}) + "\n")
    return root


def test_first_run_adds_every_file_with_provenance(client: haima.Client, folder: Path) -> None:
    coll, fn = collection(client)
    report = ingest(coll, folder, chunk_size=120, chunk_overlap=20, progress=False)
    assert report.added == ["a.md", "c.jsonl", "sub/b.txt"]
    assert (report.updated, report.removed, report.skipped, report.failed) == ([], [], [], [])
    records = snapshot(coll)
    assert report.chunks_added == len(records) == fn.embedded
    assert len(fn.calls) == 1  # every file's chunks embedded in one batch
    assert records["a.md#0"] == (
        "# Alpha\n\nFirst file.",
        {
            "source": "a.md",
            "title": "Alpha",
            "headings": "Alpha",
            "source_hash": hashlib.sha256((folder / "a.md").read_bytes()).hexdigest(),
            "chunk": 0,
            "chunks": 2,
            "ingest_settings": "markdown(120,20,chars),h6",
        },
    )
    assert records["a.md#1"][1]["headings"] == "Alpha > Part"
    assert records["c.jsonl#0"][1]["lang"] == "en" and records["c.jsonl#0"][1]["line"] == 1
    b_chunks = sorted((m["chunk"], d) for d, m in records.values() if m["source"] == "sub/b.txt")
    assert [i for i, _ in b_chunks] == list(range(len(b_chunks))) and len(b_chunks) > 5
    assert all(len(d or "") <= 120 for d, _ in records.values())
    assert_matches_fresh(client, coll, folder, chunk_size=120, chunk_overlap=20)


def test_unchanged_second_run_embeds_nothing(client: haima.Client, folder: Path) -> None:
    coll, fn = collection(client)
    ingest(coll, folder, progress=False)
    before = snapshot(coll)
    fn.calls.clear()
    report = ingest(coll, folder, progress=False)
    assert fn.calls == []
    assert report.skipped == ["a.md", "c.jsonl", "sub/b.txt"]
    assert not report.changed and report.chunks_added == report.chunks_removed == 0
    assert snapshot(coll) == before


def test_edit_add_and_delete_between_runs(client: haima.Client, folder: Path) -> None:
    coll, fn = collection(client)
    options: dict[str, Any] = {"chunk_size": 100, "chunk_overlap": 10}
    ingest(coll, folder, progress=False, **options)
    b_before = len(coll.get(where={"source": "sub/b.txt"})["ids"])

    write(folder / "a.md", "# Alpha\n\nRewritten.")  # edited: 2 chunks -> 1
    write(folder / "new" / "d.txt", "A new file.")
    (folder / "c.jsonl").unlink()
    fn.calls.clear()
    report = ingest(coll, folder, progress=False, **options)
    assert report.updated == ["a.md"]
    assert report.added == ["new/d.txt"]
    assert report.removed == ["c.jsonl"]
    assert report.skipped == ["sub/b.txt"]
    assert report.chunks_added == 2 and report.chunks_removed == 2 + 1
    assert fn.embedded == 2  # only the edited and the new file
    records = snapshot(coll)
    assert {m["source"] for _, m in records.values()} == {"a.md", "sub/b.txt", "new/d.txt"}
    assert records["a.md#0"][0] == "# Alpha\n\nRewritten." and "a.md#1" not in records
    assert len([1 for _, m in records.values() if m["source"] == "sub/b.txt"]) == b_before
    assert_matches_fresh(client, coll, folder, **options)

    # The edited file grows again; the deleted one comes back.
    write(folder / "a.md", "# Alpha\n\n" + LONG)
    write(folder / "c.jsonl", json.dumps({"text": "back again"}))
    report = ingest(coll, folder, progress=False, **options)
    assert (report.updated, report.added, report.removed) == (["a.md"], ["c.jsonl"], [])
    assert_matches_fresh(client, coll, folder, **options)


def test_new_settings_resplit_every_file(client: haima.Client, folder: Path) -> None:
    coll, _ = collection(client)
    ingest(coll, folder, chunk_size=200, progress=False)
    report = ingest(coll, folder, chunk_size=80, chunk_overlap=10, progress=False)
    assert report.updated == ["a.md", "c.jsonl", "sub/b.txt"]
    assert_matches_fresh(client, coll, folder, chunk_size=80, chunk_overlap=10)
    assert ingest(coll, folder, chunk_size=80, chunk_overlap=10, progress=False).skipped == [
        "a.md",
        "c.jsonl",
        "sub/b.txt",
    ]


def test_an_interrupted_file_is_redone(client: haima.Client, folder: Path) -> None:
    coll, _ = collection(client)
    ingest(coll, folder, chunk_size=100, chunk_overlap=0, progress=False)
    coll.delete(ids=["sub/b.txt#3"])  # as if a run stopped halfway through the file
    report = ingest(coll, folder, chunk_size=100, chunk_overlap=0, progress=False)
    assert report.updated == ["sub/b.txt"] and report.skipped == ["a.md", "c.jsonl"]
    assert_matches_fresh(client, coll, folder, chunk_size=100, chunk_overlap=0)


def test_failures_are_reported_and_keep_earlier_chunks(client: haima.Client, folder: Path) -> None:
    coll, _ = collection(client)
    write(folder / "broken.pdf", "not a pdf")
    report = ingest(coll, folder, progress=False)
    assert [f.source for f in report.failed] == ["broken.pdf"]
    assert "cannot read it as pdf" in report.failed[0].error
    assert report.added == ["a.md", "c.jsonl", "sub/b.txt"]

    # c.jsonl turns unreadable: its earlier chunk stays, the failure is reported.
    write(folder / "c.jsonl", json.dumps({"other": "no text field"}))
    report = ingest(coll, folder, progress=False)
    assert sorted(f.source for f in report.failed) == ["broken.pdf", "c.jsonl"]
    assert coll.get(ids=["c.jsonl#0"])["documents"] == ["a row"]
    assert "c.jsonl" not in report.removed


def test_batches_span_files_and_respect_the_batch_size(client: haima.Client, folder: Path) -> None:
    coll, fn = collection(client)
    report = ingest(coll, folder, chunk_size=60, chunk_overlap=0, batch_size=4, progress=False)
    assert all(size <= 4 for size in fn.calls)
    assert sum(fn.calls) == report.chunks_added == coll.count()
    assert len(fn.calls) == -(-report.chunks_added // 4)  # full batches across files


def test_keep_missing_glob_and_single_file(client: haima.Client, folder: Path) -> None:
    coll, _ = collection(client)
    ingest(coll, folder, progress=False)
    (folder / "a.md").unlink()
    report = ingest(coll, folder, delete_missing=False, progress=False)
    assert report.removed == [] and coll.get(where={"source": "a.md"})["ids"]
    report = ingest(coll, folder, glob="**/*.txt", progress=False)
    assert sorted(report.removed) == ["a.md", "c.jsonl"] and report.skipped == ["sub/b.txt"]
    # One file: nothing else is considered removed.
    write(folder / "solo.md", "# Solo\n\ntext")
    report = ingest(coll, folder / "solo.md", progress=False)
    assert report.added == ["solo.md"] and report.removed == []
    assert {m["source"] for _, m in snapshot(coll).values()} == {"sub/b.txt", "solo.md"}


def test_empty_files_add_nothing(client: haima.Client, folder: Path) -> None:
    coll, _ = collection(client)
    write(folder / "empty.txt", "  \n\n ")
    report = ingest(coll, folder, progress=False)
    assert report.empty == ["empty.txt"] and "empty.txt" not in report.added
    assert "(1 empty)" in report.summary()


def test_records_not_made_by_ingest_are_left_alone(client: haima.Client, folder: Path) -> None:
    coll, _ = collection(client)
    coll.add(ids=["mine"], documents=["a hand-made record"], metadatas=[{"source": "elsewhere"}])
    ingest(coll, folder, progress=False)
    ingest(coll, folder, progress=False)
    assert coll.get(ids=["mine"])["documents"] == ["a hand-made record"]


class UpperSplitter:
    """A custom splitter: one chunk per document, upper-cased."""

    fingerprint = "upper-v1"

    def split_documents(self, documents: Sequence[Document]) -> list[Document]:
        return [Document(d.text.upper(), dict(d.metadata)) for d in documents]


def test_a_custom_splitter_and_the_report_shape(client: haima.Client, folder: Path) -> None:
    coll, _ = collection(client)
    report = ingest(coll, folder, splitter=UpperSplitter(), progress=False)
    assert coll.get(ids=["c.jsonl#0"])["documents"] == ["A ROW"]
    assert coll.get(ids=["c.jsonl#0"])["metadatas"][0]["ingest_settings"] == "upper-v1"  # type: ignore[index]
    data = report.to_dict()
    assert data["collection"] == "docs" and data["added"] == ["a.md", "c.jsonl", "sub/b.txt"]
    assert json.loads(json.dumps(data)) == data
    assert isinstance(report, IngestReport) and report.summary().startswith("3 added, 0 updated")
    with pytest.raises(InvalidArgumentError, match="split_documents"):
        ingest(coll, folder, splitter=object(), progress=False)  # type: ignore[arg-type]


def test_splitters_used_by_default(client: haima.Client, folder: Path) -> None:
    coll, _ = collection(client)
    ingest(coll, folder, chunk_size=90, chunk_overlap=9, progress=False)
    settings = {m["source"]: m["ingest_settings"] for _, m in snapshot(coll).values()}
    assert settings["a.md"] == MarkdownSplitter(90, 9).fingerprint
    assert settings["sub/b.txt"] == RecursiveSplitter(90, 9).fingerprint


def test_needs_an_embedding_function_and_a_folder(client: haima.Client, tmp_path: Path) -> None:
    bare = client.create_collection("bare", embedding_function=None)
    with pytest.raises(InvalidArgumentError, match="no embedding function"):
        ingest(bare, tmp_path, progress=False)
    coll, _ = collection(client)
    with pytest.raises(FileNotFoundError):
        ingest(coll, tmp_path / "missing", progress=False)
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        ingest(coll, tmp_path, batch_size=0, progress=False)


def test_persists_across_clients(tmp_path: Path, folder: Path) -> None:
    fn = CountingEmbedding()
    with haima.PersistentClient(tmp_path / "store") as first:
        ingest(
            first.get_or_create_collection("docs", embedding_function=fn), folder, progress=False
        )
    fn.calls.clear()
    with haima.PersistentClient(tmp_path / "store") as second:
        coll = second.get_collection("docs", embedding_function=fn)
        report = ingest(coll, folder, progress=False)
        assert len(report.skipped) == 3 and fn.calls == []


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_keeps_embedding_bars_quiet(
    client: haima.Client, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(folder / "big.txt", "\n\n".join(f"Sentence number {i} is here." for i in range(300)))
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.delenv("HAIMA_PROGRESS", raising=False)
    coll, fn = collection(client)
    ingest(coll, folder, chunk_size=30, chunk_overlap=0, batch_size=10_000, progress=False)
    assert terminal.getvalue() == "" and len(fn.calls) == 1  # no bar: one big batch

    fresh, fn = collection(client, "shown")
    report = ingest(fresh, folder, chunk_size=30, chunk_overlap=0, batch_size=10_000)
    drawn = terminal.getvalue()
    assert "files" in drawn and "chunks embedded" in drawn
    # An embedding function draws its own bar from AUTO_THRESHOLD texts: batches stay under.
    assert report.chunks_added > AUTO_THRESHOLD
    assert max(fn.calls) < AUTO_THRESHOLD and sum(fn.calls) == report.chunks_added

    monkeypatch.setenv("HAIMA_PROGRESS", "0")
    terminal.seek(0)
    terminal.truncate()
    ingest(fresh, folder, chunk_size=31, chunk_overlap=0)
    assert terminal.getvalue() == ""
