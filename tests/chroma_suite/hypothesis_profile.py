"""A pytest plugin for Chroma's property suite: a hypothesis profile sized for this run.

Chroma's conftest registers its profiles ("fast" is 50 examples, verbose) and loads one
when it is imported. Test modules are imported after it, and each `@settings(...)` takes
its unset values from the profile loaded at that moment; so the profile is swapped right
after the conftest registers, before any test module is imported.

`HAIMA_SUITE_EXAMPLES` and `HAIMA_SUITE_STEPS` size it (defaults: 10 and 10).
"""

from __future__ import annotations

import os
from typing import Any

import hypothesis

_CONFTEST = os.path.join("chromadb", "test", "conftest.py")


def pytest_plugin_registered(plugin: Any, manager: Any) -> None:
    path = str(getattr(plugin, "__file__", "") or "")
    if not path.endswith(_CONFTEST):
        return
    hypothesis.settings.register_profile(
        "haima",
        hypothesis.settings.get_profile("base"),
        max_examples=int(os.environ.get("HAIMA_SUITE_EXAMPLES", "10")),
        stateful_step_count=int(os.environ.get("HAIMA_SUITE_STEPS", "10")),
        verbosity=hypothesis.Verbosity.normal,
        derandomize=True,  # the same examples every run: a red run can be re-run
        database=None,
    )
    hypothesis.settings.load_profile("haima")
