"""The filter language: parsing, errors, and SQL that agrees with the reference evaluator.

The SQL runs on a real database built from the store's migration, so these tests also pin
down the contract between `haima.filters` and the schema (records, metadata_index).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haima.errors import InvalidFilterError
from haima.filter_reference import matches
from haima.filters import (
    And,
    Compare,
    DocContains,
    Filter,
    InSet,
    Not,
    combine,
    parse_where,
    parse_where_document,
)
from haima.storage.filter_sql import register_sql_functions, rid_select, where_sql
from tests.helpers.filter_strategies import (
    Record,
    document_strategy,
    records_strategy,
    stored_pairs,
    substrings,
    where_strategy,
)

MIGRATION = Path(__file__).resolve().parents[1] / "haima/storage/migrations/0001_init.sql"


# --------------------------------------------------------------------------------------
# A real store, written the way the storage layer writes it


def _index_rows(rid: int, metadata: Mapping[str, Any] | None) -> Iterator[tuple[Any, ...]]:
    """metadata_index rows: one per scalar (in_list=0), one per distinct list element
    (in_list=1; 2 and 2.0 are one element, as in Python)."""
    for key, value in (metadata or {}).items():
        items, in_list = (dict.fromkeys(value), 1) if isinstance(value, list) else ([value], 0)
        for item in items:
            kind = "b" if isinstance(item, bool) else "s" if isinstance(item, str) else "n"
            yield (rid, key, kind, int(item) if kind == "b" else item, in_list)


def make_db(records: Sequence[Record]) -> sqlite3.Connection:
    """An in-memory store holding `records` with rids 1..n, in one collection."""
    conn = sqlite3.connect(":memory:")
    conn.executescript(MIGRATION.read_text(encoding="utf-8"))
    register_sql_functions(conn)
    conn.execute(
        "INSERT INTO collections (id, tenant, database, name, configuration, dimension, seq,"
        " created_at) VALUES ('c1', 'default_tenant', 'default_database', 'test', '{}', 1, 1, 0)"
    )
    for rid, (metadata, document) in enumerate(records, start=1):
        conn.execute(
            "INSERT INTO records (rid, collection_id, id, document, metadata)"
            " VALUES (?, 'c1', ?, ?, ?)",
            (rid, f"id{rid}", document, json.dumps(metadata) if metadata else None),
        )
        conn.executemany(
            "INSERT INTO metadata_index (rid, key, kind, value, in_list) VALUES (?, ?, ?, ?, ?)",
            list(_index_rows(rid, metadata)),
        )
    return conn


def sql_rids(conn: sqlite3.Connection, node: Filter | None) -> set[int]:
    if node is None:
        return {row[0] for row in conn.execute("SELECT rid FROM records")}
    sql, params = where_sql(node)
    rows = conn.execute(f"SELECT r.rid FROM records r WHERE {sql}", params)
    return {row[0] for row in rows}


def reference_rids(records: Sequence[Record], node: Filter | None) -> set[int]:
    return {
        rid
        for rid, (metadata, document) in enumerate(records, start=1)
        if node is None or matches(node, metadata, document)
    }


def null_count(conn: sqlite3.Connection, node: Filter) -> int:
    """How many rows the expression is NULL for: must be none, or NOT would lose them."""
    sql, params = where_sql(node)
    query = f"SELECT count(*) FROM records r WHERE ({sql}) IS NULL"
    return int(conn.execute(query, params).fetchone()[0])


# --------------------------------------------------------------------------------------
# Hand-written cases: expected ids worked out by hand from this table

RECORDS: dict[str, Record] = {
    "a": (
        {"color": "red", "year": 2020, "score": 4.5, "tags": ["x", "y"], "ok": True},
        "The quick brown fox 北京欢迎你",
    ),
    "b": (
        {"color": "blue", "year": 2021.0, "score": 3, "tags": ["y"], "ok": False},
        '上海 is a city. "quoted" text',
    ),
    "c": ({"color": "Red", "year": "2020", "nums": [1, 2, 3], "ok": 1}, "the QUICK brown dog"),
    "d": ({"year": 2019, "nums": [2.0, 5.5], "flags": [True], "tags": "x"}, None),
    "e": (None, "北京"),
    "f": ({"color": ["red", "green"], "score": 5}, "50% off; a_b * c"),
}
NAMES = list(RECORDS)
RIDS = {name: rid for rid, name in enumerate(NAMES, start=1)}


@pytest.fixture(scope="module")
def table() -> Iterator[sqlite3.Connection]:
    conn = make_db(list(RECORDS.values()))
    yield conn
    conn.close()


WHERE_CASES: list[tuple[dict[str, Any], str]] = [
    ({"color": "red"}, "a"),  # "Red" differs in case; f's color is a list
    ({"color": {"$eq": "red"}}, "a"),
    ({"color": {"$ne": "red"}}, "bcdef"),  # missing keys and lists included
    ({"year": 2020}, "a"),  # c's "2020" is a str
    ({"year": 2021}, "b"),  # 2021 == 2021.0
    ({"year": {"$gt": 2019}}, "ab"),
    ({"year": {"$gte": 2019}}, "abd"),
    ({"year": {"$lt": 2020.5}}, "ad"),
    ({"year": {"$lte": 2020}}, "ad"),
    ({"score": {"$gt": 4}}, "af"),
    ({"ok": True}, "a"),  # c's 1 is not True
    ({"ok": 1}, "c"),  # and True is not 1
    ({"ok": False}, "b"),
    ({"ok": {"$ne": True}}, "bcdef"),
    ({"color": {"$in": ["red", "blue"]}}, "ab"),
    ({"color": {"$nin": ["red", "blue"]}}, "cdef"),
    ({"year": {"$in": [2021, 2019.0]}}, "bd"),
    ({"ok": {"$in": [True, False]}}, "ab"),
    ({"tags": {"$contains": "y"}}, "ab"),
    ({"tags": {"$contains": "x"}}, "a"),  # d's "x" is a scalar, not a list
    ({"tags": {"$not_contains": "x"}}, "bcdef"),
    ({"nums": {"$contains": 2}}, "cd"),  # 2 == 2.0 inside lists too
    ({"flags": {"$contains": True}}, "d"),
    ({"nums": {"$contains": True}}, ""),  # True is not 1
    ({"color": {"$contains": "red"}}, "f"),
    ({"tags": "x"}, "d"),  # $eq does not look into lists
    ({"nums": {"$gt": 1}}, ""),  # nor do range operators
    ({"tags": {"$exists": True}}, "abd"),
    ({"tags": {"$exists": False}}, "cef"),
    ({"$and": [{"color": "red"}, {"year": 2020}]}, "a"),
    ({"color": "red", "year": 2021}, ""),  # several keys: implicit $and
    ({"$or": [{"color": "blue"}, {"nums": {"$contains": 5.5}}]}, "bd"),
    ({"$not": {"color": "red"}}, "bcdef"),
    ({"$not": {"$or": [{"year": {"$gte": 2020}}, {"ok": {"$exists": True}}]}}, "def"),
    ({"$and": [{"$or": [{"color": "red"}, {"color": "Red"}]}, {"$not": {"ok": True}}]}, "c"),
    ({"color": {"$in": ["red", "Red"]}, "$not": {"ok": 1}}, "a"),
]

DOCUMENT_CASES: list[tuple[dict[str, Any], str]] = [
    ({"$contains": "quick"}, "a"),  # case-sensitive
    ({"$contains": "QUICK"}, "c"),
    ({"$contains": "brown"}, "ac"),
    ({"$contains": "北京"}, "ae"),  # 2 characters: below the trigram length
    ({"$contains": "上海"}, "b"),
    ({"$contains": "京"}, "ae"),
    ({"$contains": "北京欢迎"}, "a"),
    ({"$contains": "京欢迎你"}, "a"),
    ({"$not_contains": "北京"}, "bcdf"),  # d has no document: not containing is true
    ({"$not_contains": "brown"}, "bdef"),
    ({"$contains": '"quoted"'}, "b"),
    ({"$contains": 'a city. "q'}, "b"),
    ({"$contains": "50%"}, "f"),  # % and _ are not wildcards
    ({"$contains": "a_b"}, "f"),
    ({"$contains": "_"}, "f"),
    ({"$contains": "* c"}, "f"),
    ({"$contains": "e q"}, "a"),  # c has "e Q"
    ({"$contains": "fox 北"}, "a"),
    ({"$contains": "The quick brown fox 北京欢迎你!"}, ""),
    ({"$contains": "OR"}, ""),  # FTS5 keywords are plain text here
    ({"$contains": "NEAR(a b)"}, ""),
    ({"$regex": "^[Tt]he"}, "ac"),
    ({"$regex": "北京$"}, "e"),
    ({"$regex": "(?i)QUICK"}, "ac"),
    ({"$not_regex": r"\d"}, "abcde"),
    ({"$and": [{"$contains": "brown"}, {"$not_contains": "dog"}]}, "a"),
    ({"$or": [{"$contains": "上海"}, {"$regex": "^北"}]}, "be"),
]


def _ids(rids: set[int]) -> str:
    return "".join(sorted(NAMES[rid - 1] for rid in rids))


@pytest.mark.parametrize(("where", "expected"), WHERE_CASES)
def test_where(table: sqlite3.Connection, where: dict[str, Any], expected: str) -> None:
    node = parse_where(where)
    records = list(RECORDS.values())
    assert _ids(reference_rids(records, node)) == expected
    assert _ids(sql_rids(table, node)) == expected
    assert node is not None and null_count(table, node) == 0


@pytest.mark.parametrize(("where_document", "expected"), DOCUMENT_CASES)
def test_where_document(
    table: sqlite3.Connection, where_document: dict[str, Any], expected: str
) -> None:
    node = parse_where_document(where_document)
    records = list(RECORDS.values())
    assert _ids(reference_rids(records, node)) == expected
    assert _ids(sql_rids(table, node)) == expected
    assert node is not None and null_count(table, node) == 0


@pytest.mark.parametrize(
    ("where", "where_document", "expected"),
    [
        ({"color": {"$in": ["red", "Red"]}}, {"$contains": "brown"}, "ac"),
        ({"ok": {"$exists": False}}, {"$not_contains": "北京"}, "df"),
        (None, {"$contains": "北京"}, "ae"),
        ({"color": "blue"}, None, "b"),
        ({}, {}, "abcdef"),
    ],
)
def test_where_and_where_document_together(
    table: sqlite3.Connection,
    where: dict[str, Any] | None,
    where_document: dict[str, Any] | None,
    expected: str,
) -> None:
    node = combine(parse_where(where), parse_where_document(where_document))
    assert _ids(reference_rids(list(RECORDS.values()), node)) == expected
    assert _ids(sql_rids(table, node)) == expected


def test_deeply_nested_filters_stay_within_sqlite_parser_limits() -> None:
    """SQLite's parser overflows its stack at a few dozen nested parentheses: where_sql pushes
    negations to the leaves, flattens, and nests groups first, so the deepest filter the
    parser accepts (32 levels of $and/$or/$not) compiles, whatever its shape."""
    records: list[Record] = [({"k": 1, "j": 2}, "abc"), ({"k": 2}, None)]
    conn = make_db(records)
    shapes: list[dict[str, Any]] = [{"k": 1}, {"k": 1}, {"k": 1}]
    for level in range(32):
        outer = "$and" if level % 2 else "$or"
        shapes[0] = {"$not": shapes[0]}
        if level % 2:  # two levels at once: a group nested after a condition, negated
            shapes[1] = {outer: [{"j": {"$exists": True}}, {"$not": shapes[1]}]}
        inner = "$or" if level % 2 else "$and"  # a sibling group that does not flatten
        sibling: dict[str, Any] = {"k": 3}  # the innermost level has no depth to spare
        if level:
            sibling = {inner: [{"k": {"$gt": level}}, {"j": {"$exists": level % 3 == 0}}]}
        shapes[2] = {outer: [sibling, shapes[2]]}
    for where in shapes:
        node = combine(parse_where(where), parse_where_document({"$contains": "b"}))
        assert node is not None
        sql, params = where_sql(node)
        query = f"SELECT r.rid FROM records r WHERE r.collection_id = ? AND ({sql})"
        got = {row[0] for row in conn.execute(query, ["c1", *params])}
        assert got == reference_rids(records, node)
        with pytest.raises(InvalidFilterError, match="at most 32 levels deep"):
            parse_where({"$not": where})


def test_document_contains_and_negations_on_null_documents() -> None:
    assert where_sql(DocContains("北京")) == ("COALESCE(instr(r.document, ?), 0) > 0", ["北京"])
    assert where_sql(DocContains("北京", negate=True))[0].startswith("NOT (")


def test_numeric_looking_strings_stay_distinct() -> None:
    """Strings are compared as text: "05" is not "5", and neither is the number 5.

    Needs `metadata_index.value` to have no type affinity, as the migration intends.
    """
    values = ["05", "5", " 5", "5.0", "+5", "1e3", "1000", "12345678901234567890123", 5, 5.0]
    records: list[Record] = [({"zip": v, "zips": [v]}, None) for v in values]
    conn = make_db(records)
    for probe in values:
        for where in ({"zip": probe}, {"zips": {"$contains": probe}}, {"zip": {"$in": [probe]}}):
            node = parse_where(where)
            assert sql_rids(conn, node) == reference_rids(records, node), where


def test_long_in_lists() -> None:
    """Past a few hundred values `$in` binds one JSON list: no limit on the list's length."""
    records: list[Record] = [
        ({"s": f"v{i}", "n": i, "x": 2**63 - 1 if i % 2 else -(2**63)}, None) for i in range(50)
    ]
    conn = make_db(records)
    strings = [f"v{i}" for i in range(0, 40_000, 3)] + ['"', "北京", "\\", "\n"]
    ints = [*range(-20_000, 20_000, 7), 2**63 - 1]
    for where in (
        {"s": {"$in": strings}},
        {"s": {"$nin": strings}},
        {"n": {"$in": ints}},
        {"n": {"$nin": ints}},
        {"x": {"$in": ints}},
        {"n": {"$in": [float(i) for i in range(0, 1000, 3)]}},  # floats stay inline
    ):
        node = parse_where(where)
        assert node is not None
        expected = reference_rids(records, node)
        assert 0 < len(expected) < len(records)
        assert sql_rids(conn, node) == expected
    assert "json_each" in where_sql(InSet("s", tuple(strings)))[0]


