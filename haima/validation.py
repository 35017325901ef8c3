"""Input validation shared by every client: each check names the field and the problem."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from haima.errors import DimensionMismatchError, DuplicateIDError, InvalidArgumentError
from haima.types import IncludeField, Metadata, MetadataInput, Vectors

#: Matched whole (`fullmatch`: a `$` would also match before a final newline).
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]")
_INCLUDE_FIELDS = ("documents", "metadatas", "embeddings", "distances", "uris", "data")
_VALID_INCLUDE = frozenset(_INCLUDE_FIELDS)


#: Integers are stored as SQLite's 64-bit INTEGER.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def text(value: str, field: str) -> str:
    """`value` if it is valid Unicode: a lone UTF-16 surrogate (which Python's str allows,
    e.g. from a JSON "\\ud800" or a badly cut string) can be neither encoded nor stored."""
    if not value.isascii():  # O(1) in CPython; only other text pays for the check
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidArgumentError(
                f"{field}: not valid Unicode: a lone surrogate "
                f"{value[exc.start]!r} at position {exc.start}"
            ) from None
    return value


def int64(value: int, field: str) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidArgumentError(
            f"{field}: integers must fit in 64 bits (from -2**63 to 2**63-1), got {value}"
        )
    return value


def collection_name(name: Any) -> str:
    if not isinstance(name, str):
        raise InvalidArgumentError(f"name: expected a string, got {type(name).__name__}")
    if not _NAME_RE.fullmatch(name) or ".." in name:
        raise InvalidArgumentError(
            f"name: {name!r} is not a valid collection name: use 3-512 characters from "
            "[A-Za-z0-9._-], starting and ending with a letter or digit, without '..'"
        )
    return name


def ids(value: Any, field: str = "ids") -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence):
        raise InvalidArgumentError(
            f"{field}: expected a list of strings, got {type(value).__name__}"
        )
    out: list[str] = []
    seen: set[str] = set()
    duplicates: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise InvalidArgumentError(
                f"{field}[{i}]: expected a string, got {type(item).__name__}"
            )
        if not item:
            raise InvalidArgumentError(f"{field}[{i}]: ids must be non-empty strings")
        text(item, f"{field}[{i}]")
        if item in seen:
            duplicates.append(item)
        seen.add(item)
        out.append(item)
    if duplicates:
        shown = ", ".join(repr(d) for d in duplicates[:5])
        more = f" and {len(duplicates) - 5} more" if len(duplicates) > 5 else ""
        raise DuplicateIDError(f"{field}: duplicate ids in one call: {shown}{more}")
    return out


def query_embeddings(value: Any, dimension: int | None) -> Vectors:
    """Query vectors: one vector or a non-empty list of them, as a (n, dim) array."""
    field = "query_embeddings"
    if (
        type(value) is np.ndarray
        and value.dtype == np.float32
        and value.ndim == 2
        and len(value)
        and value.shape[1] == dimension
        # NaN and inf carry through a dot product, which costs less than a sum here (no
        # ufunc machinery); a float32 overflow of huge values takes the full path below.
        and math.isfinite(np.vdot(value, value))
    ):
        return value  # the common case in one numpy call: it precedes every query
    array = _float32_array(value, field)
    if array.ndim == 1 and array.size:
        array = array.reshape(1, -1)  # a single vector
    if array.ndim in (1, 2) and not len(array):
        raise InvalidArgumentError(f"{field}: give at least one embedding")
    return embeddings(array, len(array) if array.ndim == 2 else 1, dimension, field)


def _float32_array(value: Any, field: str) -> Vectors:
    if type(value) is np.ndarray and value.dtype == np.float32:
        return value  # the common case, spared a conversion call
    try:
        return np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"{field}: expected a list of equal-length lists of numbers ({exc})"
        ) from exc


def embeddings(value: Any, count: int, dimension: int | None, field: str = "embeddings") -> Vectors:
    """A (count, dim) float32 array: finite, of the collection's dimension."""
    if isinstance(value, np.ndarray) and value.ndim == 1 and count == 1:
        value = value.reshape(1, -1)
    array = _float32_array(value, field)
    if array.ndim == 1 and count == 1 and array.size > 0 and not isinstance(value[0], Sequence):
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise InvalidArgumentError(
            f"{field}: expected a list of vectors, got an array of shape {array.shape}"
        )
    if array.shape[0] != count:
        raise InvalidArgumentError(f"{field}: got {array.shape[0]} embeddings for {count} ids")
    if array.shape[1] == 0:
        raise InvalidArgumentError(f"{field}: embeddings must not be empty")
    if dimension is not None and array.shape[1] != dimension:
        raise DimensionMismatchError(
            f"{field}: expected dimension {dimension}, got {array.shape[1]}"
        )
    # One float64 sum cannot overflow on finite float32 input, and NaN or inf carry
    # through it: the common case costs one pass and no temporary array.
    if not math.isfinite(float(array.sum(dtype=np.float64))):
        finite = np.isfinite(array).all(axis=1)
        bad = int(np.flatnonzero(~finite)[0])
        raise InvalidArgumentError(f"{field}[{bad}]: contains NaN or infinite values")
    return np.ascontiguousarray(array)


