"""The evaluation's optional packages (matplotlib, pyyaml): imported when used, with an
error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from haima.embeddings._deps import install_hint
from haima.errors import HaimaError

EXTRA = "eval"


class MissingEvalDependencyError(HaimaError):
    """pyyaml or matplotlib is missing; the message gives the `pip install` line."""


def require_eval(module: str, package: str) -> ModuleType:
    """Import `module`, or raise `MissingEvalDependencyError` naming `haima[eval]`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] != module.split(".")[0]:
            raise  # the package is there but one of its own imports failed
        raise MissingEvalDependencyError(
            f"haima eval needs the {package!r} package for this, which is not installed: "
            f"{install_hint(package, EXTRA)}"
        ) from exc
