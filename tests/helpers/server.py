"""Real `haima run` processes on 127.0.0.1 for the server tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

HAIMA = [sys.executable, "-c", "from haima.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """`haima run` on a free loopback port; `start()` returns once it answers."""

    def __init__(
        self,
        path: Path,
        *args: str,
        env: dict[str, str] | None = None,
        launcher: list[str] | None = None,
    ) -> None:
        self.path = path
        #: The command that runs the CLI (default: this Python, `haima.cli.main`).
        self.launcher = launcher or HAIMA
        self.args = list(args)
        self.env = {**os.environ, **(env or {})}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = path.parent / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ServerProcess:
        command = [
            *self.launcher,
            "run",
            "--path",
            str(self.path),
            "--port",
            str(self.port),
            *self.args,
        ]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self.env
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"haima run exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"haima run did not answer:\n{self.log.read_text()}")
            time.sleep(0.05)  # polling for readiness, bounded by the deadline

    def stop(self, timeout: float = 60.0) -> int:
        """Ctrl-C, as a user would; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()


def fresh_tenant(url: str) -> str:
    """A new tenant with its default database on the server at `url`, so that a test on
    a shared server works in a namespace of its own."""
    import uuid

    import haima

    tenant = f"t-{uuid.uuid4().hex}"
    with haima.HttpClient.from_url(url) as admin:
        admin.create_tenant(tenant)
        admin.create_database("default_database", tenant=tenant)
    return tenant