def test_negations_are_pushed_to_the_leaves() -> None:
    where = {"$not": {"$and": [{"$not": {"$not": {"k": 1}}}, {"$or": [{"j": {"$gt": 1}}]}]}}
    node = parse_where(where)
    assert node is not None
    sql, _ = where_sql(node)
    assert sql.count("NOT") == 2  # k != 1 and not (j > 1): no NOT around groups
    records: list[Record] = [({"k": 1, "j": 2}, None), ({"k": 2}, None), ({"j": 0}, None)]
    assert sql_rids(make_db(records), node) == reference_rids(records, node) == {2, 3}
    document: dict[str, Any] = {"$contains": "x"}
    for _ in range(33):
        document = {"$and": [document]}
    with pytest.raises(InvalidFilterError, match=r"^where_document(\.\$and\[0\])+: filters may"):
        parse_where_document(document)


def test_sql_regexp_function() -> None:
    conn = sqlite3.connect(":memory:")
    register_sql_functions(conn)
    row = conn.execute(
        "SELECT 'abc' REGEXP 'b', 'abc' REGEXP '^b', NULL REGEXP 'b', regexp('京', '北京')"
    ).fetchone()
    assert row == (1, 0, 0, 1)


# --------------------------------------------------------------------------------------
# AST shape: hashable, and distinct where the semantics differ


