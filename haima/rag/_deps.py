"""Optional packages of the `rag` extra, imported only when a file needs them."""

from __future__ import annotations

from types import ModuleType

from haima._deps import import_optional

EXTRA = "rag"


def require(module: str, *, package: str, purpose: str) -> ModuleType:
    """Import `module`, or raise `MissingDependencyError` that names `haima[rag]`.

    `purpose` completes "... needs the X package", e.g. "reading PDF files".
    """
    return import_optional(module, package=package, extra=EXTRA, purpose=purpose)
