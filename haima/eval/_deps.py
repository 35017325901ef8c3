"""The evaluation's optional packages (matplotlib, pyyaml): imported when used, with an
error that names the extra to install."""

from __future__ import annotations

from types import ModuleType

from haima._deps import import_optional
from haima.errors import MissingDependencyError

EXTRA = "eval"


class MissingEvalDependencyError(MissingDependencyError):
    """pyyaml or matplotlib is missing; the message gives the `pip install` line."""


def require_eval(module: str, package: str) -> ModuleType:
    """Import `module`, or raise `MissingEvalDependencyError` naming `haima[eval]`."""
    return import_optional(
        module,
        package=package,
        extra=EXTRA,
        purpose="haima eval",
        error=MissingEvalDependencyError,
    )
