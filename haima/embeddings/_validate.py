"""Input checks shared by every embedding function: clear errors that name the bad item."""

from __future__ import annotations

from collections.abc import Iterable

from haima.errors import InvalidArgumentError


def validate_texts(texts: Iterable[str], field: str = "texts") -> list[str]:
    """Return `texts` as a list, or raise `InvalidArgumentError` naming the first bad item.

    A text must be a `str` with at least one non-whitespace character. A single `str`
    passed where a list is expected is refused (it would otherwise be embedded letter by
    letter).
    """
    if isinstance(texts, (str, bytes)):
        raise InvalidArgumentError(
            f"{field} must be a list of strings, got a single {type(texts).__name__}; "
            f"wrap it in a list: [{field[:-1] if field.endswith('s') else field}]"
        )
    try:
        items = list(texts)
    except TypeError:
        raise InvalidArgumentError(
            f"{field} must be a list of strings, got {type(texts).__name__}"
        ) from None
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise InvalidArgumentError(
                f"{field}[{i}] must be a str, got {type(text).__name__}: {_short(text)}"
            )
        if not text.strip():
            what = "empty" if not text else "blank (only whitespace)"
            raise InvalidArgumentError(f"{field}[{i}] is {what}; there is nothing to embed")
    return items


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