def test_no_filter() -> None:
    assert parse_where(None) is None
    assert parse_where({}) is None
    assert parse_where_document(None) is None
    assert parse_where_document({}) is None
    assert combine(None, None) is None


def test_asts_are_hashable_and_keep_types_apart() -> None:
    where = {"$and": [{"k": {"$in": [1, 2.5]}}, {"$not": {"t": {"$contains": "x"}}}]}
    first, second = parse_where(where), parse_where(where)
    assert first == second and hash(first) == hash(second)
    assert parse_where({"k": True}) != parse_where({"k": 1})  # though True == 1 in Python
    assert parse_where({"k": {"$in": [True]}}) != parse_where({"k": {"$in": [1]}})
    assert {parse_where({"k": 5}): "cached"}[parse_where({"k": 5.0})] == "cached"  # 5 == 5.0


def test_parsed_shapes() -> None:
    assert parse_where({"k": 1}) == Compare("k", "$eq", 1)
    assert parse_where({"a": 1, "b": {"$nin": ["x"]}}) == And(
        (Compare("a", "$eq", 1), InSet("b", ("x",), negate=True))
    )
    assert parse_where({"$not": {"a": {"$ne": "x"}}}) == Not(Compare("a", "$ne", "x"))
    node = parse_where({"k": np.int64(3), "f": {"$gt": np.float32(0.5)}, "b": np.bool_(True)})
    assert node == And(
        (Compare("k", "$eq", 3), Compare("f", "$gt", 0.5), Compare("b", "$eq", True))
    )


