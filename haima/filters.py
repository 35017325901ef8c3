"""The filter language: Chroma-compatible `where` and `where_document`.

A filter is parsed once into a small AST of frozen, hashable dataclasses (usable as cache
keys); `filter_reference.matches` evaluates it in pure Python, the reference the
compilers are tested against. The language knows no target: `storage/filter_sql.py` compiles it to SQL over
the store's tables, from the normal form `normalized` gives.

`where` (metadata)::

    {"color": "red"}                          # same as {"color": {"$eq": "red"}}
    {"year": {"$gte": 2020}}                  # $eq $ne $gt $gte $lt $lte
    {"color": {"$in": ["red", "blue"]}}       # $in $nin: non-empty list of one type
    {"tags": {"$contains": "news"}}           # $contains $not_contains: on list values
    {"tags": {"$exists": True}}
    {"$and": [...]}, {"$or": [...]}, {"$not": {...}}   # nested up to 32 levels

A dict with several keys is the `$and` of them. Each field takes exactly one operator.

`where_document` (the record's text)::

    {"$contains": "北京"}, {"$not_contains": "..."}     # case-sensitive substring
    {"$regex": "^Q[0-9]+"}, {"$not_regex": "..."}       # RE2 syntax, searched anywhere
    {"$and": [...]}, {"$or": [...]}

Semantics:

- Values are str, int, float or bool. Numbers (int and float, never bool) compare
  numerically with each other (5 == 5.0); a bool only equals a bool (True != 1); a str
  only equals a str. `$gt`/`$gte`/`$lt`/`$lte` take a number and match numeric values only.
- `$eq`, `$ne`, the range operators, `$in` and `$nin` look at scalar metadata values only;
  `$contains`/`$not_contains` look at list values only (an element equal to the value).
- Every negation is the logical complement of its positive form: `$ne` is not `$eq`,
  `$nin` is not `$in`, `$not_contains` is not `$contains`, `$not_regex` is not `$regex`,
  `$not` is not its child. So negations also match records without the key or without a
  document.
- `$contains` on documents is a case-sensitive substring test (any length: 2-character
  Chinese words included); it and `$regex` are false for a record without a document.
- `$regex` uses RE2's syntax, the dialect of Chroma's Rust `regex` crate (no
  backreferences, no lookaround) and its guarantee: matching takes time linear in the
  document, so no pattern can stall a query.
- `None` or `{}` as the whole filter means "no filter"; an empty dict inside one is an error.

Errors raise `InvalidFilterError` whose message starts with the path of the offending part,
e.g. ``where.$and[1].year: `$gte` needs a number, got str``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, TypeAlias, cast

import numpy as np
import re2

from haima.errors import InvalidFilterError

__all__ = [
    "And",
    "Compare",
    "DocContains",
    "DocRegex",
    "Exists",
    "Filter",
    "IdIn",
    "InSet",
    "ListContains",
    "Not",
    "Or",
    "Scalar",
    "combine",
    "compiled_regex",
    "count_conditions",
    "kind_of",
    "normalized",
    "parse_where",
    "parse_where_document",
]

Scalar: TypeAlias = str | int | float | bool
#: How a value is typed in `metadata_index.kind`: str, number (int/float) or bool.
Kind = Literal["s", "n", "b"]
CompareOp = Literal["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]

_RANGE_OPS = ("$gt", "$gte", "$lt", "$lte")
_COMPARE_OPS = ("$eq", "$ne", *_RANGE_OPS)
_FIELD_OPS = (*_COMPARE_OPS, "$in", "$nin", "$contains", "$not_contains", "$exists")
_LOGICAL_OPS = ("$and", "$or", "$not")
_DOC_OPS = ("$contains", "$not_contains", "$regex", "$not_regex", "$and", "$or")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: Deeper nesting of $and/$or/$not is refused: it is never meant, and SQLite's parser
#: overflows its stack past about 75 nested groups (see storage/filter_sql.py).
_MAX_DEPTH = 32
#: Leaves of one filter, after equalities are folded into `$in`s (see `_folded`).
MAX_CONDITIONS = 4096
#: RE2 compiles within a memory budget whatever the pattern; this only keeps errors short.
_MAX_PATTERN_LENGTH = 10_000


def kind_of(value: Scalar) -> Kind:
    """The `metadata_index.kind` of a scalar; bool first, since bool is a subclass of int."""
    if isinstance(value, bool):
        return "b"
    if isinstance(value, str):
        return "s"
    return "n"


# --------------------------------------------------------------------------------------
# AST. Every node is frozen and hashable. Nodes holding values also hold their kind, so
# that {"k": True} and {"k": 1} (equal in Python: True == 1) give different, unequal nodes.


@dataclass(frozen=True)
class Compare:
    """`key` compared with a scalar: `$eq`/`$ne` (any scalar) or a range op (numbers)."""

    key: str
    op: CompareOp
    value: Scalar
    kind: Kind = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", kind_of(self.value))
        if self.op not in _COMPARE_OPS:
            raise ValueError(f"unknown comparison {self.op!r}")
        if self.op in _RANGE_OPS and self.kind != "n":
            raise ValueError(f"{self.op} needs a number, got {type(self.value).__name__}")


@dataclass(frozen=True)
class InSet:
    """`key`'s scalar value is one of `values` (all of one kind); `negate` for `$nin`."""

    key: str
    values: tuple[Scalar, ...]
    negate: bool = False
    kind: Kind = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        kinds = {kind_of(v) for v in self.values}
        if len(kinds) > 1:
            raise ValueError(f"$in values of mixed kinds: {sorted(kinds)}")
        object.__setattr__(self, "kind", kinds.pop() if kinds else "s")


