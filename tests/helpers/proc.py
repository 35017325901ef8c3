"""Starting helper scripts as real child processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def spawn(module: str, args: list[str], log: Path) -> Iterator[subprocess.Popen[str]]:
    """`python -m MODULE ARGS` from the repository root, with text pipes for stdin and
    stdout and stderr appended to `log`. Killed if still running when the block exits."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    with open(log, "a") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with suppress(BrokenPipeError):
                        stream.close()
