"""Loaders on small files made here: text encodings, Markdown, reST, HTML, a hand-written
two-page PDF, a python-docx document, CSV and JSONL; broken files are reported, skipped."""

from __future__ import annotations

import codecs
import json
import sys
from pathlib import Path

import docx
import pytest

from haima.embeddings import MissingDependencyError
from haima.rag import Document, LoadError, find_files, load, load_bytes, load_file


def make_pdf(pages: list[str], title: str | None = None) -> bytes:
    """A minimal valid PDF: one Helvetica text line per page, optional /Title."""
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    kids = []
    for i, text in enumerate(pages):
        page, content = 4 + 2 * i, 5 + 2 * i
        kids.append(f"{page} 0 R")
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 14 Tf 72 720 Td ({escaped}) Tj ET".encode("latin-1")
        objects[page] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % content
        )
        objects[content] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    objects[2] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>".encode()
    info = ""
    if title is not None:
        info_id = 4 + 2 * len(pages)
        objects[info_id] = f"<< /Title ({title}) >>".encode("latin-1")
        info = f" /Info {info_id} 0 R"
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    xref = len(out)
    size = max(objects) + 1
    out += f"xref\n0 {size}\n0000000000 65535 f \n".encode()
    for number in range(1, size):
        out += f"{offsets[number]:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {size} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


# -- encodings ---------------------------------------------------------------------------

CHINESE = "第一章 总则\n第一条 为了规范数据管理，制定本办法。海马是一个向量数据库。"


@pytest.mark.parametrize(
    "data",
    [
        CHINESE.encode("utf-8"),
        codecs.BOM_UTF8 + CHINESE.encode("utf-8"),
        CHINESE.encode("utf-16"),  # with its BOM
        CHINESE.encode("gbk"),
        CHINESE.encode("gb18030"),
        ("中文" * 200 + "\n" + CHINESE).encode("gbk"),  # long: charset-normalizer decides
    ],
    ids=["utf8", "utf8-bom", "utf16-bom", "gbk", "gb18030", "gbk-long"],
)
def test_text_encodings_are_detected(data: bytes) -> None:
    (document,) = load_bytes(data, "law.txt").documents
    assert document.text.endswith(CHINESE)
    assert not document.text.startswith("\ufeff")
    assert document.metadata == {"source": "law.txt"}


def test_short_gbk_text_is_not_mistaken_for_another_encoding(tmp_path: Path) -> None:
    # Two characters: charset-normalizer alone guesses Big5 here.
    (tmp_path / "a.txt").write_bytes("中文".encode("gbk"))
    assert load_file(tmp_path / "a.txt")[0].text == "中文"


def test_a_forced_encoding_is_used() -> None:
    data = "café".encode("latin-1")
    assert load_bytes(data, "a.txt", encoding="latin-1").documents[0].text == "café"
    with pytest.raises(LoadError, match="cannot decode as ascii"):
        load_bytes(data, "a.txt", encoding="ascii")


def test_binary_data_is_a_load_error() -> None:
    with pytest.raises(LoadError, match="binary"):
        load_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "image.txt")


# -- text formats ------------------------------------------------------------------------


def test_markdown_title_from_front_matter_or_first_h1() -> None:
    md = '---\ntitle: "The Guide"\ntags: x\n---\n# Intro\n\nText.\n'
    (document,) = load_bytes(md.encode(), "guide.md").documents
    assert document.metadata == {"source": "guide.md", "title": "The Guide"}
    assert document.text == "# Intro\n\nText.\n"  # front matter is not content
    (plain,) = load_bytes(b"Preface.\n\n## Two\n\n# One **bold**\n", "x.md").documents
    assert plain.metadata["title"] == "One bold"


def test_rst_title() -> None:
    rst = "=======\nHaima\n=======\n\nIntro\n-----\n\nText here.\n"
    (document,) = load_bytes(rst.encode(), "index.rst").documents
    assert document.metadata["title"] == "Haima"
    assert "Text here." in document.text


def test_html_gives_visible_text_paragraphs_and_title() -> None:
    html = """<!doctype html><html><head><title> 海马 &amp; FAISS </title>
    <style>body { color: red }</style><script>var secret = "do not index";</script></head>
    <body><h1>Heading</h1><p>First   paragraph
    continues.</p><p>Second<br>line &lt;b&gt;</p><noscript>enable js</noscript>
    <ul><li>one</li><li>two</li></ul></body></html>"""
    (document,) = load_bytes(html.encode(), "page.html").documents
    assert document.metadata["title"] == "海马 & FAISS"
    assert document.text == (
        "Heading\n\nFirst paragraph continues.\n\nSecond\nline <b>\n\none\n\ntwo"
    )
    assert "secret" not in document.text and "color" not in document.text


