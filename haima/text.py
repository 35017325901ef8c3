"""Word segmentation for the keyword (BM25) index: Chinese by jieba, the rest by SQLite.

A document becomes a string of space-separated words. Runs of CJK ideographs are cut
into words by `rjieba` in search mode (a long word also yields its dictionary sub-words,
so "北京天安门广场" is found by "北京" and "广场"); everything else is kept as written and
left to FTS5's `porter unicode61` tokenizer, which splits on non-alphanumerics, folds case
and diacritics and stems English. Only CJK runs go to jieba because it splits other
scripts badly ("café" → "caf" "é", Cyrillic letter by letter, "B型号" → "B型" "号").

Queries go through the same segmentation, so the words of a query and of a document
agree. `rjieba` is an optional dependency (the `rag` extra), imported on first use.
"""

from __future__ import annotations

import functools
import queue
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from haima._deps import missing_package
from haima.errors import MissingDependencyError

A = TypeVar("A")
R = TypeVar("R")

#: Version of the rules below; a change (or another jieba release) rebuilds indexes.
RULES_VERSION = 1

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
#: A run of CJK ideographs with the punctuation and spaces between them (\W), which jieba
#: splits off itself; Latin letters and digits end a run, so jieba never sees them.
_CJK_RUN = re.compile(f"([{_HAN}][{_HAN}\\W]*)")  # one group: re.split keeps the runs
#: Joins runs for one jieba call: a letter (so never inside a run) outside jieba's
#: word characters (so always a word of its own).
_RUN_JOINT = "ω"
_FULL_WIDTH = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]+")
_FULL_WIDTH_TO_ASCII = {code: code - 0xFEE0 for code in range(0xFF10, 0xFF5B)}
#: Document separator in a batch: jieba keeps every character, so it survives a cut.
_SEP = "\n"
#: Words dropped from queries (kept in documents): they match most records, which makes
#: an OR query slow, and they carry almost no BM25 weight. A query of nothing else keeps
#: them.
_STOPWORDS_TEXT = (
    "的 了 是 在 和 与 及 或 也 都 就 而 着 把 被 让 给 从 对 向 于 为 以 之 其 这 那 这个 那个 "
    "这些 那些 有 没有 不 吗 呢 吧 啊 呀 么 什么 哪 哪个 哪些 哪里 怎么 怎样 如何 为什么 谁 "
    "多少 几 我 你 他 她 它 我们 你们 他们 是否 "
    "a an and are as at be by did do does for from how in is it its of on or that the "
    "this to was were what when where which who why with"
)
STOPWORDS = frozenset(_STOPWORDS_TEXT.split(" "))
#: Segmenting a batch this large runs on two threads (jieba releases the GIL).
_PARALLEL_BATCH = 512
#: Documents per step of `SegmentedLater`: small enough for indexing to start early,
#: large enough that a step's fixed costs do not matter.
_STEP = 1_000


def missing_rjieba() -> MissingDependencyError:
    return missing_package("rjieba", "rag", "keyword search (Chinese word segmentation)")


@functools.lru_cache(maxsize=1)
def _cutter() -> Callable[[str], list[str]]:
    """jieba's search-mode cut, from a private instance: words a user adds to rjieba's
    shared instance must not change how indexed documents are segmented."""
    try:
        import rjieba  # optional dependency, loaded on first use
    except ImportError as exc:
        raise missing_rjieba() from exc
    cut: Callable[[str], list[str]] = rjieba.Jieba().cut_for_search
    return cut


@functools.lru_cache(maxsize=1)
def segmenter_version() -> str:
    """Identifies the segmentation: an index built by another one is rebuilt. Raises
    `MissingDependencyError` without rjieba."""
    import importlib.metadata  # 24 ms at import: only here, not at every start

    _cutter()
    return f"haima-{RULES_VERSION};rjieba-{importlib.metadata.version('rjieba')}"


def segment_documents(documents: Sequence[str]) -> list[str]:
    """Each document as space-separated words (see the module docstring)."""
    if not documents:
        return []
    if len(documents) < _PARALLEL_BATCH:
        return _segment_batch(documents)
    _cutter()  # loaded here, once, not by two threads at the same time
    half = len(documents) // 2
    first = _in_thread(_segment_batch, documents[:half])
    rest = _segment_batch(documents[half:])
    return first() + rest


