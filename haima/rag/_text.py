"""Bytes to text: byte-order marks, UTF-8, then detection (GBK/GB18030 first for short
samples, which detectors get wrong)."""

from __future__ import annotations

import codecs

from haima.rag._deps import require
from haima.rag._types import LoadError

_BOMS = (
    # UTF-32 before UTF-16: the UTF-32-LE mark starts with the UTF-16-LE one.
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

#: Below this many non-ASCII bytes charset-normalizer guesses poorly (it took two GBK
#: characters for Big5 and "Hello 世界" in GBK for UTF-16), so a strict GB18030 decode, the
#: likeliest legacy encoding of a Chinese corpus, is tried first.
_SHORT_SAMPLE = 64

#: Encodings charset-normalizer may name for Chinese text; GB18030 decodes all of them.
_GB_FAMILY = frozenset({"gb2312", "gbk", "gb18030", "cp936", "hz"})


def decode(data: bytes, encoding: str | None = None) -> str:
    """The text of a file. `encoding` forces one; otherwise a BOM decides, then strict
    UTF-8, then GB18030 or charset-normalizer's guess. Raises `LoadError` for binary data
    or text no encoding explains."""
    if encoding is not None:
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError) as exc:
            raise LoadError(f"cannot decode as {encoding}: {exc}") from exc
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(name)
            except UnicodeDecodeError as exc:
                raise LoadError(f"starts with a {name} byte-order mark but is not {name}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if b"\x00" in data:
        raise LoadError("binary data, not text")
    non_ascii = sum(1 for b in data if b >= 0x80)
    if non_ascii < _SHORT_SAMPLE:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError:
            pass
    detector = require(
        "charset_normalizer", package="charset-normalizer", purpose="detecting text encodings"
    )
    best = detector.from_bytes(data).best()
    if best is None:
        raise LoadError("not UTF-8 and no text encoding could be detected")
    name = str(best.encoding).lower().replace("-", "_")
    if name in _GB_FAMILY:
        name = "gb18030"  # a superset: a GBK guess must not fail on a rarer character
    try:
        return data.decode(name)
    except (LookupError, UnicodeDecodeError) as exc:
        raise LoadError(f"detected encoding {name} does not decode the file: {exc}") from exc
