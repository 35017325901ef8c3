"""The embedding providers' optional packages (see haima/_deps.py for the shared part)."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from haima._deps import import_optional, missing_package
from haima.errors import EmbeddingFunctionError, MissingDependencyError


def missing(provider: str, package: str, extra: str | None) -> MissingDependencyError:
    return missing_package(package, extra, f"the {provider!r} embedding provider")


def ensure_installed(module: str, *, provider: str, package: str, extra: str | None) -> None:
    """Cheap check (no import) that `module` can be imported."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise missing(provider, package, extra)


def require(module: str, *, provider: str, package: str, extra: str | None) -> ModuleType:
    """Import `module`, or raise `MissingDependencyError` naming the extra to install."""
    try:
        return import_optional(
            module, package=package, extra=extra, purpose=f"the {provider!r} embedding provider"
        )
    except MissingDependencyError:
        raise
    except ImportError as exc:
        # the package is there but one of *its* imports failed: say so
        raise EmbeddingFunctionError(
            f"the {provider!r} embedding provider could not import {module!r}: {exc}"
        ) from exc