class SegmentedLater:
    """Documents segmented on a helper thread, in steps of `_STEP`, while the caller does
    other work; iterating yields each document's words (None for None) as soon as its
    step is done, so that indexing the first steps overlaps segmenting the next (the
    SQLite writes release the GIL, and so does jieba). Small batches are segmented at
    once. Iterate it once, or call `result()` as often as needed."""

    def __init__(self, documents: Sequence[str | None]) -> None:
        self._documents = list(documents)
        self._result: list[str | None] | None = None
        present = [d for d in self._documents if d is not None]
        self._steps: queue.SimpleQueue[list[str] | BaseException] = queue.SimpleQueue()
        if len(present) < _PARALLEL_BATCH:
            self._steps.put(_segment_batch(present) if present else [])
        else:
            _cutter()  # loaded (or MissingDependencyError raised) in the caller's thread
            threading.Thread(
                target=self._run, args=(present,), name="haima-segment", daemon=True
            ).start()

    def _run(self, present: list[str]) -> None:
        try:
            for start in range(0, len(present), _STEP):
                self._steps.put(_segment_batch(present[start : start + _STEP]))
        except BaseException as exc:  # re-raised in the caller's thread
            self._steps.put(exc)

    def __iter__(self) -> Iterator[str | None]:
        if self._result is not None:
            yield from self._result
            return
        words: Iterator[str] = iter(())
        for document in self._documents:
            if document is None:
                yield None
                continue
            segmented = next(words, None)
            while segmented is None:
                step = self._steps.get()
                if isinstance(step, BaseException):
                    raise step
                words = iter(step)
                segmented = next(words, None)
            yield segmented

    def result(self) -> list[str | None]:
        """Every document's words (waits for the helper thread); kept for later calls."""
        if self._result is None:
            self._result = list(self)
        return self._result


def query_terms(text: str) -> list[str]:
    """The distinct words of a query, stopwords dropped unless nothing else is left."""
    words = [w for w in _segment_batch([text])[0].split() if _has_word_char(w)]
    distinct = list(dict.fromkeys(words))
    content = [w for w in distinct if w.lower() not in STOPWORDS]
    return content or distinct


def _segment_batch(documents: Sequence[str]) -> list[str]:
    """The whole batch in a few C-level passes and one jieba call: per-document (or
    per-run) Python work was a third of the cost of segmenting."""
    text = _SEP.join(documents)
    if text.count(_SEP) != len(documents) - 1:
        # Segmented text is only indexed, never shown: a separator may become a space.
        text = _SEP.join(d.replace(_SEP, " ") for d in documents)
    # Full-width letters and digits (ＡＰＩ, ２０２４) as ASCII, which unicode61 would
    # otherwise keep apart from their ASCII spelling. (Not NFKC: it cost 18 µs per
    # 100-character chunk, half of jieba's time, for what matters in practice here.)
    text = _FULL_WIDTH.sub(_to_ascii, text)
    parts = _CJK_RUN.split(text)  # [other, run, other, run, …, other]
    runs = parts[1::2]
    # The runs cut as one text, joined by a character no run holds (a letter outside
    # the CJK blocks) and jieba keeps as a word of its own: splitting there gives each
    # run's words back, padded with spaces to keep them apart from neighbouring Latin.
    words = (" " + " ".join(_cutter()(_RUN_JOINT.join(runs))) + " ").split(_RUN_JOINT)
    if len(words) != len(runs):  # not expected; stay correct if a jieba release differs
        words = [" " + " ".join(_cutter()(run)) + " " for run in runs]
    parts[1::2] = words
    # A run may span the separator between two documents; jieba keeps it as a word of
    # its own, so splitting afterwards still finds every document's boundary.
    return "".join(parts).split(_SEP)


def _to_ascii(match: re.Match[str]) -> str:
    return match.group().translate(_FULL_WIDTH_TO_ASCII)


def _has_word_char(word: str) -> bool:
    # unicode61 keeps letters and digits only; a "word" of punctuation matches nothing.
    return any(ch.isalnum() for ch in word)


def _in_thread(fn: Callable[[A], R], arg: A) -> Callable[[], R]:
    """Run fn(arg) on a new thread; the returned function joins it and returns (or
    raises) its outcome. A thread per call, not a pool: calls are big batches, and a
    pool's threads do not survive a fork."""
    outcome: list[R] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(fn(arg))
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="haima-segment", daemon=True)
    thread.start()

    def result() -> R:
        thread.join()
        if failure:
            raise failure[0]
        return outcome[0]

    return result


def segmented(documents: Sequence[str | None]) -> list[str | None]:
    """Documents as the keyword index stores them (None stays None)."""
    words = iter(segment_documents([d for d in documents if d is not None]))
    return [None if d is None else next(words) for d in documents]
