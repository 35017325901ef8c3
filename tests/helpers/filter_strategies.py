"""Hypothesis strategies for records and filters, shared by every test that compares a
filter compiler (SQL, Milvus) with the reference semantics (`haima.filter_reference`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

Record = tuple[dict[str, Any] | None, str | None]  # (metadata, document)

KEYS = ["k", "n", "t"]
STRS = ["a", "b", "A", "", "北京", "7"]
INTS = [-1, 0, 1, 2, 7, 2**53 + 1, -(2**63), 2**63 - 1]
FLOATS = [-0.5, -0.0, 1.0, 2.5, 7.0, 2.0**53, 2.0**63, 1e300]
DOC_ALPHABET = 'aAb 北京上海"%_.7'
PATTERNS = ["a", "^a", "a$", "[ab]+A", "北京|上海", "(?i)A", r"\d", "^$", ".{3}", '"', "京.?海"]

numbers = st.sampled_from(INTS) | st.sampled_from(FLOATS)
strs = st.sampled_from(STRS)
bools = st.booleans()
scalars = strs | numbers | bools
# Lists hold one type (numbers may mix int and float), as the storage layer enforces.
lists = (
    st.lists(strs, min_size=1, max_size=3)
    | st.lists(numbers, min_size=1, max_size=3)
    | st.lists(bools, min_size=1, max_size=3)
)
metadatas = st.dictionaries(st.sampled_from(KEYS), scalars | lists, max_size=3) | st.none()
documents = st.none() | st.text(DOC_ALPHABET, max_size=10)
records_strategy = st.lists(st.tuples(metadatas, documents), min_size=4, max_size=12)


def stored_pairs(records: Sequence[Record]) -> list[tuple[str, Any]]:
    """(key, value) pairs the records hold, so that conditions often hit something."""
    return [(key, value) for metadata, _ in records for key, value in (metadata or {}).items()]


def _random_condition() -> st.SearchStrategy[Any]:
    same_type_lists = (
        st.lists(strs, min_size=1, max_size=3)
        | st.lists(numbers, min_size=1, max_size=3)
        | st.lists(bools, min_size=1, max_size=3)
    )
    return st.one_of(
        scalars,
        st.builds(lambda op, v: {op: v}, st.sampled_from(["$eq", "$ne"]), scalars),
        st.builds(lambda op, v: {op: v}, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), numbers),
        st.builds(lambda op, v: {op: v}, st.sampled_from(["$in", "$nin"]), same_type_lists),
        st.builds(lambda op, v: {op: v}, st.sampled_from(["$contains", "$not_contains"]), scalars),
        st.builds(lambda v: {"$exists": v}, bools),
    )


def _condition_near(value: Any) -> st.SearchStrategy[Any]:
    """A condition built from a stored value (or one of its elements, for a list)."""
    if isinstance(value, list):
        list_ops = st.sampled_from(["$contains", "$not_contains", "$eq", "$in"])
        element = st.sampled_from(value)
        return st.builds(lambda op, e: {op: [e] if op == "$in" else e}, list_ops, element)
    ops = ["$eq", "$ne", "$in", "$nin", "$contains"]
    if not isinstance(value, (bool, str)):
        ops += ["$gt", "$gte", "$lt", "$lte"]
    near: st.SearchStrategy[Any] = st.just(value)
    return near | st.sampled_from(ops).map(
        lambda op: {op: [value] if op in ("$in", "$nin") else value}
    )


def where_strategy(pairs: list[tuple[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    leaf = st.dictionaries(st.sampled_from(KEYS), _random_condition(), min_size=1, max_size=2)
    if pairs:
        near = st.sampled_from(pairs).flatmap(
            lambda kv: _condition_near(kv[1]).map(lambda c: {kv[0]: c})
        )
        leaf = near | leaf

    def extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        return st.one_of(
            st.builds(lambda c: {"$and": c}, st.lists(children, min_size=1, max_size=3)),
            st.builds(lambda c: {"$or": c}, st.lists(children, min_size=1, max_size=3)),
            st.builds(lambda c: {"$not": c}, children),
            st.builds(lambda f, c: {**f, "$not": c}, leaf, children),
        )

    return st.recursive(leaf, extend, max_leaves=8)


def document_strategy(needles: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    texts = st.text(DOC_ALPHABET, min_size=1, max_size=5)
    if needles:
        texts = texts | st.sampled_from(needles)
    patterns = st.sampled_from(PATTERNS) | texts.map(re.escape)
    leaf = st.one_of(
        st.builds(lambda op, t: {op: t}, st.sampled_from(["$contains", "$not_contains"]), texts),
        st.builds(lambda op, p: {op: p}, st.sampled_from(["$regex", "$not_regex"]), patterns),
    )

    def extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        return st.builds(
            lambda op, c: {op: c},
            st.sampled_from(["$and", "$or"]),
            st.lists(children, min_size=1, max_size=3),
        )

    return st.recursive(leaf, extend, max_leaves=5)


def substrings(records: Sequence[Record]) -> list[str]:
    """Pieces of the stored documents, so that $contains often hits something."""
    found = set()
    for _, document in records:
        if document:
            for start in range(len(document)):
                for length in (1, 2, 3, 4):
                    if start + length <= len(document):
                        found.add(document[start : start + length])
    return sorted(found)