@dataclass(frozen=True)
class ListContains:
    """`key`'s list value has an element equal to `value`; `negate` for `$not_contains`."""

    key: str
    value: Scalar
    negate: bool = False
    kind: Kind = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", kind_of(self.value))


@dataclass(frozen=True)
class Exists:
    """`key` is present in the record's metadata (`present`) or absent (not `present`)."""

    key: str
    present: bool = True


@dataclass(frozen=True)
class And:
    children: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    child: Filter


@dataclass(frozen=True)
class DocContains:
    """Case-sensitive substring of the document; `negate` for `$not_contains`."""

    text: str
    negate: bool = False


@dataclass(frozen=True)
class DocRegex:
    """The RE2 `pattern` found anywhere in the document; `negate` for `$not_regex`."""

    pattern: str
    negate: bool = False


@dataclass(frozen=True)
class IdIn:
    """The record's id is one of `ids`: `query(ids=...)` restricts a search with it. Not
    part of the `where` language (Chroma's neither), so no parser builds it."""

    ids: tuple[str, ...]


Filter: TypeAlias = (
    Compare | InSet | ListContains | Exists | And | Or | Not | DocContains | DocRegex | IdIn
)


# --------------------------------------------------------------------------------------
# Parsing


def _error(path: str, problem: str) -> InvalidFilterError:
    return InvalidFilterError(f"{path}: {problem}")


def _describe(value: Any) -> str:
    """A value's type for error messages, in the user's terms (None, not NoneType)."""
    if value is None:
        return "None"
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, Mapping):
        return "dict"
    return type(value).__name__


def _plain(value: Any) -> Any:
    """Numpy scalars (common from pandas) become the Python scalars they stand for."""
    return value.item() if isinstance(value, np.generic) else value