def documents(value: Any, count: int, field: str = "documents") -> list[str | None]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence):
        raise InvalidArgumentError(
            f"{field}: expected a list of strings, got {type(value).__name__}"
        )
    if len(value) != count:
        raise InvalidArgumentError(f"{field}: got {len(value)} documents for {count} ids")
    for i, doc in enumerate(value):
        if isinstance(doc, str):
            text(doc, f"{field}[{i}]")
        elif doc is not None:
            raise InvalidArgumentError(f"{field}[{i}]: expected a string, got {type(doc).__name__}")
    return list(value)


def metadatas(
    value: Any, count: int, field: str = "metadatas", allow_none_values: bool = False
) -> list[dict[str, Any] | None]:
    """Validate record metadata. With `allow_none_values` (update), None removes a key."""
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, Sequence):
        raise InvalidArgumentError(f"{field}: expected a list of dicts, got {type(value).__name__}")
    if len(value) != count:
        raise InvalidArgumentError(f"{field}: got {len(value)} metadatas for {count} ids")
    out: list[dict[str, Any] | None] = []
    for i, md in enumerate(value):
        out.append(None if md is None else metadata(md, field, allow_none_values, index=i))
    return out


def metadata(
    md: Any, field: str, allow_none_values: bool = False, index: int | None = None
) -> dict[str, Any]:
    """A record's metadata; `field[index]` names it in errors (built only for them:
    ingestion validates every record)."""
    if not isinstance(md, Mapping):
        field = field if index is None else f"{field}[{index}]"
        raise InvalidArgumentError(f"{field}: expected a dict, got {type(md).__name__}")
    out: dict[str, Any] = {}
    for key, val in md.items():
        # The common case, checked cheaply: ASCII keys, ASCII strings and small ints.
        if type(key) is str and key and key[0] != "$" and key.isascii():
            kind = type(val)
            if (kind is str and val.isascii()) or kind is bool:
                out[key] = val
                continue
            if kind is int and INT64_MIN <= val <= INT64_MAX:
                out[key] = val
                continue
        field = field if index is None else f"{field}[{index}]"
        index = None
        path = f"{field}.{key}"
        if not isinstance(key, str) or not key:
            raise InvalidArgumentError(f"{field}: keys must be non-empty strings, got {key!r}")
        if key.startswith("$"):
            raise InvalidArgumentError(f"{path}: keys must not start with '$'")
        text(key, f"{field}: key")
        if val is None:
            if allow_none_values:
                out[key] = None
            continue
        out[key] = metadata_value(val, path)
    return out


