"""Milvus targets as `haima.connect`, `haima run --milvus` and `haima migrate` take them,
and the URI pymilvus is given for each."""

from __future__ import annotations

from haima.errors import InvalidArgumentError

#: Target prefix → what pymilvus is given in its place.
_SERVER_SCHEMES = {
    "milvus://": "http://",
    "milvus+http://": "http://",
    "milvus+https://": "https://",
}
_LITE = "milvus-lite://"
_PREFIXES = (*_SERVER_SCHEMES, _LITE)


def is_milvus_target(target: str) -> bool:
    return target.lower().startswith(_PREFIXES)


def milvus_uri(target: str) -> str:
    """pymilvus's URI for a Milvus target: milvus://host:19530 → http://host:19530,
    milvus+https://host → https://host, milvus-lite:///data/store.db → /data/store.db."""
    lowered = target.lower()
    for prefix, scheme in _SERVER_SCHEMES.items():
        if lowered.startswith(prefix):
            return scheme + target[len(prefix) :]
    if lowered.startswith(_LITE):
        path = target[len(_LITE) :]
        if not path.endswith(".db"):
            raise InvalidArgumentError(
                f"target: a milvus-lite store is a file whose name ends in .db, got {path!r} "
                "(e.g. milvus-lite:///data/store.db or milvus-lite://./store.db)"
            )
        return path
    raise InvalidArgumentError(
        f"target: {target!r} is not a Milvus URI (milvus://host:19530, "
        "milvus+https://host, milvus-lite:///path/store.db)"
    )