def _is_valid_unicode(text: str) -> bool:
    """False for lone surrogates, which SQLite cannot take and no stored value holds."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _as_scalar(value: Any) -> Scalar | None:
    """The value as a valid filter scalar, or None if it is not one."""
    value = _plain(value)
    if isinstance(value, str):
        return value if _is_valid_unicode(value) else None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


def _scalar_problem(value: Any, wanted: str) -> str:
    """Why `value` is not a valid scalar: names out-of-range ints and non-finite floats."""
    value = _plain(value)
    if isinstance(value, str) and not _is_valid_unicode(value):
        return f"{wanted}, got a str that is not valid Unicode (a lone surrogate)"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{wanted}, got an integer outside the 64-bit range"
    if isinstance(value, float):
        return f"{wanted}, got {value!r} (only finite numbers are allowed)"
    return f"{wanted}, got {_describe(value)}"


def _scalar(value: Any, path: str, op: str) -> Scalar:
    scalar = _as_scalar(value)
    if scalar is None:
        raise _error(path, _scalar_problem(value, f"`{op}` needs a str, int, float or bool"))
    return scalar


def _number(value: Any, path: str, op: str) -> int | float:
    scalar = _as_scalar(value)
    if scalar is None or isinstance(scalar, (bool, str)):
        raise _error(path, _scalar_problem(value, f"`{op}` needs a number"))
    return scalar


def _conjoin(children: list[Filter]) -> Filter:
    """One child stands alone; several make an `And` (in the order given)."""
    return children[0] if len(children) == 1 else And(tuple(children))


def _filter_list(value: Any, path: str, op: str) -> Sequence[Any]:
    if not isinstance(value, (list, tuple)) or not value:
        got = "an empty list" if isinstance(value, (list, tuple)) else _describe(value)
        raise _error(path, f"`{op}` needs a non-empty list of filters, got {got}")
    return value


def parse_where(where: Mapping[str, Any] | None, field: str = "where") -> Filter | None:
    """Parse a `where` filter; None for no filter (`None` or `{}`)."""
    if where is None:
        return None
    if not isinstance(where, Mapping):
        raise _error(field, f"expected a dict, got {_describe(where)}")
    if not where:
        return None
    return _within_limits(_where_dict(where, field, 0), field)


def _within_limits(node: Filter, field: str) -> Filter:
    conditions = count_conditions(normalized(node))
    if conditions > MAX_CONDITIONS:
        raise _error(
            field,
            f"{conditions} conditions, more than the limit of {MAX_CONDITIONS} "
            "(equalities of one field joined by `$or` count once: they become one `$in`)",
        )
    return node


def _check_depth(path: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _error(path, f"filters may nest at most {_MAX_DEPTH} levels deep")


def _where_dict(where: Any, path: str, depth: int) -> Filter:
    _check_depth(path, depth)
    if not isinstance(where, Mapping):
        raise _error(path, f"expected a dict, got {_describe(where)}")
    if not where:
        raise _error(path, "empty filter: expected a field name or one of $and, $or, $not")
    return _conjoin([_where_entry(key, value, path, depth) for key, value in where.items()])


def _where_entry(key: Any, value: Any, path: str, depth: int) -> Filter:
    if not isinstance(key, str):
        raise _error(path, f"field names must be strings, got {_describe(key)}")
    if key in ("$and", "$or"):
        items = _filter_list(value, path, key)
        children = [
            _where_dict(item, f"{path}.{key}[{i}]", depth + 1) for i, item in enumerate(items)
        ]
        return And(tuple(children)) if key == "$and" else Or(tuple(children))
    if key == "$not":
        return Not(_where_dict(value, f"{path}.$not", depth + 1))
    if key.startswith("$"):
        expected = "a field name or one of " + ", ".join(_LOGICAL_OPS)
        raise _error(path, f"unknown operator `{key}` (expected {expected})")
    if not key:
        raise _error(path, "field names must be non-empty")
    return _field(key, value, f"{path}.{key}")


def _field(key: str, value: Any, path: str) -> Filter:
    if isinstance(value, Mapping):
        return _field_operator(key, value, path)
    scalar = _as_scalar(value)
    if scalar is None:
        wanted = "expected a str, int, float or bool, or a dict with one operator"
        hint = " (use `$in` to match any of several values)" if isinstance(value, list) else ""
        raise _error(path, _scalar_problem(value, wanted) + hint)
    return Compare(key, "$eq", scalar)


def _field_operator(key: str, ops: Mapping[Any, Any], path: str) -> Filter:
    if len(ops) != 1:
        got = "none" if not ops else f"{len(ops)}: " + ", ".join(f"`{op}`" for op in ops)
        hint = " (combine conditions with $and)" if ops else ""
        raise _error(path, f"expected exactly one operator, got {got}{hint}")
    op, arg = next(iter(ops.items()))
    if not isinstance(op, str) or not op.startswith("$"):
        raise _error(
            path, f"expected an operator such as `$eq`, got {op!r} (nested dicts are not allowed)"
        )
    build = _FIELD_BUILDERS.get(op)
    if build is None:
        raise _error(path, f"unknown operator `{op}` (expected one of {', '.join(_FIELD_OPS)})")
    return build(key, op, arg, path)


def _build_compare(key: str, op: str, arg: Any, path: str) -> Filter:
    value = _number(arg, path, op) if op in _RANGE_OPS else _scalar(arg, path, op)
    return Compare(key, cast(CompareOp, op), value)


def _build_in(key: str, op: str, arg: Any, path: str) -> Filter:
    if not isinstance(arg, (list, tuple)) or not arg:
        got = "an empty list" if isinstance(arg, (list, tuple)) else _describe(arg)
        raise _error(path, f"`{op}` needs a non-empty list of str, int, float or bool, got {got}")
    values = tuple(_scalar(item, f"{path}.{op}[{i}]", op) for i, item in enumerate(arg))
    first = kind_of(values[0])
    for i, item in enumerate(values):
        if kind_of(item) != first:
            names = {"s": "str", "n": "number", "b": "bool"}
            raise _error(
                f"{path}.{op}[{i}]",
                f"`{op}` values must all be of one type: the first is a {names[first]}, "
                f"this one is a {names[kind_of(item)]}",
            )
    return InSet(key, values, negate=op == "$nin")


def _build_contains(key: str, op: str, arg: Any, path: str) -> Filter:
    return ListContains(key, _scalar(arg, path, op), negate=op == "$not_contains")


def _build_exists(key: str, op: str, arg: Any, path: str) -> Filter:
    arg = _plain(arg)
    if not isinstance(arg, bool):
        raise _error(path, f"`{op}` needs a bool, got {_describe(arg)}")
    return Exists(key, arg)


_FIELD_BUILDERS: dict[str, Callable[[str, str, Any, str], Filter]] = {
    **{op: _build_compare for op in _COMPARE_OPS},
    "$in": _build_in,
    "$nin": _build_in,
    "$contains": _build_contains,
    "$not_contains": _build_contains,
    "$exists": _build_exists,
}


def parse_where_document(
    doc: Mapping[str, Any] | None, field: str = "where_document"
) -> Filter | None:
    """Parse a `where_document` filter; None for no filter (`None` or `{}`)."""
    if doc is None:
        return None
    if not isinstance(doc, Mapping):
        raise _error(field, f"expected a dict, got {_describe(doc)}")
    if not doc:
        return None
    return _within_limits(_doc_dict(doc, field, 0), field)


def _doc_dict(doc: Any, path: str, depth: int) -> Filter:
    _check_depth(path, depth)
    if not isinstance(doc, Mapping):
        raise _error(path, f"expected a dict, got {_describe(doc)}")
    if len(doc) != 1:
        got = "none" if not doc else f"{len(doc)}: " + ", ".join(f"`{op}`" for op in doc)
        hint = " (combine conditions with $and)" if doc else ""
        raise _error(path, f"expected exactly one operator, got {got}{hint}")
    op, arg = next(iter(doc.items()))
    if op in ("$and", "$or"):
        items = _filter_list(arg, path, op)
        children = tuple(
            _doc_dict(item, f"{path}.{op}[{i}]", depth + 1) for i, item in enumerate(items)
        )
        return And(children) if op == "$and" else Or(children)
    if op in ("$contains", "$not_contains"):
        return DocContains(_doc_text(arg, path, op), negate=op == "$not_contains")
    if op in ("$regex", "$not_regex"):
        return DocRegex(_doc_pattern(arg, path, op), negate=op == "$not_regex")
    raise _error(path, f"unknown operator `{op}` (expected one of {', '.join(_DOC_OPS)})")


def _doc_text(arg: Any, path: str, op: str) -> str:
    if not isinstance(arg, str) or not arg:
        got = "an empty string" if isinstance(arg, str) else _describe(arg)
        raise _error(path, f"`{op}` needs a non-empty string, got {got}")
    if not _is_valid_unicode(arg):
        raise _error(path, f"`{op}` needs valid Unicode text (no lone surrogates)")
    return arg


def _doc_pattern(arg: Any, path: str, op: str) -> str:
    pattern = _doc_text(arg, path, op)
    if len(pattern) > _MAX_PATTERN_LENGTH:
        raise _error(path, f"`{op}` patterns are at most {_MAX_PATTERN_LENGTH} characters")
    try:
        compiled_regex(pattern)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise _error(path, f"`{op}` is not a valid RE2 regular expression: {reason}") from None
    return pattern


def combine(where: Filter | None, where_document: Filter | None) -> Filter | None:
    """Both filters together (records must pass both); None when there is neither."""
    if where is None:
        return where_document
    if where_document is None:
        return where
    return And((where, where_document))


# --------------------------------------------------------------------------------------
# Normal form, shared by the compilers (storage/filter_sql.py; a Milvus one beside it):
# negations pushed to the leaves, nested junctions flattened, equalities folded into `$in`.


def normalized(node: Filter, negate: bool = False) -> Filter:
    """`node` (or its complement) with negations pushed to the leaves and nested `$and`s
    and `$or`s flattened. SQLite's parser has a small fixed stack (`parser stack overflow`
    at a few dozen nested parentheses), and user filters often nest `$not`s needlessly.
    """
    if isinstance(node, Not):
        return normalized(node.child, not negate)
    if isinstance(node, (And, Or)):
        junction = (Or if isinstance(node, And) else And) if negate else type(node)
        children: list[Filter] = []
        for child in node.children:
            part = normalized(child, negate)
            children.extend(part.children if isinstance(part, junction) else [part])
        children = _folded(children, negated=junction is And)
        return children[0] if len(children) == 1 else junction(tuple(children))
    return _negated_leaf(node) if negate else node


def _negated_leaf(node: Filter) -> Filter:
    """The complement of a leaf, as a leaf where one exists (so that SQL nests less)."""
    if isinstance(node, Compare) and node.op in ("$eq", "$ne"):
        return Compare(node.key, "$ne" if node.op == "$eq" else "$eq", node.value)
    if isinstance(node, (InSet, ListContains, DocContains, DocRegex)):
        return dataclasses.replace(node, negate=not node.negate)
    if isinstance(node, Exists):
        return Exists(node.key, not node.present)
    return Not(node)  # a range comparison: its complement also holds non-numbers


def _folded(children: list[Filter], negated: bool) -> list[Filter]:
    """Equalities of one field joined by `$or` as one `$in` (and `$ne`s joined by `$and`
    as one `$nin`, their complement): one lookup instead of many, and a `$or` of thousands
    of equalities stays a short SQL expression. The first member's place is kept."""
    op = "$ne" if negated else "$eq"
    groups: dict[tuple[str, Kind], list[Scalar]] = {}
    for child in children:
        if isinstance(child, Compare) and child.op == op:
            groups.setdefault((child.key, child.kind), []).append(child.value)
        elif isinstance(child, InSet) and child.negate == negated and child.values:
            groups.setdefault((child.key, child.kind), []).extend(child.values)
    if all(len(values) < 2 for values in groups.values()):
        return children
    out: list[Filter] = []
    placed: set[tuple[str, Kind]] = set()
    for child in children:
        if isinstance(child, (Compare, InSet)) and (child.key, child.kind) in groups:
            group = (child.key, child.kind)
            is_member = (isinstance(child, Compare) and child.op == op) or (
                isinstance(child, InSet) and child.negate == negated and bool(child.values)
            )
            if is_member and len(groups[group]) > 1:
                if group not in placed:
                    placed.add(group)
                    values = tuple(dict.fromkeys(groups[group]))
                    out.append(InSet(child.key, values, negate=negated))
                continue
        out.append(child)
    return out


def count_conditions(node: Filter) -> int:
    if isinstance(node, (And, Or)):
        return sum(count_conditions(child) for child in node.children)
    return 1


# --------------------------------------------------------------------------------------
# Regular expressions: RE2, for the evaluator here and the SQL function of the store.


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a bad pattern is the caller's error, not a log line
    options.never_capture = True  # only "is there a match" is asked: the faster engine
    return options


_RE2_OPTIONS = _re2_options()


@lru_cache(maxsize=128)
def compiled_regex(pattern: str) -> re2._Regexp[str]:
    """Compiled patterns, cached: SQLite calls `regexp` once per row."""
    return re2.compile(pattern, _RE2_OPTIONS)
