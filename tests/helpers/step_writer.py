"""Child process for the multi-process test: applies the writes it reads from stdin, one
JSON command per line, and answers `ok` (or `error …`) on stdout after each.

    python -m tests.helpers.step_writer PATH INDEX_TYPE

Commands: {"op": "add" | "update" | "upsert", "ids": [...], "embeddings": [...],
"documents": [...], "metadatas": [...]}, {"op": "delete", "ids": [...], "where": {...}},
{"op": "build"}, {"op": "exit"}.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import haima

COLLECTION = "shared"


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def apply(col: haima.Collection, command: dict[str, Any]) -> None:
    op = command.pop("op")
    if op == "add":
        col.add(**command)
    elif op == "update":
        col.update(**command)
    elif op == "upsert":
        col.upsert(**command)
    elif op == "delete":
        col.delete(**command)
    elif op == "build":
        col.build_index()
    else:
        raise ValueError(f"unknown op {op!r}")


def main(path: str, index_type: str) -> None:
    settings = haima.Settings(background_indexing=False)
    with haima.PersistentClient(path, settings=settings) as client:
        col = client.create_collection(
            COLLECTION, configuration={"index": {"type": index_type}}, embedding_function=None
        )
        emit("ready")
        for line in sys.stdin:
            command = json.loads(line)
            if command["op"] == "exit":
                break
            try:
                apply(col, command)
            except Exception as exc:  # report it to the parent, which fails the test
                emit(f"error {exc!r}")
            else:
                emit("ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
