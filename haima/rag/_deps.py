"""Optional packages of the `rag` extra, imported only when a file needs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from haima.embeddings._deps import MissingDependencyError, install_hint

EXTRA = "rag"


def require(module: str, *, package: str, purpose: str) -> ModuleType:
    """Import `module`, or raise `MissingDependencyError` that names `haima[rag]`.

    `purpose` completes "... needs the X package", e.g. "reading PDF files".
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] != module.split(".")[0]:
            raise  # the package is installed but one of its own imports failed
        raise MissingDependencyError(
            f"{purpose} needs the {package!r} package, which is not installed: "
            f"{install_hint(package, EXTRA)}",
            package=package,
            extra=EXTRA,
        ) from exc
