"""`where` and `where_document` parsed once: queries repeat their filters."""

from __future__ import annotations

import threading
from collections import OrderedDict

from haima.filters import And, Filter, IdIn, combine, parse_where, parse_where_document
from haima.types import Where, WhereDocument

#: Parsed filters by repr, most recently used last (process-wide: they depend on nothing).
_FILTERS_KEPT = 1024
#: Longer filters (long `$in` lists) are parsed each time: at most ~4 MB are kept.
_FILTER_KEY_MAX = 4096
_filters_seen: OrderedDict[str, Filter | None] = OrderedDict()
_filters_lock = threading.Lock()
_UNSEEN = object()


def parse_filters(where: Where | None, where_document: WhereDocument | None) -> Filter | None:
    """Parse both filters; a filter seen before is not parsed again (queries repeat them).
    The key is the filters' repr, which tells 1 from "1" and 1.0 (JSON would not, and a
    dict key 1 must stay an error)."""
    if where is None and where_document is None:
        return None
    try:
        key = repr((where, where_document))
    except RecursionError:  # nested far past the parsers' limit, which will say so
        key = ""
    if not key or len(key) > _FILTER_KEY_MAX:  # kept small, so the cache stays small
        return combine(parse_where(where), parse_where_document(where_document))
    with _filters_lock:
        parsed = _filters_seen.get(key, _UNSEEN)
        if parsed is not _UNSEEN:
            _filters_seen.move_to_end(key)
            return parsed  # type: ignore[return-value]
    parsed = combine(parse_where(where), parse_where_document(where_document))
    with _filters_lock:
        _filters_seen[key] = parsed
        if len(_filters_seen) > _FILTERS_KEPT:
            _filters_seen.popitem(last=False)
    return parsed


def names_ids(filt: Filter) -> bool:
    """Whether `filt` holds an `IdIn` (`combine` puts it at the top level)."""
    return isinstance(filt, IdIn) or (
        isinstance(filt, And) and any(isinstance(c, IdIn) for c in filt.children)
    )
