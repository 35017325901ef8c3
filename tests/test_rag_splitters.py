"""Splitters: limits, overlap, coverage and sentence boundaries as properties over random
Chinese/English text; Markdown heading paths; token-based sizing."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haima.errors import InvalidArgumentError
from haima.rag import Document, MarkdownSplitter, RecursiveSplitter

_TOKEN = re.compile(r"[\u4e00-\u9fff]|\w+|[^\w\s]")


class WordTokenizer:
    """A stand-in tokenizer: each CJK character, word or punctuation mark is a token."""

    name = "words"

    def encode(self, text: str) -> list[str]:
        return _TOKEN.findall(text)


def tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


# -- random text ---------------------------------------------------------------------------

_HANZI = "海马是一个向量数据库支持中文和英文检索的系统我们今天天气很好北京上海"
chinese_sentence = st.builds(
    lambda chars, end, quote: ("“" if quote else "") + chars + end + ("”" if quote else ""),
    st.text(alphabet=_HANZI + "，、", min_size=1, max_size=30).filter(lambda s: s[0] not in "，、"),
    st.sampled_from(["。", "！", "？", "；", "……"]),
    st.booleans(),
)
english_sentence = st.builds(
    lambda words, end: " ".join(words).capitalize() + end,
    st.lists(
        st.sampled_from(["vector", "index", "the", "faiss", "search", "a", "graph"]),
        min_size=1,
        max_size=12,
    ),
    st.sampled_from([".", "!", "?"]),
)
noise = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
sentence = st.one_of(chinese_sentence, english_sentence, noise)
paragraph = st.lists(sentence, min_size=1, max_size=8).map(
    lambda ss: "".join(
        s if i == 0 or s[:1] in "“" or not s.isascii() else " " + s for i, s in enumerate(ss)
    )
)
document = st.lists(paragraph, max_size=6).flatmap(
    lambda ps: st.sampled_from(["\n\n", "\n", " \n \n"]).map(lambda sep: sep.join(ps))
)
sizes = st.integers(min_value=4, max_value=120).flatmap(
    lambda size: st.tuples(st.just(size), st.integers(min_value=0, max_value=size - 1))
)


def check_spans(
    text: str, spans: list[tuple[int, int]], size: int, overlap: int, length: object = len
) -> None:
    measure = length if callable(length) else len
    previous_end = 0
    previous_start = -1
    for start, end in spans:
        chunk = text[start:end]
        assert chunk and chunk == chunk.strip()
        assert measure(chunk) <= size, (chunk, measure(chunk))
        assert start > previous_start  # in order, always progressing
        assert end > previous_end  # never only a repeat of the previous chunk
        if start < previous_end:  # an overlap with the previous chunk
            assert measure(text[start:previous_end]) <= overlap
        else:  # a gap holds only whitespace: nothing is lost
            assert not text[previous_end:start].strip()
        previous_start, previous_end = start, end
    assert not text[previous_end:].strip()
    if not spans:
        assert not text.strip()


@settings(max_examples=150, deadline=None)
@given(text=document, size_overlap=sizes)
def test_chunks_fit_overlap_little_and_cover_everything(
    text: str, size_overlap: tuple[int, int]
) -> None:
    size, overlap = size_overlap
    splitter = RecursiveSplitter(size, overlap)
    spans = splitter.spans(text)
    check_spans(text, spans, size, overlap)
    assert splitter.split_text(text) == [text[a:b] for a, b in spans]


@settings(max_examples=75, deadline=None)
@given(text=document, size_overlap=sizes)
def test_token_sizes_are_respected(text: str, size_overlap: tuple[int, int]) -> None:
    size, overlap = size_overlap
    for length in (WordTokenizer(), tokens):
        splitter = RecursiveSplitter(size, overlap, length=length)
        check_spans(text, splitter.spans(text), size, overlap, tokens)


_SENTENCE_END = re.compile(r"(?:[。！？；]|……)”?$")


@settings(max_examples=150, deadline=None)
@given(
    sentences=st.lists(chinese_sentence, min_size=1, max_size=30),
    size=st.integers(min_value=36, max_value=200),
    overlap=st.integers(min_value=0, max_value=35),
)
def test_chinese_sentences_that_fit_are_never_cut(
    sentences: list[str], size: int, overlap: int
) -> None:
    text = "".join(sentences)  # no spaces, no newlines: only sentence boundaries
    starts = set()
    offset = 0
    for s in sentences:
        starts.add(offset)
        offset += len(s)
    ends = {start for start in starts if start} | {len(text)}
    for start, end in RecursiveSplitter(size, overlap).spans(text):
        assert start in starts, text[start:end]  # every sentence fits (≤ 34 chars)
        assert end in ends, text[start:end]
        assert _SENTENCE_END.search(text[start:end])


def test_a_too_long_sentence_is_cut_at_clauses_then_characters() -> None:
    text = "这是一个很长的句子，它有好几个分句，每个分句都不太长，但是整个句子超过了限制。短句。"
    chunks = RecursiveSplitter(20, 0).split_text(text)
    assert chunks == [
        "这是一个很长的句子，它有好几个分句，",
        "每个分句都不太长，",
        "但是整个句子超过了限制。短句。",
    ]
    assert "".join(chunks) == text
    # No clause fits in 4: characters are the last resort.
    assert RecursiveSplitter(4, 0).split_text("一二三四五六七八九") == [
        "一二三四",
        "五六七八",
        "九",
    ]


def test_paragraphs_are_preferred_to_sentences() -> None:
    first = "First paragraph has two sentences. It is short enough."
    second = "Second paragraph is also here. It fits alone but not with the first one."
    text = f"{first}\n\n{second}"
    assert RecursiveSplitter(80, 0).split_text(text) == [first, second]
    # A sentence end is preferred to a word boundary when the chunk is full.
    english = "Alpha beta gamma delta. Epsilon zeta eta theta iota kappa lambda mu nu xi."
    assert RecursiveSplitter(40, 0).split_text(english)[0] == "Alpha beta gamma delta."


def test_overlap_repeats_whole_sentences() -> None:
    text = "一二三。四五六。七八九。十一二。十三四。十五六。"
    chunks = RecursiveSplitter(12, 4).split_text(text)
    assert chunks == ["一二三。四五六。七八九。", "七八九。十一二。十三四。", "十三四。十五六。"]
    assert RecursiveSplitter(12, 0).split_text(text) == [
        "一二三。四五六。七八九。",
        "十一二。十三四。十五六。",
    ]


def test_quotes_stay_with_their_sentence() -> None:
    text = "他说：“今天下雨了。”我们没有出门！"
    chunks = RecursiveSplitter(12, 0).split_text(text)
    assert chunks == ["他说：“今天下雨了。”", "我们没有出门！"]


def test_english_periods_inside_numbers_do_not_end_sentences() -> None:
    text = "Pi is 3.14159 and e is 2.71828 roughly. Next sentence here."
    assert RecursiveSplitter(45, 0).split_text(text) == [
        "Pi is 3.14159 and e is 2.71828 roughly.",
        "Next sentence here.",
    ]


def test_split_documents_copies_metadata() -> None:
    source = Document("一二三。四五六。", {"source": "a.txt", "page": 2})
    chunks = RecursiveSplitter(4, 0).split_documents([source])
    assert [(c.text, c.metadata) for c in chunks] == [
        ("一二三。", {"source": "a.txt", "page": 2}),
        ("四五六。", {"source": "a.txt", "page": 2}),
    ]
    chunks[0].metadata["page"] = 9
    assert source.metadata["page"] == 2


@dataclass
class Encoding:
    ids: list[int]


class HFStyleTokenizer:
    """`tokenizers.Tokenizer.encode` returns an object with `.ids`."""

    def encode(self, text: str) -> Encoding:
        return Encoding(list(range(len(text.split()))))


def test_tokenizer_objects_and_units() -> None:
    text = " ".join(f"w{i}" for i in range(25))
    chunks = RecursiveSplitter(10, 0, length=HFStyleTokenizer()).split_text(text)
    assert [len(c.split()) for c in chunks] == [10, 10, 5]
    assert (
        RecursiveSplitter(10, 2, length=WordTokenizer()).fingerprint
        == "recursive(10,2,tokens:words)"
    )
    assert RecursiveSplitter(10, 2).fingerprint == "recursive(10,2,chars)"


def test_bad_sizes_are_clear_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="chunk_size"):
        RecursiveSplitter(0)
    with pytest.raises(InvalidArgumentError, match=r"chunk_overlap.*0 to chunk_size - 1 \(9\)"):
        RecursiveSplitter(10, 10)
    with pytest.raises(InvalidArgumentError, match="length"):
        RecursiveSplitter(10, 0, length=5)  # type: ignore[arg-type]

    def three_per_char(text: str) -> int:
        return 3 * len(text)

    with pytest.raises(InvalidArgumentError, match="smaller than one character"):
        RecursiveSplitter(2, 0, length=three_per_char).split_text("abc")


def test_empty_and_blank_text() -> None:
    assert RecursiveSplitter().split_text("") == []
    assert RecursiveSplitter().split_text(" \n\n \t") == []


# -- Markdown ----------------------------------------------------------------------------

GUIDE = """---
title: Guide
---
Preamble before any heading.

