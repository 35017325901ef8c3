"""Document metadata between LangChain (any JSON-like dict) and Haima (flat values)."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

#: Metadata key listing the keys whose values were stored as JSON text (see below).
JSON_KEYS_FIELD = "_lc_json"
_NOT_NATIVE = object()


def to_haima_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """LangChain metadata as Haima metadata, which is flat: str, int, float, bool, or a
    non-empty list of one of those kinds.

    - None values are dropped (Haima has no null; the key reads back as absent).
    - Values Haima can store (numpy scalars included) are stored as they are, so filters
      work on them.
    - Anything else (nested dicts, empty or mixed lists, NaN, dates, ...) is stored as JSON
      text, and its key is listed under `JSON_KEYS_FIELD`, so that `from_haima_metadata`
      decodes it on the way back. Filters see the JSON text. Objects JSON cannot encode
      are stored as `str(value)`.
    """
    out: dict[str, Any] = {}
    encoded: list[str] = []
    for key, value in (metadata or {}).items():
        if key == JSON_KEYS_FIELD:
            raise ValueError(f"metadata key {JSON_KEYS_FIELD!r} is reserved by HaimaVectorStore")
        if value is None:
            continue
        native = _native(value)
        if native is _NOT_NATIVE:
            out[key] = json.dumps(value, ensure_ascii=False, default=str)
            encoded.append(key)
        else:
            out[key] = native
    if encoded:
        out[JSON_KEYS_FIELD] = encoded
    return out


def from_haima_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Haima metadata as LangChain metadata (None gives {}; JSON-encoded values decoded)."""
    out = dict(metadata or {})
    encoded = out.pop(JSON_KEYS_FIELD, None)
    if isinstance(encoded, list):
        for key in encoded:
            if isinstance(out.get(key), str):
                with contextlib.suppress(ValueError):  # changed elsewhere: keep the text
                    out[key] = json.loads(out[key])
    return out


def _native(value: Any) -> Any:
    """`value` as Haima stores it, or `_NOT_NATIVE`."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _NOT_NATIVE
    if isinstance(value, (list, tuple)) and value:
        items = [_native(v) for v in value]
        kinds = {_kind(v) for v in items}
        if len(kinds) == 1 and None not in kinds:
            return items
    return _NOT_NATIVE


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "str" if isinstance(value, str) else None
