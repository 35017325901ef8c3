"""A process's resident memory and CPU time, read from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path


def _proc(pid: int | None, name: str) -> str:
    return Path(f"/proc/{'self' if pid is None else pid}/{name}").read_text()


def rss_mb(pid: int | None = None) -> float:
    """VmRSS of process `pid` (None: this process) in MiB."""
    for line in _proc(pid, "status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # reported in kB
    raise RuntimeError(f"no VmRSS in /proc/{pid or 'self'}/status")


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of process `pid` (all its threads) so far."""
    # The command name (field 2) may hold spaces; utime and stime follow it as fields
    # 14 and 15, in clock ticks.
    fields = _proc(pid, "stat").rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