# Intro

Haima is a vector database.

## Install

```sh
# not a heading: inside a code block
pip install haima
```

### From source
#### Empty heading

Clone it. Build it.

Usage
=====

Setext headings count too.

Sub part
--------

Last words.
"""


def test_markdown_sections_and_heading_paths() -> None:
    pairs = MarkdownSplitter(500, 0).split_with_headings(GUIDE)
    assert pairs == [
        ("", "Preamble before any heading."),
        ("Intro", "# Intro\n\nHaima is a vector database."),
        (
            "Intro > Install",
            "## Install\n\n```sh\n# not a heading: inside a code block\npip install haima\n```",
        ),
        (
            "Intro > Install > From source > Empty heading",
            "### From source\n#### Empty heading\n\nClone it. Build it.",
        ),
        ("Usage", "Usage\n=====\n\nSetext headings count too."),
        ("Usage > Sub part", "Sub part\n--------\n\nLast words."),
    ]


def test_markdown_long_sections_are_split_within_and_keep_their_path() -> None:
    body = "。".join(f"第{i}句话在这里" for i in range(30)) + "。"
    text = f"# 标题\n\n## 小节\n\n{body}\n\n# 下一个\n\n短。"
    documents = MarkdownSplitter(40, 8).split_documents([Document(text, {"source": "a.md"})])
    paths = [d.metadata.get("headings") for d in documents]
    assert paths[-1] == "下一个" and documents[-1].text == "# 下一个\n\n短。"
    assert set(paths[:-1]) == {"标题 > 小节"} and len(paths) > 3
    assert all(len(d.text) <= 40 and d.metadata["source"] == "a.md" for d in documents)
    # "# 标题" has no text of its own, so it opens the next section's first chunk
    assert documents[0].text.startswith("# 标题\n\n## 小节\n\n第0句")


def test_markdown_without_headings_is_one_section() -> None:
    assert MarkdownSplitter(100, 0).split_documents([Document("just text")])[0].metadata == {}
    assert MarkdownSplitter(100, 0, max_level=1).sections("# A\ntext\n## B\nmore") == [("A", 0, 18)]
