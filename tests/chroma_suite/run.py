"""Run Chroma's own property suite (chromadb 1.5.9) against a real `haima run`.

    python tests/chroma_suite/run.py --suite-python .venv-chroma-suite/bin/python [--full]

The server runs from this interpreter (the project's environment) on a free loopback
port with `--allow-reset`; the suite runs from its own environment
(tests/chroma_suite/requirements.txt: its conftest needs pytest < 9) in Chroma's
integration mode, against both its sync and async HTTP clients. The default profile is
small (10 examples, 10 state-machine steps: a few minutes on 2 cores); `--full` uses 100
and 50. Exits with pytest's status.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the checkout, for tests.helpers

from tests.helpers.server import ServerProcess  # noqa: E402

#: The suite's files that must pass (issue 14), under chromadb/test/property/.
FILES = [
    "test_add.py",
    "test_filtering.py",
    "test_embeddings.py",
    "test_collections.py",
    "test_base64_conversion.py",
    "test_collections_with_database_tenant.py",
    "test_client_url.py",
]


def _site_packages(python: str) -> Path:
    out = subprocess.run(
        [python, "-c", "import chromadb, pathlib; print(pathlib.Path(chromadb.__file__).parent)"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip()).parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite-python", required=True, help="python of the suite's venv")
    parser.add_argument("--full", action="store_true", help="100 examples, 50 steps")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args()
    # Absolute (the suite runs in a temporary folder), but not resolved: a venv's python
    # is a symlink to the base interpreter, which would lose the venv's packages.
    args.suite_python = os.path.abspath(args.suite_python)
    site = _site_packages(args.suite_python)
    suite = site / "chromadb" / "test" / "property"
    with tempfile.TemporaryDirectory(prefix="haima-chroma-suite-") as tmp:
        server = ServerProcess(
            Path(tmp) / "store", "--allow-reset", "--no-preload", "--no-access-log"
        ).start()
        env = {
            **os.environ,
            "CHROMA_INTEGRATION_TEST_ONLY": "1",
            "CHROMA_SERVER_HOST": "127.0.0.1",
            "CHROMA_SERVER_HTTP_PORT": str(server.port),
            "ANONYMIZED_TELEMETRY": "False",  # Chroma's client would try to report usage
            "PYTHONPATH": str(HERE),
            "HAIMA_SUITE_EXAMPLES": "100" if args.full else "10",
            "HAIMA_SUITE_STEPS": "50" if args.full else "10",
        }
        command = [
            args.suite_python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "-p", "hypothesis_profile",
            # Chroma's conftest lives inside the installed package: let pytest see it.
            f"--confcutdir={site}", "-W", "ignore::DeprecationWarning",
            *(str(suite / name) for name in FILES), *args.pytest_args,
        ]  # fmt: skip
        started = time.monotonic()
        try:
            status = subprocess.run(command, env=env, cwd=tmp).returncode
        finally:
            server.stop()
        print(f"Chroma property suite: exit {status} in {time.monotonic() - started:.0f} s")
        if status != 0:
            print(f"server log:\n{server.log.read_text()[-4000:]}")
        return status


if __name__ == "__main__":
    sys.exit(main())
