"""Reading evaluation datasets: BEIR folders, labelled CSV/JSONL, errors and subsets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from haima.eval import Dataset, DatasetError, Document, load_beir, load_dataset, load_labelled

MINI = Path(__file__).parent / "data" / "eval_mini"


def write_beir(
    root: Path,
    corpus: list[dict[str, object]] | None = None,
    queries: list[dict[str, object]] | None = None,
    qrels: str = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\n",
    split: str = "test",
) -> Path:
    corpus = corpus or [
        {"_id": "d1", "title": "One", "text": "first document"},
        {"_id": "d2", "title": "", "text": "second document"},
        {"_id": "d3", "title": "Three", "text": "third document"},
    ]
    queries = queries or [{"_id": "q1", "text": "first?"}, {"_id": "q2", "text": "second?"}]
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries))
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / f"{split}.tsv").write_text(qrels)
    return root


def where(path: Path, line: int) -> str:
    return re.escape(f"{path}:{line}:")


# -- the bundled mini set -------------------------------------------------------------------


def test_mini_dataset_is_bilingual_and_graded() -> None:
    data = load_beir(MINI, "test")
    assert len(data.corpus) >= 50 and len(data.queries) >= 20
    assert data.split == "test" and data.name == "eval_mini"
    texts = [d.content for d in data.corpus.values()]
    assert any(re.search(r"[\u4e00-\u9fff]", t) for t in texts)
    assert any(re.fullmatch(r"[\x00-\x7f]+", t) for t in texts)
    assert data.qrels["q04"] == {"c-en-7": 2, "c-zh-6": 1}
    assert data.qrels["q03"]["c-zh-7"] == 0  # judged, not relevant
    assert data.relevant("q03") == {"c-en-3"}
    assert set(data.queries) == set(data.qrels)


def test_splits_hold_their_own_queries() -> None:
    dev = load_dataset(MINI, split="dev")
    assert list(dev.queries) == ["q26", "q27", "q28"]
    assert set(load_dataset(MINI).queries).isdisjoint(dev.queries)


def test_content_joins_title_and_text_without_repeating_the_title() -> None:
    assert Document("a", "body text", "Title").content == "Title\nbody text"
    assert Document("a", "Title. body", "Title.").content == "Title. body"
    assert Document("a", "", "Only a title").content == "Only a title"
    assert Document("a", "", "").content == ""


def test_numeric_ids_and_headerless_qrels_are_read(tmp_path: Path) -> None:
    root = write_beir(
        tmp_path / "ds",
        corpus=[{"_id": 1, "text": "one"}, {"_id": 2, "text": "two"}],
        queries=[{"_id": 7, "text": "which?"}],
        qrels="7\t2\t1\n",
    )
    data = load_beir(root)
    assert data.qrels == {"7": {"2": 1}} and data.queries == {"7": "which?"}


# -- errors: each names the file and the line --------------------------------------------------


def test_qrels_naming_a_missing_document(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "ds", qrels="query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\tgone\t1\n")
    with pytest.raises(DatasetError, match=where(root / "qrels" / "test.tsv", 3)) as info:
        load_beir(root)
    assert "document 'gone'" in str(info.value) and "corpus lacks" in str(info.value)


def test_qrels_naming_a_missing_query(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "ds", qrels="query-id\tcorpus-id\tscore\nq9\td1\t1\n")
    with pytest.raises(DatasetError, match=where(root / "qrels" / "test.tsv", 2)) as info:
        load_beir(root)
    assert "query 'q9'" in str(info.value)


def test_many_dangling_ids_are_counted(tmp_path: Path) -> None:
    rows = "".join(f"q1\tmissing{i}\t1\n" for i in range(8))
    root = write_beir(tmp_path / "ds", qrels="query-id\tcorpus-id\tscore\n" + rows)
    with pytest.raises(DatasetError, match=r"8 missing document id\(s\).* and 3 more"):
        load_beir(root)


def test_empty_split(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "ds", qrels="query-id\tcorpus-id\tscore\n")
    with pytest.raises(DatasetError, match="split is empty") as info:
        load_beir(root)
    assert str(root / "qrels" / "test.tsv") in str(info.value)


def test_missing_split_lists_the_ones_there(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "ds", split="dev")
    with pytest.raises(DatasetError, match=r"no split 'test' \(splits here: dev\)"):
        load_beir(root, "test")


@pytest.mark.parametrize(
    ("qrels", "line", "message"),
    [
        ("query-id\tcorpus-id\tscore\nq1\td1\n", 2, "expected 3 tab-separated fields"),
        ("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\thigh\n", 3, "score must be an integer"),
        (
            "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td1\t2\n",
            3,
            r"judged twice \(first on line 2\)",
        ),
    ],
)
def test_malformed_qrels_line(tmp_path: Path, qrels: str, line: int, message: str) -> None:
    root = write_beir(tmp_path / "ds", qrels=qrels)
    with pytest.raises(
        DatasetError, match=where(root / "qrels" / "test.tsv", line) + ".*" + message
    ):
        load_beir(root)


def test_malformed_corpus_lines(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "ds")
    corpus = root / "corpus.jsonl"
    lines = corpus.read_text().splitlines()
    corpus.write_text("\n".join([lines[0], lines[1], '{"_id": "d3", "text": ']) + "\n")
    with pytest.raises(DatasetError, match=where(corpus, 3) + " invalid JSON"):
        load_beir(root)
    corpus.write_text("\n".join([lines[0], '{"title": "no id", "text": "x"}']) + "\n")
    with pytest.raises(DatasetError, match=where(corpus, 2) + " missing '_id'"):
        load_beir(root)
    corpus.write_text("\n".join([lines[0], lines[1], lines[0]]) + "\n")
    with pytest.raises(
        DatasetError, match=where(corpus, 3) + r" duplicate _id 'd1' \(first on line 1\)"
    ):
        load_beir(root)
    corpus.write_text("\n".join([lines[0], "[1, 2]"]) + "\n")
    with pytest.raises(DatasetError, match=where(corpus, 2) + " expected a JSON object"):
        load_beir(root)


def test_judged_query_without_text(tmp_path: Path) -> None:
    root = write_beir(
        tmp_path / "ds", queries=[{"_id": "q1", "text": "fine"}, {"_id": "q2", "text": "  "}]
    )
    with pytest.raises(DatasetError, match=where(root / "queries.jsonl", 2) + " query 'q2'"):
        load_beir(root)


def test_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a dataset"):
        load_dataset(tmp_path)


# -- labelled questions ------------------------------------------------------------------------


def test_labelled_csv_with_csv_corpus(tmp_path: Path) -> None:
    (tmp_path / "corpus.csv").write_text(
        "id,title,text\nd1,Tea,Green tea is steamed\nd2,,Black tea is oxidised\nd3,Milk,Warm milk\n",
        encoding="utf-8",
    )
    (tmp_path / "questions.csv").write_text(
        "question,relevant_ids\nhow is green tea made?,d1\nwhich teas are there?,d1|d2:2\n",
        encoding="utf-8",
    )
    data = load_dataset(tmp_path)
    assert data.queries == {"q2": "how is green tea made?", "q3": "which teas are there?"}
    assert data.qrels == {"q2": {"d1": 1}, "q3": {"d1": 1, "d2": 2}}
    assert data.corpus["d1"].content == "Tea\nGreen tea is steamed"
    assert data.split == "all"


def test_labelled_jsonl_lists_and_grades(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "a:1", "text": "alpha"}\n{"_id": "b", "text": "beta"}\n', encoding="utf-8"
    )
    questions = tmp_path / "mine.jsonl"
    questions.write_text(
        '{"id": "x", "question": "first letter?", "relevant_ids": ["a:1"]}\n'
        '{"question": "second?", "relevant_ids": {"b": 3, "a:1": 1}}\n',
        encoding="utf-8",
    )
    data = load_labelled(questions, tmp_path / "corpus.jsonl")
    # in JSONL an id is taken as written, colon and all
    assert data.qrels == {"x": {"a:1": 1}, "q2": {"b": 3, "a:1": 1}}
    assert data.name == "mine"


def test_labelled_errors_name_the_line(tmp_path: Path) -> None:
    (tmp_path / "corpus.csv").write_text("id,text\nd1,one\n", encoding="utf-8")
    questions = tmp_path / "questions.csv"
    questions.write_text("question,relevant_ids\nok?,d1\nwhere?,d1|d7\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=where(questions, 3) + " judgement names document 'd7'"):
        load_dataset(tmp_path)
    questions.write_text("question,relevant_ids\nok?,d1\nempty?,\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=where(questions, 3) + " relevant_ids: no relevant"):
        load_dataset(tmp_path)
    questions.write_text("question,relevant_ids\nok?,d1,extra\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=where(questions, 2) + " more cells than the header"):
        load_dataset(tmp_path)


def test_labelled_questions_without_a_corpus(tmp_path: Path) -> None:
    questions = tmp_path / "questions.csv"
    questions.write_text("question,relevant_ids\nok?,d1\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="no corpus beside the questions"):
        load_dataset(questions)


# -- subsets ------------------------------------------------------------------------------------


def test_subset_keeps_every_judged_document_of_the_kept_queries() -> None:
    full = load_beir(MINI)
    small = full.subset(limit_queries=6, limit_docs=12, seed=3)
    assert len(small.queries) == 6
    judged = {d for q in small.queries for d in small.qrels[q]}
    assert judged <= set(small.corpus)
    assert len(small.corpus) == max(12, len(judged))
    assert list(small.queries) == [q for q in full.queries if q in small.queries]  # order kept
    assert small.subset() == small  # no limits: unchanged
    assert full.subset(6, 12, seed=3) == small  # seeded
    assert full.subset(6, 12, seed=4).queries != small.queries
    assert any("6 of 25 queries" in note for note in small.notes)


def test_subset_grows_the_corpus_past_the_limit_to_keep_judged_documents() -> None:
    data = Dataset(
        name="t",
        corpus={i: Document(i, i) for i in ("a", "b", "c", "d")},
        queries={"q": "?"},
        qrels={"q": {"a": 1, "b": 1, "c": 0}},
    )
    assert set(data.subset(limit_docs=1).corpus) == {"a", "b", "c"}