# --------------------------------------------------------------------------------------
# Errors name the path and the problem

WHERE_ERRORS: list[tuple[Any, str]] = [
    (["a"], "where: expected a dict, got list"),
    ({"$and": [{"a": 1}, {"year": {"$gte": "2020"}}]}, "where.$and[1].year: `$gte` needs a number, got str"),
    ({"color": {"$equals": "red"}}, "where.color: unknown operator `$equals` (expected one of $eq, $ne,"),
    ({"year": {"$gt": True}}, "where.year: `$gt` needs a number, got bool"),
    ({"year": {"$lt": None}}, "where.year: `$lt` needs a number, got None"),
    ({"year": {"$gt": float("nan")}}, "where.year: `$gt` needs a number, got nan (only finite"),
    ({"year": float("inf")}, "where.year: expected a str, int, float or bool, or a dict with one operator, got inf"),
    ({"year": {"$eq": float("-inf")}}, "where.year: `$eq` needs a str, int, float or bool, got -inf"),
    ({"year": 2**70}, "where.year: expected a str, int, float or bool, or a dict with one operator, got an integer outside the 64-bit range"),
    ({"color": None}, "where.color: expected a str, int, float or bool, or a dict with one operator, got None"),
    ({"color": ["red"]}, "where.color: expected a str, int, float or bool, or a dict with one operator, got list (use `$in`"),
    ({"color": {"nested": 1}}, "where.color: expected an operator such as `$eq`, got 'nested' (nested dicts are not allowed)"),
    ({"color": {"$eq": {"a": 1}}}, "where.color: `$eq` needs a str, int, float or bool, got dict"),
    ({"color": {"$ne": ["red"]}}, "where.color: `$ne` needs a str, int, float or bool, got list"),
    ({"color": {}}, "where.color: expected exactly one operator, got none"),
    ({"year": {"$gt": 1, "$lt": 5}}, "where.year: expected exactly one operator, got 2: `$gt`, `$lt`"),
    ({"color": {"$in": []}}, "where.color: `$in` needs a non-empty list of str, int, float or bool, got an empty list"),
    ({"color": {"$nin": "red"}}, "where.color: `$nin` needs a non-empty list of str, int, float or bool, got str"),
    ({"color": {"$in": ["red", 1]}}, "where.color.$in[1]: `$in` values must all be of one type: the first is a str, this one is a number"),
    ({"n": {"$in": [1, 2.5, True]}}, "where.n.$in[2]: `$in` values must all be of one type: the first is a number, this one is a bool"),
    ({"n": {"$nin": [1, None]}}, "where.n.$nin[1]: `$nin` needs a str, int, float or bool, got None"),
    ({"tags": {"$contains": ["x"]}}, "where.tags: `$contains` needs a str, int, float or bool, got list"),
    ({"tags": {"$not_contains": None}}, "where.tags: `$not_contains` needs a str, int, float or bool, got None"),
    ({"tags": {"$exists": 1}}, "where.tags: `$exists` needs a bool, got int"),
    ({"$and": []}, "where: `$and` needs a non-empty list of filters, got an empty list"),
    ({"$or": {"a": 1}}, "where: `$or` needs a non-empty list of filters, got dict"),
    ({"$or": [{"a": 1}, "b"]}, "where.$or[1]: expected a dict, got str"),
    ({"$not": [{"a": 1}]}, "where.$not: expected a dict, got list"),
    ({"$and": [{}]}, "where.$and[0]: empty filter"),
    ({"$nor": [{"a": 1}]}, "where: unknown operator `$nor` (expected a field name or one of $and, $or, $not)"),
    ({"": 1}, "where: field names must be non-empty"),
    ({"k": "a\ud800"}, "where.k: expected a str, int, float or bool, or a dict with one operator, got a str that is not valid Unicode"),
    ({1: 1}, "where: field names must be strings, got int"),
    ({"$or": [{"$not": {"a": {"$lte": "x"}}}]}, "where.$or[0].$not.a: `$lte` needs a number, got str"),
]  # fmt: skip