def metadata_value(val: Any, path: str) -> Any:
    """A metadata value as a plain str, bool, int, float or list (a str or int subclass,
    such as an enum member, becomes its plain value: storage dispatches on exact types)."""
    if isinstance(val, bool):
        return bool(val)
    if isinstance(val, str):
        return text(str.__str__(val), path)
    if isinstance(val, int):
        return int64(int(val), path)
    if isinstance(val, float):
        if not math.isfinite(val):
            raise InvalidArgumentError(f"{path}: NaN and infinite floats are not allowed")
        return val
    if isinstance(val, (list, tuple)):
        if not val:
            raise InvalidArgumentError(f"{path}: list values must not be empty")
        kinds = {_scalar_kind(item, f"{path}[{i}]") for i, item in enumerate(val)}
        if len(kinds) > 1:
            raise InvalidArgumentError(
                f"{path}: list elements must all be of one type (str, number or bool), "
                f"got {', '.join(sorted(kinds))}"
            )
        return [metadata_value(item, f"{path}[{i}]") for i, item in enumerate(val)]
    if isinstance(val, Mapping):
        raise InvalidArgumentError(
            f"{path}: nested dicts are not allowed; metadata values are str, int, float, bool "
            "or a list of one of those"
        )
    if isinstance(val, (np.integer, np.floating)):
        return metadata_value(val.item(), path)
    raise InvalidArgumentError(
        f"{path}: expected str, int, float, bool or a list of them, got {type(val).__name__}"
    )


def _scalar_kind(item: Any, path: str) -> str:
    if isinstance(item, bool):
        return "bool"
    if isinstance(item, (int, float)):
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidArgumentError(f"{path}: NaN and infinite floats are not allowed")
        return "number"
    if isinstance(item, str):
        return "str"
    raise InvalidArgumentError(
        f"{path}: list elements must be str, int, float or bool, got {type(item).__name__}"
    )


def collection_metadata(md: Any, field: str = "metadata") -> Metadata | None:
    if md is None:
        return None
    if isinstance(md, Mapping) and not md:
        raise InvalidArgumentError(f"{field}: expected a non-empty dict or None, got {{}}")
    return metadata(md, field)


def include(
    value: Any, allowed_distances: bool, field: str = "include"
) -> tuple[IncludeField, ...]:
    # The common case first; "distances" is the one field not every call may ask for.
    if (
        type(value) in (list, tuple)
        and all(type(item) is str and item in _VALID_INCLUDE for item in value)
        and (allowed_distances or "distances" not in value)
    ):
        return tuple(value)
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidArgumentError(f"{field}: expected a list of field names")
    out: list[IncludeField] = []
    for item in value:
        if item not in _INCLUDE_FIELDS:
            raise InvalidArgumentError(
                f"{field}: unknown field {item!r} (expected some of {', '.join(_INCLUDE_FIELDS)})"
            )
        if item == "distances" and not allowed_distances:
            raise InvalidArgumentError(f"{field}: 'distances' is only available from query()")
        out.append(item)
    return tuple(out)


def non_negative_int(value: Any, field: str, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InvalidArgumentError(f"{field}: expected a non-negative integer, got {value!r}")
    return int64(int(value), field)


def positive_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidArgumentError(f"{field}: expected a positive integer, got {value!r}")
    return int64(int(value), field)


def merged_metadata(old: Metadata | None, change: MetadataInput) -> Metadata | None:
    """Chroma's update semantics: given keys replace, None removes a key, others stay."""
    merged: dict[str, Any] = dict(old or {})
    for key, val in change.items():
        if val is None:
            merged.pop(key, None)
        else:
            merged[key] = val
    return merged or None


def namespace_name(name: Any, field: str) -> str:
    """A tenant or database name: it becomes a URL path segment, so no '/' (which no
    URL could address afterwards) and no control characters."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgumentError(f"{field}: expected a non-empty name, got {name!r}")
    text(name, field)
    if len(name) > _MAX_NAMESPACE_LENGTH:
        raise InvalidArgumentError(
            f"{field}: names are at most {_MAX_NAMESPACE_LENGTH} characters, got {len(name)}"
        )
    if name != name.strip() or "/" in name or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise InvalidArgumentError(
            f"{field}: {name!r} is not a valid name: no '/', no control characters and no "
            "surrounding whitespace"
        )
    return name


_MAX_NAMESPACE_LENGTH = 256
