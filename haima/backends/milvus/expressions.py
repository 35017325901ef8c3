"""Haima's filter language compiled to Milvus boolean expressions.

Metadata is stored *type-tagged* in a JSON field `m`, each key prefixed by the kind of its
value (`get` strips the prefixes again):
``{"year": 2020, "tags": ["a"]}`` becomes ``{"n:year": 2020, "ls:tags": ["a"]}``. The tags
give Haima's typed semantics for free: `{"k": 1}` looks only at `m["n:k"]`, so it never
matches the string "1" or the bool True, and 1 matches 1.0 (Milvus compares JSON numbers
numerically).

Milvus evaluates a comparison on a missing JSON key as unknown, and `not unknown` is
unknown: `not (m["n:k"] == 5)` leaves out records without the key. Haima's negations are
complements (they match records without the key), so every test that ends up negated is
made two-valued by guarding it with `exists`, and negation is then plain `not`.

What Milvus cannot evaluate (`$regex`, `$not_regex`, and `$contains` of a text holding
% _ or \\) is refused with an error naming the operator and the backend; no filter
silently answers differently.
"""

from __future__ import annotations

from typing import Any

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
    Kind,
    ListContains,
    Not,
    Or,
    Scalar,
    kind_of,
)

#: The JSON field holding type-tagged metadata, and the fields of id and document.
TAGGED_FIELD = "m"
ID_FIELD = "id"
DOCUMENT_FIELD = "document"

_LIST_TAGS: dict[Kind, str] = {"s": "ls", "n": "ln", "b": "lb"}
_ALL_TAGS = ("s", "n", "b", "ls", "ln", "lb")
_COMPARISONS = {"$eq": "==", "$ne": "==", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def tagged_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """Metadata as stored in the `m` field: each key prefixed by its value's kind."""
    tagged: dict[str, Any] = {}
    for key, value in (metadata or {}).items():
        if isinstance(value, list):
            tagged[f"{_LIST_TAGS[kind_of(value[0])]}:{key}"] = value
        else:
            tagged[f"{kind_of(value)}:{key}"] = value
    return tagged


def untagged_metadata(tagged: dict[str, Any]) -> dict[str, Any] | None:
    """The metadata as given, from the `m` field (None when it holds none)."""
    return {key.split(":", 1)[1]: value for key, value in tagged.items()} or None


def literal(value: Scalar) -> str:
    """A scalar as a Milvus expression literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return string_literal(value)
    # An int, or a finite float (repr round-trips). Milvus's parser takes `-1` in a
    # comparison but not as a function argument, `(-1)` in both.
    text = repr(value)
    return f"({text})" if text.startswith("-") else text  # -0.0 too


def string_literal(text: str) -> str:
    """A double-quoted Milvus string. Milvus knows the escapes \\\\ \\" \\n \\t \\r but not
    \\u, so other characters (control characters included) are written as they are."""
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\t", "\\t")
        .replace("\r", "\\r")
    )
    return f'"{escaped}"'


def _field(tag: str, key: str) -> str:
    return f"{TAGGED_FIELD}[{string_literal(f'{tag}:{key}')}]"


def _guarded(field: str, test: str) -> str:
    """`test` on a JSON key, false (not unknown) when the key is missing."""
    return f"(exists {field} and {test})"


#: Characters a `$contains` text may not hold on Milvus: LIKE's wildcards and its escape.
#: milvus-lite reads an escaped wildcard (`\\%`) as a literal once an expression also
#: tests a JSON key, and as a backslash followed by a wildcard otherwise; no escaping
#: gives one answer in both, so such texts are refused rather than matched loosely.
LIKE_SPECIALS = frozenset("%_\\")


def _like_pattern(text: str, op: str) -> str:
    """A LIKE pattern matching `text` anywhere."""
    specials = sorted(LIKE_SPECIALS.intersection(text))
    if specials:
        shown = " ".join(specials)
        raise InvalidFilterError(
            f"where_document.{op}: the Milvus backend cannot match the characters {shown} "
            "in a text (Milvus's LIKE treats them as wildcards and escapes, inconsistently "
            "across versions); search without them, or use a local or server store"
        )
    return f"%{text}%"


def compile_filter(node: Filter, negated: bool = False) -> str:
    """The Milvus expression selecting exactly the records `node` matches (the semantics
    of `haima.filter_reference.matches`).

    `negated`: whether `node` stands under an odd number of negations. Elsewhere an
    unknown (a missing key, a null document) already acts as false, since Milvus drops
    rows whose filter is not true and `and`/`or` keep unknown ≡ false there; so only
    tests that end up negated are guarded, which spares Milvus a second JSON lookup in
    the common, positive filters."""
    if isinstance(node, And):
        return "(" + " and ".join(compile_filter(c, negated) for c in node.children) + ")"
    if isinstance(node, Or):
        return "(" + " or ".join(compile_filter(c, negated) for c in node.children) + ")"
    if isinstance(node, Not):
        return f"(not {compile_filter(node.child, not negated)})"
    if isinstance(node, IdIn):
        return f"({ID_FIELD} in [{', '.join(string_literal(i) for i in node.ids)}])"
    if isinstance(node, Compare):
        field = _field(node.kind, node.key)
        test = f"{field} {_COMPARISONS[node.op]} {literal(node.value)}"
        return _leaf(field, test, node.op == "$ne", negated)
    if isinstance(node, InSet):
        field = _field(node.kind, node.key)
        any_of = " or ".join(f"{field} == {literal(v)}" for v in node.values)
        return _leaf(field, f"({any_of})", node.negate, negated)
    if isinstance(node, ListContains):
        field = _field(_LIST_TAGS[node.kind], node.key)
        test = f"json_contains({field}, {literal(node.value)})"
        return _leaf(field, test, node.negate, negated)
    if isinstance(node, Exists):
        present = " or ".join(f"exists {_field(tag, node.key)}" for tag in _ALL_TAGS)
        return f"({present})" if node.present else f"(not ({present}))"
    if isinstance(node, DocContains):
        op = "$not_contains" if node.negate else "$contains"
        test = f"{DOCUMENT_FIELD} like {string_literal(_like_pattern(node.text, op))}"
        if node.negate != negated:  # the test ends up negated: a null document is false
            test = f"{DOCUMENT_FIELD} is not null and {test}"
        return f"(not ({test}))" if node.negate else f"({test})"
    if isinstance(node, DocRegex):
        op = "$not_regex" if node.negate else "$regex"
        raise InvalidFilterError(
            f"where_document.{op}: the Milvus backend cannot evaluate regular expressions "
            "(Milvus has no regex operator); use $contains, or a local or server store"
        )
    raise TypeError(f"unknown filter node {node!r}")  # pragma: no cover - exhaustive


def _leaf(field: str, test: str, negative: bool, negated: bool) -> str:
    """A test on a JSON key; `negative` for the negated operators ($ne, $nin,
    $not_contains), which are `not` of the test. Guarded when the test ends up negated."""
    positive = _guarded(field, test) if negative != negated else f"({test})"
    return f"(not {positive})" if negative else positive
