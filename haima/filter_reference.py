"""The filter language's reference semantics, in pure Python: what every compiler of
`haima/filters.py`'s AST (storage/filter_sql.py, a Milvus one) is tested against. Not on
the query path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from haima.filters import (
    And,
    Compare,
    DocContains,
    DocRegex,
    Exists,
    Filter,
    IdIn,
    InSet,
    Not,
    Or,
    Scalar,
    compiled_regex,
    kind_of,
)

_MISSING = object()


def _equal(a: Any, b: Scalar) -> bool:
    """Typed equality: numbers with numbers, bools with bools, strs with strs."""
    if not isinstance(a, (str, int, float)):
        return False  # missing, a list, or not a metadata value at all
    return kind_of(a) == kind_of(b) and bool(a == b)


def _compare(node: Compare, value: Any) -> bool:
    if node.op in ("$eq", "$ne"):
        return _equal(value, node.value) == (node.op == "$eq")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False  # range operators match numbers only
    limit = node.value
    if isinstance(limit, str):
        return False  # not reachable: Compare checks that range operators get numbers
    if node.op == "$gt":
        return value > limit
    if node.op == "$gte":
        return value >= limit
    if node.op == "$lt":
        return value < limit
    return value <= limit


def _list_contains(value: Any, item: Scalar) -> bool:
    return isinstance(value, (list, tuple)) and any(_equal(e, item) for e in value)


def _document_match(node: DocContains | DocRegex, document: str | None) -> bool:
    if document is None:
        found = False
    elif isinstance(node, DocContains):
        found = node.text in document
    else:
        found = compiled_regex(node.pattern).search(document) is not None
    return found != node.negate


def matches(
    node: Filter,
    metadata: Mapping[str, Any] | None,
    document: str | None,
    record_id: str | None = None,
) -> bool:
    """Whether a record passes `node`: the reference semantics, in pure Python."""
    md: Mapping[str, Any] = metadata or {}
    if isinstance(node, And):
        return all(matches(child, md, document, record_id) for child in node.children)
    if isinstance(node, Or):
        return any(matches(child, md, document, record_id) for child in node.children)
    if isinstance(node, Not):
        return not matches(node.child, md, document, record_id)
    if isinstance(node, IdIn):
        return record_id in node.ids
    if isinstance(node, (DocContains, DocRegex)):
        return _document_match(node, document)
    if isinstance(node, Exists):
        return (md.get(node.key) is not None) == node.present
    value = md.get(node.key, _MISSING)
    if isinstance(node, Compare):
        return _compare(node, value)
    if isinstance(node, InSet):
        return any(_equal(value, v) for v in node.values) != node.negate
    return _list_contains(value, node.value) != node.negate
