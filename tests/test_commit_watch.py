"""Detecting other connections' commits: the WAL-index header short-cut must never hide a
commit that `PRAGMA data_version` would report (haima/storage/commits.py)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from haima.storage.commits import CommitWatch
from haima.storage.sqlite import Store


def _pragma(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def test_each_commit_by_another_connection_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "haima.sqlite3"
    reader = Store(path)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE scratch (x INTEGER)")
    seen = reader.data_version()
    for i in range(200):
        assert reader.data_version() == seen  # nothing committed since
        writer.execute("INSERT INTO scratch VALUES (?)", (i,))
        now = reader.data_version()
        assert now != seen, f"commit {i} by another connection was not seen"
        assert now == _pragma(reader.conn)
        seen = now
        if i % 50 == 49:
            # A checkpoint resets the WAL: the next commit restarts it from the start.
            writer.execute("PRAGMA wal_checkpoint(RESTART)")
    writer.close()
    reader.close()


def test_own_commits_leave_the_version_alone(tmp_path: Path) -> None:
    store = Store(tmp_path / "haima.sqlite3")
    before = store.data_version()
    with store.transaction() as conn:
        conn.execute("CREATE TABLE scratch (x INTEGER)")
    assert store.data_version() == before == _pragma(store.conn)
    store.close()


def test_header_is_read_from_the_shared_memory_file(tmp_path: Path) -> None:
    path = tmp_path / "haima.sqlite3"
    store = Store(path)
    watch = CommitWatch(path)
    first = watch.header()
    assert first is not None and len(first) == 48
    with store.transaction() as conn:
        conn.execute("CREATE TABLE scratch (x INTEGER)")
    assert watch.header() != first
    watch.close()
    store.close()


def test_without_a_shared_memory_file_the_pragma_answers(tmp_path: Path) -> None:
    watch = CommitWatch(tmp_path / "absent.sqlite3")
    assert watch.header() is None
    assert watch.unchanged(None) is None  # never trusted: the caller asks the pragma


def _dms_locked(database: Path) -> bool:
    """Whether this process holds SQLite's lock at byte 128 of the -shm file (the "DMS"
    lock every connection keeps while open), from Linux's /proc/locks."""
    inode = os.stat(f"{database}-shm").st_ino
    pid = str(os.getpid())
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if (
            "POSIX" in fields
            and pid in fields
            and fields[-2:] == ["128", "128"]
            and int(fields[-3].rsplit(":", 1)[1]) == inode
        ):
            return True
    return False


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="reads Linux's /proc/locks")
def test_sqlites_locks_on_the_shared_memory_file_survive(tmp_path: Path) -> None:
    """Closing any descriptor of a file drops the process's POSIX locks on it; the
    watch must never do that while a connection is open."""
    path = tmp_path / "haima.sqlite3"
    first = Store(path)
    first.data_version()
    assert _dms_locked(path)
    second = Store(path)  # a second store on the same file in this process
    second.data_version()
    second.close()
    assert _dms_locked(path), "closing one store dropped the other's locks"
    writer = sqlite3.connect(path, isolation_level=None)
    before = first.data_version()
    writer.execute("CREATE TABLE scratch (x INTEGER)")
    writer.close()
    assert first.data_version() != before
    first.close()