def test_html_without_head_end_tag_or_title_uses_h1() -> None:
    html = "<html><head><meta charset=utf-8><body><h1>Only H1</h1><p>x</p>"
    (document,) = load_bytes(html.encode(), "a.htm").documents
    assert document.metadata["title"] == "Only H1"
    assert document.text == "Only H1\n\nx"


# -- PDF and Word ------------------------------------------------------------------------


def test_pdf_pages_become_documents_with_page_numbers(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(make_pdf(["Hello page one.", "Second page (with parens)."], "My Report"))
    documents = load_file(path)
    assert [d.text for d in documents] == ["Hello page one.", "Second page (with parens)."]
    assert [d.metadata for d in documents] == [
        {"source": "report.pdf", "title": "My Report", "page": 1},
        {"source": "report.pdf", "title": "My Report", "page": 2},
    ]


def test_pdf_without_text_is_reported() -> None:
    with pytest.raises(LoadError, match=r"no extractable text.*OCR"):
        load_bytes(make_pdf([""]), "scan.pdf")


def test_docx_sections_keep_heading_paths(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("User Guide", 0)
    document.add_paragraph("Welcome.")
    document.add_heading("Intro", 1)
    document.add_paragraph("Haima stores vectors.")
    document.add_heading("Install", 2)
    document.add_paragraph("pip install haima")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "OS", "Linux"
    table.cell(1, 0).text, table.cell(1, 1).text = "Python", "3.11"
    document.add_heading("Usage", 1)
    document.add_heading("Empty", 2)  # nothing under it: joins the next section
    document.add_heading("Query", 3)
    document.add_paragraph("collection.query(...)")
    path = tmp_path / "guide.docx"
    document.save(str(path))

    loaded = load_file(path)
    assert [(d.metadata.get("headings"), d.text) for d in loaded] == [
        (None, "User Guide\n\nWelcome."),
        ("Intro", "Intro\n\nHaima stores vectors."),
        ("Intro > Install", "Install\n\npip install haima\n\nOS | Linux\nPython | 3.11"),
        ("Usage > Empty > Query", "Usage\n\nEmpty\n\nQuery\n\ncollection.query(...)"),
    ]
    assert {d.metadata["title"] for d in loaded} == {"User Guide"}


# -- tables ------------------------------------------------------------------------------


def test_csv_rows_with_a_text_column_and_typed_metadata() -> None:
    data = (
        "id,question,year,score,code,source,$bad,note\n"
        "1,什么是海马？,2024,0.5,007,web,x,\n"
        "2,,2023,1.5,008,web,x,empty text\n"
        "3,How fast?,2022,-2e3,x9,book,x,hi\n"
    )
    loaded = load_bytes(data.encode("utf-8"), "faq.csv", text_field="question")
    assert [d.text for d in loaded.documents] == ["什么是海马？", "How fast?"]
    assert loaded.documents[0].metadata == {
        "source": "faq.csv",
        "row": 1,
        "id": 1,
        "year": 2024,
        "score": 0.5,
        "code": "007",  # a leading zero keeps it text
        "field_source": "web",  # renamed, not lost, not overwriting `source`
    }
    assert loaded.documents[1].metadata["score"] == -2000.0
    assert loaded.documents[1].metadata["row"] == 3
    assert loaded.warnings == ["row 2: empty 'question', skipped"]


def test_csv_default_text_column_and_a_clear_error_without_one() -> None:
    (document,) = load_bytes(b"content;lang\nhello;en\n", "a.csv").documents  # sniffed ;
    assert (document.text, document.metadata["lang"]) == ("hello", "en")
    with pytest.raises(LoadError, match=r"no text column.*text_field.*'a', 'b'"):
        load_bytes(b"a,b\n1,2\n", "nums.csv")
    with pytest.raises(LoadError, match="no column 'body'"):
        load_bytes(b"a,b\n1,2\n", "nums.csv", text_field="body")


def test_tsv() -> None:
    (document,) = load_bytes(b"text\tn\nhello, world\t3\n", "a.tsv").documents
    assert document.text == "hello, world" and document.metadata["n"] == 3


def test_jsonl_keeps_flat_fields_and_reports_bad_lines() -> None:
    lines = [
        json.dumps({"text": "第一条", "lang": "zh", "n": 1, "ok": True, "tags": ["a"]}),
        "{not json",
        json.dumps(["a list"]),
        "",
        json.dumps({"text": "", "lang": "en"}),
        json.dumps({"text": "second", "score": 2.5, "extra": {"nested": 1}, "gone": None}),
    ]
    loaded = load_bytes("\n".join(lines).encode(), "data.jsonl")
    assert [(d.text, d.metadata) for d in loaded.documents] == [
        ("第一条", {"source": "data.jsonl", "line": 1, "lang": "zh", "n": 1, "ok": True}),
        ("second", {"source": "data.jsonl", "line": 6, "score": 2.5}),
    ]
    assert loaded.warnings[0].startswith("line 2: not JSON")
    assert loaded.warnings[1:3] == [
        "line 3: not a JSON object, skipped",
        "line 5: no text in 'text', skipped",
    ]
    assert "'extra', 'tags'" in loaded.warnings[3]


def test_jsonl_custom_field() -> None:
    data = json.dumps({"q": "hi", "a": "answer"}).encode()
    (document,) = load_bytes(data, "qa.ndjson", text_field="a").documents
    assert document.text == "answer" and document.metadata["q"] == "hi"


# -- folders -----------------------------------------------------------------------------


def test_folder_globs_hidden_files_and_relative_sources(tmp_path: Path) -> None:
    (tmp_path / "docs" / "deep").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\nalpha", encoding="utf-8")
    (tmp_path / "docs" / "deep" / "b.md").write_text("beta", encoding="utf-8")
    (tmp_path / "docs" / "c.txt").write_text("gamma", encoding="utf-8")
    (tmp_path / "docs" / "d.bin").write_bytes(b"\x00\x01")
    (tmp_path / ".git" / "notes.md").write_text("hidden", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("hidden", encoding="utf-8")

    everything = load(tmp_path)
    assert everything.sources == ["docs/a.md", "docs/c.txt", "docs/deep/b.md"]
    assert everything.failures == []  # .bin is not a supported type: not taken by default
    only_md = load(tmp_path, glob=["docs/**/*.md"])
    assert only_md.sources == ["docs/a.md", "docs/deep/b.md"]
    two = load(tmp_path / "docs", glob=["*.txt", "deep/*.md", "*.txt"])
    assert [d.metadata["source"] for d in two.documents] == ["c.txt", "deep/b.md"]
    assert [s for s, _ in find_files(tmp_path / "docs", "**/*.md")] == ["a.md", "deep/b.md"]


def test_broken_files_are_reported_and_skipped(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("fine", encoding="utf-8")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04 not a zip")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02\xff")
    (tmp_path / "no_text.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (tmp_path / "data.xyz").write_text("?", encoding="utf-8")

    result = load(tmp_path, glob="*")
    assert result.sources == ["good.txt"]
    assert [d.text for d in result.documents] == ["fine"]
    failures = {f.source: f.error for f in result.failures}
    assert sorted(failures) == [
        "binary.txt",
        "broken.docx",
        "broken.pdf",
        "data.xyz",
        "no_text.csv",
    ]
    assert failures["broken.pdf"].startswith("cannot read it as pdf")
    assert failures["broken.docx"].startswith("cannot read it as docx")
    assert "binary" in failures["binary.txt"]
    assert "unsupported file type '.xyz'" in failures["data.xyz"]
    assert "text_field" in failures["no_text.csv"]


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load(tmp_path / "nowhere")


def test_a_missing_optional_package_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.pdf").write_bytes(make_pdf(["text"]))
    (tmp_path / "b.txt").write_text("still loads", encoding="utf-8")
    monkeypatch.setitem(sys.modules, "pypdf", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'haima\[rag\]'") as info:
        load_file(tmp_path / "a.pdf")
    assert info.value.package == "pypdf" and info.value.extra == "rag"
    result = load(tmp_path)  # in a folder it is one more reported file
    assert result.sources == ["b.txt"]
    assert "haima[rag]" in result.failures[0].error


def test_documents_are_plain_dataclasses() -> None:
    document = Document("x")
    assert document.metadata == {}
    document.metadata["k"] = 1
    assert Document("y").metadata == {}  # no shared default
