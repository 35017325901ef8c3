"""The filter language compiled to SQL over the store's tables (`records r` and
`metadata_index`), and the SQL function (`regexp`) the compiled form needs.

The language itself (AST, parser, evaluator, normal form) lives in `haima/filters.py`
and knows no target; this is its SQLite compiler. Every expression is 0 or 1 (never
NULL), so that NOT is the exact complement; negations are NOT of the positive form.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3

from haima.errors import InvalidFilterError
from haima.filters import (
    And,
    Compare,
    DocContains,
    DocRegex,
    Exists,
    Filter,
    IdIn,
    InSet,
    ListContains,
    Not,
    Or,
    Scalar,
    compiled_regex,
    count_conditions,
    normalized,
)

__all__ = ["MAX_SQL_PARAMETERS", "register_sql_functions", "rid_select", "where_sql"]

_SQL_COMPARISON = {"$eq": "=", "$ne": "=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
#: Longer `$in` lists go to SQLite as one JSON parameter, since a statement takes at most
#: 32766 parameters. Floats stay inline: SQLite's JSON parser may round them differently.
_MAX_INLINE_VALUES = 256

_Sql = tuple[str, list[object]]


def _bind(value: Scalar) -> object:
    """SQLite stores bools as 0/1 (kind 'b' keeps them apart from numbers)."""
    return int(value) if isinstance(value, bool) else value


def _negated(sql: str, negate: bool) -> str:
    return f"NOT ({sql})" if negate else sql


def _rids_where(condition: str) -> str:
    return f"SELECT rid FROM metadata_index WHERE {condition}"


@dataclasses.dataclass(frozen=True)
class _Lookup:
    """A metadata leaf as rows of `metadata_index`: the records whose rid is (or, when
    `negate`, is not) among the rows matching `condition`."""

    condition: str
    params: list[object]
    negate: bool


def _lookup(node: Filter) -> _Lookup | None:
    """The lookup a metadata leaf stands for; None for other nodes and for an empty
    `$in`/`$nin`, which matches nothing (or everything) without a lookup."""
    if isinstance(node, Compare):
        cond = f"key = ? AND kind = ? AND value {_SQL_COMPARISON[node.op]} ? AND in_list = 0"
        return _Lookup(cond, [node.key, node.kind, _bind(node.value)], node.op == "$ne")
    if isinstance(node, InSet):
        values = list(dict.fromkeys(_bind(v) for v in node.values))
        if not values:
            return None
        params: list[object] = [node.key, node.kind]
        if len(values) > _MAX_INLINE_VALUES and not any(_inline_only(v) for v in values):
            members = "SELECT j.value FROM json_each(?) AS j"
            params.append(json.dumps(values, ensure_ascii=False))
        else:
            members = ", ".join(["?"] * len(values))
            params.extend(values)
        cond = f"key = ? AND kind = ? AND value IN ({members}) AND in_list = 0"
        return _Lookup(cond, params, node.negate)
    if isinstance(node, ListContains):
        cond = "key = ? AND kind = ? AND value = ? AND in_list = 1"
        return _Lookup(cond, [node.key, node.kind, _bind(node.value)], node.negate)
    if isinstance(node, Exists):
        return _Lookup("key = ?", [node.key], not node.present)
    return None


def _inline_only(value: object) -> bool:
    """Values that must be bound one by one, not sent in one JSON list: SQLite's JSON
    parser may round floats differently, and `json_each` cuts a string at a NUL."""
    return isinstance(value, float) or (isinstance(value, str) and "\x00" in value)


def _sql_lookup(node: Compare | InSet | ListContains | Exists) -> _Sql:
    found = _lookup(node)
    if found is None:  # an empty $in matches nothing, an empty $nin everything
        assert isinstance(node, InSet)
        return ("1" if node.negate else "0"), []
    return _negated(f"r.rid IN ({_rids_where(found.condition)})", found.negate), found.params


def _sql_doc_contains(node: DocContains) -> _Sql:
    # The store keeps no substring index (a trigram index cost more at ingestion than the
    # scan costs at query time). instr() is a case-sensitive substring test of code points;
    # instr(NULL, x) is NULL, hence COALESCE: a record without a document contains nothing.
    return _negated("COALESCE(instr(r.document, ?), 0) > 0", node.negate), [node.text]


def _sql_doc_regex(node: DocRegex) -> _Sql:
    sql = "(r.document IS NOT NULL AND r.document REGEXP ?)"
    return _negated(sql, node.negate), [node.pattern]


def _depth(node: Filter) -> int:
    if isinstance(node, (And, Or)):
        return 1 + max((_depth(child) for child in node.children), default=0)
    return 0


def _sql_junction(children: tuple[Filter, ...], joiner: str, empty: str) -> _Sql:
    """Children joined by AND/OR, the most deeply nested first: SQLite's parser needs about
    three stack slots per group nested after a condition (`a AND (b OR (...))`) but one
    per group nested before one (`((...) OR b) AND a`); the order does not change results.
    """
    if not children:
        return empty, []
    parts: list[str] = []
    params: list[object] = []
    for child in sorted(children, key=_depth, reverse=True):
        sql, child_params = _sql(child)
        parts.append(sql)
        params.extend(child_params)
    # SQLite builds `a OR b OR c …` as a chain as deep as it is long and refuses chains
    # deeper than 1000; groups of groups keep a long junction a shallow tree.
    while len(parts) > _GROUP:
        parts = [
            "(" + f" {joiner} ".join(parts[i : i + _GROUP]) + ")"
            for i in range(0, len(parts), _GROUP)
        ]
    return "(" + f" {joiner} ".join(parts) + ")", params


#: Terms per group of a long junction (see `_sql_junction`).
_GROUP = 64


def where_sql(node: Filter) -> tuple[str, list[object]]:
    """A boolean SQL expression (0/1, never NULL) over `records r`, with `?` parameters.

    Needs `register_sql_functions` on the connection for `$regex`. The expression does not
    restrict the collection: add `r.collection_id = ?` beside it. Filters from the parsers
    nest at most 32 levels, which SQLite's parser takes in any shape; a hand-built AST
    nested much deeper may fail with `parser stack overflow`.
    """
    sql, params = _sql(normalized(node))
    if len(params) > MAX_SQL_PARAMETERS:
        raise InvalidFilterError(
            f"filter: holds {len(params)} values, more than the {MAX_SQL_PARAMETERS} that "
            "fit one query; use fewer conditions or shorter `$in` lists"
        )
    return sql, params


#: SQLite binds at most 32766 parameters per statement; a few are kept for the query around.
MAX_SQL_PARAMETERS = 32_000


def rid_select(node: Filter, low: int, high: int) -> tuple[str, list[object]] | None:
    """A SELECT of the rids matching `node` read from `metadata_index` alone, for filters
    built from positive metadata conditions joined by `$and` / `$or` (INTERSECT / UNION);
    None for any other filter (negations, `$ne`, document conditions).

    The rids are restricted to [low, high], not to a collection (the index holds every
    collection's), so the caller intersects them with the collection's own. It spares the
    scan of every record of the collection that `where_sql`'s expression needs: measured
    at 100k records, a filter matching 1% answered in 0.7 ms instead of 30 ms, one
    matching 50% in 33 ms instead of 107 ms.
    """
    normal = normalized(node)
    if count_conditions(normal) > _MAX_SELECT_TERMS:
        return None  # SQLite allows 500 terms in a compound SELECT
    found = _rid_select(normal)
    if found is None:
        return None
    sql, params = found
    return f"SELECT rid FROM ({sql}) WHERE rid BETWEEN ? AND ?", [*params, low, high]


#: More conditions than this are left to `where_sql`.
_MAX_SELECT_TERMS = 100


def _rid_select(node: Filter) -> _Sql | None:
    if isinstance(node, (And, Or)):
        operator = " INTERSECT " if isinstance(node, And) else " UNION "
        parts: list[str] = []
        params: list[object] = []
        for child in node.children:
            selected = _rid_select(child)
            if selected is None:
                return None
            parts.append(f"SELECT rid FROM ({selected[0]})")
            params.extend(selected[1])
        return operator.join(parts), params
    lookup = _lookup(node)
    if lookup is None or lookup.negate:
        return None
    return _rids_where(lookup.condition), lookup.params


def _sql(node: Filter) -> _Sql:
    if isinstance(node, And):
        return _sql_junction(node.children, "AND", "1")
    if isinstance(node, Or):
        return _sql_junction(node.children, "OR", "0")
    if isinstance(node, Not):
        sql, params = _sql(node.child)
        return f"NOT ({sql})", params
    if isinstance(node, (Compare, InSet, ListContains, Exists)):
        return _sql_lookup(node)
    if isinstance(node, DocContains):
        return _sql_doc_contains(node)
    if isinstance(node, IdIn):
        # Bound one by one: an id is an exact string (see `_inline_only`).
        if not node.ids:
            return "0", []
        return f"r.id IN ({', '.join('?' * len(node.ids))})", list(node.ids)
    return _sql_doc_regex(node)


def _sql_regexp(pattern: object, text: object) -> int:
    """SQLite's `regexp(pattern, text)` (`text REGEXP pattern`): 1 if the pattern occurs."""
    if not isinstance(pattern, str) or not isinstance(text, str):
        return 0
    return 1 if compiled_regex(pattern).search(text) is not None else 0


def register_sql_functions(conn: sqlite3.Connection) -> None:
    """Register the SQL functions `where_sql` relies on (`regexp`); call on every connection."""
    conn.create_function("regexp", 2, _sql_regexp, deterministic=True)