@pytest.mark.parametrize(("where", "message"), WHERE_ERRORS)
def test_where_errors(where: Any, message: str) -> None:
    with pytest.raises(InvalidFilterError) as raised:
        parse_where(where)
    assert str(raised.value).startswith(message)


DOCUMENT_ERRORS: list[tuple[Any, str]] = [
    ("x", "where_document: expected a dict, got str"),
    ({"$contains": ""}, "where_document: `$contains` needs a non-empty string, got an empty string"),
    ({"$not_contains": 3}, "where_document: `$not_contains` needs a non-empty string, got int"),
    ({"$contains": None}, "where_document: `$contains` needs a non-empty string, got None"),
    ({"$contains": "\ud800"}, "where_document: `$contains` needs valid Unicode text"),
    ({"$regex": "("}, "where_document: `$regex` is not a valid RE2 regular expression: missing ): ("),
    ({"$and": [{"$regex": "a"}, {"$not_regex": "[a"}]}, "where_document.$and[1]: `$not_regex` is not a valid RE2 regular expression: missing ]: [a"),
    # RE2 (Chroma's dialect) has no backreferences or lookaround: they cannot run in linear time.
    ({"$regex": r"(a)\1"}, "where_document: `$regex` is not a valid RE2 regular expression: invalid escape sequence: \\1"),
    ({"$regex": "a(?=b)"}, "where_document: `$regex` is not a valid RE2 regular expression: invalid perl operator: (?="),
    ({"$regex": "a" * 10_001}, "where_document: `$regex` patterns are at most 10000 characters"),
    ({"$contains": "a", "$regex": "b"}, "where_document: expected exactly one operator, got 2: `$contains`, `$regex`"),
    ({"$search": "a"}, "where_document: unknown operator `$search` (expected one of $contains, $not_contains, $regex, $not_regex, $and, $or)"),
    ({"$not": {"$contains": "a"}}, "where_document: unknown operator `$not`"),
    ({"$and": []}, "where_document: `$and` needs a non-empty list of filters, got an empty list"),
    ({"$or": [{"$contains": "a"}, {}]}, "where_document.$or[1]: expected exactly one operator, got none"),
    ({"$or": [["x"]]}, "where_document.$or[0]: expected a dict, got list"),
]  # fmt: skip


