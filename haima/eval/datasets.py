"""Retrieval datasets: a corpus, queries and graded relevance judgements (qrels).

Two layouts are read:

* **BEIR** — a folder with ``corpus.jsonl`` (``{"_id", "title", "text"}`` per line),
  ``queries.jsonl`` (``{"_id", "text"}``) and ``qrels/<split>.tsv`` (a header line, then
  ``query-id <TAB> corpus-id <TAB> score``; score is an integer grade, > 0 relevant).
* **Labelled** — for people labelling their own data: ``questions.csv`` (columns
  ``question``, ``relevant_ids``, optional ``id``) or ``questions.jsonl``
  (``{"question": ..., "relevant_ids": [...], "id": ...}``), plus a corpus beside it:
  ``corpus.jsonl`` as above or ``corpus.csv`` (columns ``id``, ``text``, optional
  ``title``). In the CSV, ``relevant_ids`` separates ids with ``|``; an id may carry a
  grade as ``doc7:2`` (default 1). In JSONL it is a list of ids or an ``{id: grade}``
  object.

Every problem is a `DatasetError` whose message starts with ``file:line:``.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haima.errors import InvalidArgumentError

#: Qrels: query id → {document id → grade}. Grades ≤ 0 are judged non-relevant.
Qrels = dict[str, dict[str, int]]

QUESTION_FILES = ("questions.jsonl", "questions.csv")
CORPUS_FILES = ("corpus.jsonl", "corpus.csv")
#: How many offending ids an error message lists before "and N more".
_SHOWN = 5


class DatasetError(InvalidArgumentError):
    """A dataset that cannot be read; `path` and `line` locate the problem when known."""

    def __init__(self, message: str, path: Path | None = None, line: int | None = None):
        where = "" if path is None else f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.line = line


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    title: str = ""

    @property
    def content(self) -> str:
        """What gets embedded: title and text, without repeating a title the text
        already starts with (Cranfield's texts do), as BEIR's title + text."""
        title, text = self.title.strip(), self.text.strip()
        if not title or text.startswith(title):
            return text
        return f"{title}\n{text}" if text else title


@dataclass(frozen=True)
class Dataset:
    """A corpus, the queries of one split and their judgements.

    `queries` holds only the judged queries of the split, in file order; `corpus` every
    document, in file order.
    """

    name: str
    corpus: dict[str, Document]
    queries: dict[str, str]
    qrels: Qrels
    split: str = "test"
    #: Free notes on how the set was built (e.g. a subset), shown in reports.
    notes: tuple[str, ...] = field(default=())

    def relevant(self, query_id: str) -> set[str]:
        return {d for d, grade in self.qrels.get(query_id, {}).items() if grade > 0}

    def subset(
        self, limit_queries: int | None = None, limit_docs: int | None = None, *, seed: int = 0
    ) -> Dataset:
        """A smaller set for quick runs: `limit_queries` queries drawn at random (seeded,
        file order kept) and a corpus of at least `limit_docs` documents that keeps every
        judged document of the kept queries, so their metrics stay meaningful."""
        rng = random.Random(seed)
        query_ids = list(self.queries)
        notes = list(self.notes)
        if limit_queries is not None and limit_queries < len(query_ids):
            kept = set(rng.sample(query_ids, limit_queries))
            query_ids = [q for q in query_ids if q in kept]
            notes.append(f"{limit_queries} of {len(self.queries)} queries (seed {seed})")
        qrels = {q: dict(self.qrels[q]) for q in query_ids}
        doc_ids = list(self.corpus)
        if limit_docs is not None and limit_docs < len(doc_ids):
            judged = {d for q in query_ids for d in qrels[q]}
            others = [d for d in doc_ids if d not in judged]
            fill = set(rng.sample(others, max(0, min(len(others), limit_docs - len(judged)))))
            doc_ids = [d for d in doc_ids if d in judged or d in fill]
            notes.append(f"{len(doc_ids)} of {len(self.corpus)} documents (all judged ones kept)")
        return Dataset(
            name=self.name,
            corpus={d: self.corpus[d] for d in doc_ids},
            queries={q: self.queries[q] for q in query_ids},
            qrels=qrels,
            split=self.split,
            notes=tuple(notes),
        )


def load_dataset(
    path: str | Path, split: str = "test", corpus: str | Path | None = None
) -> Dataset:
    """Read a BEIR folder, a labelled folder, or a labelled questions file (`corpus`
    names its corpus when it is not beside it). `split` applies to BEIR folders."""
    root = Path(path).expanduser()
    if root.is_dir():
        if (root / "queries.jsonl").exists() and (root / "qrels").is_dir():
            return load_beir(root, split)
        for name in QUESTION_FILES:
            if (root / name).exists():
                return load_labelled(root / name, corpus)
        raise DatasetError(
            "not a dataset: expected corpus.jsonl, queries.jsonl and qrels/<split>.tsv "
            f"(BEIR) or one of {', '.join(QUESTION_FILES)} with a corpus (labelled)",
            root,
        )
    if root.is_file():
        return load_labelled(root, corpus)
    raise DatasetError("no such file or folder", root)


# -- BEIR --------------------------------------------------------------------------------------


def load_beir(path: str | Path, split: str = "test") -> Dataset:
    """Read a BEIR-layout folder; see the module docstring."""
    root = Path(path).expanduser()
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        found = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
        raise DatasetError(
            f"no split {split!r} (splits here: {', '.join(found) or 'none'})", qrels_path
        )
    corpus = _read_corpus(root / "corpus.jsonl")
    queries_all: dict[str, tuple[str, int]] = {
        _str_field(row, "_id", p, n): (_str_field(row, "text", p, n), n)
        for row, p, n in _unique(_jsonl(root / "queries.jsonl"), "_id")
    }
    qrels, lines = _read_qrels(qrels_path)
    _check_dangling(qrels, lines, corpus, queries_all, qrels_path)
    for query_id in qrels:
        text, number = queries_all[query_id]
        if not text.strip():  # only judged queries need a text
            raise DatasetError(
                f"query {query_id!r} has an empty 'text'", root / "queries.jsonl", number
            )
    return Dataset(
        name=root.name,
        corpus=corpus,
        queries={q: queries_all[q][0] for q in qrels},
        qrels=qrels,
        split=split,
    )


def _read_qrels(path: Path) -> tuple[Qrels, dict[tuple[str, str], int]]:
    """The judgements and the line of each (query, document) pair, for error messages."""
    qrels: Qrels = {}
    lines: dict[tuple[str, str], int] = {}
    with path.open(encoding="utf-8-sig") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) == 4:  # TREC's "qid 0 docid grade"
                fields = [fields[0], fields[2], fields[3]]
            if len(fields) != 3:
                raise DatasetError(
                    f"expected 3 tab-separated fields (query-id, corpus-id, score), "
                    f"got {len(fields)}: {line[:80]!r}",
                    path,
                    number,
                )
            query_id, doc_id, score = (f.strip() for f in fields)
            if number == 1 and not _is_int(score):
                continue  # the header line
            if not _is_int(score):
                raise DatasetError(f"score must be an integer, got {score!r}", path, number)
            if not query_id or not doc_id:
                raise DatasetError("empty query-id or corpus-id", path, number)
            if (query_id, doc_id) in lines:
                raise DatasetError(
                    f"pair ({query_id}, {doc_id}) judged twice (first on line "
                    f"{lines[query_id, doc_id]})",
                    path,
                    number,
                )
            qrels.setdefault(query_id, {})[doc_id] = int(score)
            lines[query_id, doc_id] = number
    if not qrels:
        raise DatasetError("the split is empty: no judgements after the header", path)
    return qrels, lines


# -- labelled ----------------------------------------------------------------------------------


def load_labelled(path: str | Path, corpus: str | Path | None = None) -> Dataset:
    """Read `questions.csv` / `questions.jsonl` and its corpus; see the module docstring."""
    questions = Path(path).expanduser()
    corpus_path = Path(corpus).expanduser() if corpus is not None else _beside(questions)
    docs = _read_corpus(corpus_path)
    rows = _csv(questions) if questions.suffix == ".csv" else _jsonl(questions)
    queries: dict[str, str] = {}
    qrels: Qrels = {}
    lines: dict[tuple[str, str], int] = {}
    for row, file, number in rows:
        query_id = str(row.get("id") or f"q{number}")
        if query_id in queries:
            raise DatasetError(f"duplicate question id {query_id!r}", file, number)
        queries[query_id] = _str_field(row, "question", file, number, allow_empty=False)
        grades = _grades(row.get("relevant_ids"), file, number)
        qrels[query_id] = grades
        lines.update({(query_id, d): number for d in grades})
    if not queries:
        raise DatasetError("no questions", questions)
    _check_dangling(qrels, lines, docs, queries, questions)
    name = questions.parent.name if questions.stem == "questions" else questions.stem
    return Dataset(name=name, corpus=docs, queries=queries, qrels=qrels, split="all")


def _beside(questions: Path) -> Path:
    for name in CORPUS_FILES:
        if (questions.parent / name).is_file():
            return questions.parent / name
    raise DatasetError(
        f"no corpus beside the questions: expected {' or '.join(CORPUS_FILES)} in "
        f"{questions.parent}, or name one with --corpus",
        questions,
    )


def _grades(value: Any, path: Path, line: int) -> dict[str, int]:
    """`relevant_ids` as {id: grade}: "a|b:2" (CSV), ["a", "b"] or {"a": 2} (JSONL)."""
    if isinstance(value, str):  # CSV: "id|id:grade"; a ":digits" suffix is a grade
        pairs = [_split_grade(item.strip()) for item in value.split("|") if item.strip()]
    elif isinstance(value, list):
        pairs = [(item, 1) for item in value]
    elif isinstance(value, Mapping):
        pairs = list(value.items())
    else:
        raise DatasetError(
            "relevant_ids: expected ids separated by '|' (CSV), a list of ids or an "
            "{id: grade} object (JSONL)",
            path,
            line,
        )
    grades: dict[str, int] = {}
    for doc_id, grade in pairs:
        if not isinstance(doc_id, str) or not doc_id.strip():
            raise DatasetError(f"relevant_ids: bad id {doc_id!r}", path, line)
        if isinstance(grade, bool) or not isinstance(grade, int):
            raise DatasetError(f"relevant_ids: grade of {doc_id!r} must be an integer", path, line)
        grades[doc_id.strip()] = grade
    if not grades:
        raise DatasetError("relevant_ids: no relevant document given", path, line)
    return grades


def _split_grade(item: str) -> tuple[str, int]:
    doc_id, colon, grade = item.rpartition(":")
    if colon and doc_id and _is_int(grade):
        return doc_id, int(grade)
    return item, 1


# -- shared readers ---------------------------------------------------------------------------


def _read_corpus(path: Path) -> dict[str, Document]:
    rows = _csv(path) if path.suffix == ".csv" else _jsonl(path)
    key = "id" if path.suffix == ".csv" else "_id"
    corpus = {
        _str_field(row, key, p, n): Document(
            id=_str_field(row, key, p, n),
            text=_str_field(row, "text", p, n),
            title=_str_field(row, "title", p, n) if row.get("title") is not None else "",
        )
        for row, p, n in _unique(rows, key)
    }
    if not corpus:
        raise DatasetError("the corpus is empty", path)
    return corpus


Row = tuple[dict[str, Any], Path, int]


def _jsonl(path: Path) -> Iterator[Row]:
    if not path.is_file():
        raise DatasetError("file not found", path)
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(
                    f"invalid JSON: {exc.msg} (column {exc.colno})", path, number
                ) from None
            if not isinstance(row, dict):
                raise DatasetError(
                    f"expected a JSON object, got {type(row).__name__}", path, number
                )
            yield row, path, number


def _csv(path: Path) -> Iterator[Row]:
    if not path.is_file():
        raise DatasetError("file not found", path)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        try:
            for row in reader:
                if None in row:  # DictReader files surplus cells under the key None
                    raise DatasetError(
                        "more cells than the header line has columns (quote a cell that holds a comma)",
                        path,
                        reader.line_num,
                    )
                if not any((v or "").strip() for v in row.values()):
                    continue
                yield dict(row), path, reader.line_num
        except csv.Error as exc:
            raise DatasetError(f"malformed CSV: {exc}", path, reader.line_num) from exc


def _unique(rows: Iterator[Row], key: str) -> Iterator[Row]:
    """`rows`, refusing a repeated `key` (the error names both lines)."""
    seen: dict[str, int] = {}
    for row, path, number in rows:
        value = _str_field(row, key, path, number)
        if value in seen:
            raise DatasetError(
                f"duplicate {key} {value!r} (first on line {seen[value]})", path, number
            )
        seen[value] = number
        yield row, path, number


def _str_field(
    row: Mapping[str, Any], key: str, path: Path, line: int, *, allow_empty: bool = True
) -> str:
    value = row.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and key.endswith("id"):
        value = str(value)  # numeric ids in JSON ("_id": 17) are common
    if not isinstance(value, str):
        raise DatasetError(
            f"missing {key!r}" if value is None else f"{key!r} must be a string",
            path,
            line,
        )
    if key.endswith("id") and not value.strip():
        raise DatasetError(f"empty {key!r}", path, line)
    if not allow_empty and not value.strip():
        raise DatasetError(f"empty {key!r}", path, line)
    return value.strip() if key.endswith("id") else value


def _check_dangling(
    qrels: Qrels,
    lines: Mapping[tuple[str, str], int],
    corpus: Mapping[str, object],
    queries: Mapping[str, object],
    path: Path,
) -> None:
    """Refuse judgements that name a document or query the dataset lacks."""
    for kind, pool, position in (("query", queries, 0), ("document", corpus, 1)):
        missing = [pair for pair in lines if pair[position] not in pool]
        if not missing:
            continue
        ids = sorted({pair[position] for pair in missing})
        shown = ", ".join(ids[:_SHOWN]) + (
            f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else ""
        )
        where = "queries" if kind == "query" else "corpus"
        raise DatasetError(
            f"judgement names {kind} {missing[0][position]!r}, which the {where} lacks "
            f"({len(ids)} missing {kind} id(s): {shown})",
            path,
            lines[missing[0]],
        )


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True