@pytest.mark.parametrize(("where_document", "message"), DOCUMENT_ERRORS)
def test_where_document_errors(where_document: Any, message: str) -> None:
    with pytest.raises(InvalidFilterError) as raised:
        parse_where_document(where_document)
    assert str(raised.value).startswith(message)


def test_error_paths_start_with_the_given_field() -> None:
    with pytest.raises(InvalidFilterError, match=r"^filter\.a: "):
        parse_where({"a": None}, field="filter")
    with pytest.raises(InvalidFilterError, match=r"^doc: "):
        parse_where_document({"$contains": 1}, field="doc")


# --------------------------------------------------------------------------------------
# Property: for random records and filters, SQL == reference

# (strategies in tests/helpers/filter_strategies.py)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), records=records_strategy)
def test_sql_agrees_with_the_reference(data: st.DataObject, records: list[Record]) -> None:
    conn = make_db(records)
    try:
        where_filters = where_strategy(stored_pairs(records))
        document_filters = document_strategy(substrings(records))
        for use_where, use_document in ((True, False), (False, True), (True, True)):
            where = data.draw(where_filters, label="where") if use_where else None
            where_document = (
                data.draw(document_filters, label="where_document") if use_document else None
            )
            node = combine(parse_where(where), parse_where_document(where_document))
            assert sql_rids(conn, node) == reference_rids(records, node)
            selection = rid_select(node, 1, len(records)) if node is not None else None
            if selection is not None:
                selected = {row[0] for row in conn.execute(*selection)}
                assert selected == reference_rids(records, node)
            if node is not None:
                assert null_count(conn, node) == 0
                assert sql_rids(conn, Not(node)) == reference_rids(records, Not(node))
    finally:
        conn.close()


def test_rid_select_covers_positive_metadata_filters_only() -> None:
    def covered(where: dict[str, Any]) -> bool:
        node = parse_where(where)
        assert node is not None
        return rid_select(node, 1, 10) is not None

    assert covered({"a": 1})
    assert covered({"$or": [{"a": {"$gte": 1}}, {"tags": {"$contains": "x"}}]})
    assert covered({"$and": [{"a": {"$in": [1, 2]}}, {"b": {"$exists": True}}]})
    assert not covered({"a": {"$ne": 1}})
    assert not covered({"a": {"$nin": [1]}})
    assert not covered({"$not": {"a": {"$gt": 1}}})  # its complement holds non-numbers too
    assert not covered({"$or": [{"a": 1}, {"b": {"$exists": False}}]})
    assert not covered({"$or": [{f"a{i}": i} for i in range(101)]})  # too many SELECT terms
    assert covered({"$or": [{"a": i} for i in range(101)]})  # one field: folded into one $in
