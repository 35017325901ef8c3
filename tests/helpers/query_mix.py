"""A mixed query workload over one collection, for the memory tests: what a chat-memory
or RAG application sends all day. Plain vector queries; filters that repeat (a session,
a user and a year); filters that match nothing and are never seen twice (a new session's
id, the chat-memory pattern, and out-of-range numbers); keyword and hybrid queries; and
`get` with filters. The same code drives an embedded collection and one over HTTP.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import haima
from tests.helpers.rss import cpu_seconds, rss_mb

DIM = 384
SESSIONS = 200
USERS = 50
YEARS = 25
#: A small vocabulary, so that keyword queries find documents.
WORDS = [f"w{n}" for n in range(400)] + ["记忆", "海马", "向量", "检索", "会话"]
KINDS = (
    "vector",
    "fresh_session",
    "session",
    "user_year",
    "empty_range",
    "keyword",
    "hybrid",
    "get_fresh_session",
    "get_user",
)


def fill(col: haima.Collection, count: int, seed: int, batch: int = 2_000) -> None:
    """`count` random records with documents and metadata."""
    rng = np.random.default_rng(seed)
    for start in range(0, count, batch):
        rows = range(start, min(start + batch, count))
        col.add(
            ids=[f"r{i}" for i in rows],
            embeddings=rng.standard_normal((len(rows), DIM)).astype(np.float32),
            documents=[" ".join(rng.choice(WORDS, 8)) for _ in rows],
            metadatas=[
                {
                    "session": f"s{i % SESSIONS}",
                    "user": i % USERS,
                    "year": 2000 + (i // 7) % YEARS,
                }
                for i in rows
            ],
        )


def warm_up(col: haima.Collection, page: int = 2_000) -> None:
    """Read every record once, in pages, run every repeating filter and search every word
    once: SQLite's page cache and the filter-plan cache then hold what the mix uses, so
    they fill during the warm-up and not after it."""
    for offset in range(0, col.count(), page):
        col.get(limit=page, offset=offset, include=["documents", "metadatas", "embeddings"])
    vector = np.ones((1, DIM), np.float32)
    for session in range(SESSIONS):
        col.query(query_embeddings=vector, n_results=10, where={"session": f"s{session}"})
    for user in range(USERS):
        col.query(query_embeddings=vector, n_results=10, where=_user_year(user))
    for word in WORDS:
        col.query(query_texts=[word], n_results=10, mode="keyword")


def _user_year(user: int) -> dict[str, Any]:
    return {"$and": [{"user": user}, {"year": {"$gte": 2010}}]}


def one_query(col: haima.Collection, n: int, rng: np.random.Generator) -> None:
    """The n-th query of the mix (its kind is KINDS[n % len(KINDS)]), with a light check
    of its answer."""
    kind = KINDS[n % len(KINDS)]
    vector = rng.standard_normal((1, DIM)).astype(np.float32)
    text = " ".join(rng.choice(WORDS, 3))
    res: Any
    if kind == "vector":
        res = col.query(query_embeddings=vector, n_results=10)
        assert len(res["ids"][0]) == 10
    elif kind == "fresh_session":
        res = col.query(query_embeddings=vector, n_results=10, where={"session": f"new-{n}"})
        assert res["ids"] == [[]]
    elif kind == "session":
        session = f"s{rng.integers(SESSIONS)}"
        res = col.query(query_embeddings=vector, n_results=10, where={"session": session})
        assert res["ids"][0] and all(md["session"] == session for md in res["metadatas"][0])
    elif kind == "user_year":
        res = col.query(
            query_embeddings=vector, n_results=10, where=_user_year(int(rng.integers(USERS)))
        )
        assert res["ids"][0]
    elif kind == "empty_range":
        res = col.query(query_embeddings=vector, n_results=10, where={"year": {"$gt": 3000 + n}})
        assert res["ids"] == [[]]
    elif kind == "keyword":
        res = col.query(query_texts=[text], n_results=10, mode="keyword")
        assert res["ids"][0]
    elif kind == "hybrid":
        res = col.query(query_embeddings=vector, query_texts=[text], n_results=10, mode="hybrid")
        assert len(res["ids"][0]) == 10
    elif kind == "get_fresh_session":
        assert col.get(where={"session": f"new-{n}"})["ids"] == []
    else:
        got = col.get(where={"user": int(rng.integers(USERS))}, limit=10)
        assert len(got["ids"]) == 10


@dataclass(frozen=True)
class Checkpoint:
    queries: int  # queries run so far
    rss_mb: float  # of the process that answers
    qps: float  # throughput of the segment that ended here (wall clock)
    cpu_ms: float  # CPU time per query of that segment, of the process that answers

    def __str__(self) -> str:
        return (
            f"{self.queries:>8} queries  RSS {self.rss_mb:7.1f} MiB  {self.qps:7.0f} q/s  "
            f"{self.cpu_ms:6.3f} CPU ms/query"
        )


def run_mix(
    col: haima.Collection,
    total: int,
    segments: int,
    pid: int | None,
    seed: int,
    report: Callable[[Checkpoint], None] = print,
) -> list[Checkpoint]:
    """Run `total` queries of the mix in `segments` equal parts. After each, collect this
    process's garbage (what is left is held, not merely not yet freed) and read the RSS
    and CPU time of the process that answers (`pid`; None: this one). CPU time per query
    shows a growing cost even when other jobs share the machine."""
    rng = np.random.default_rng(seed)
    per = total // segments
    checkpoints = []
    for segment in range(segments):
        began, cpu = time.perf_counter(), cpu_seconds(pid)
        for n in range(segment * per, (segment + 1) * per):
            one_query(col, n, rng)
        qps = per / (time.perf_counter() - began)
        cpu_ms = (cpu_seconds(pid) - cpu) * 1000 / per
        gc.collect()
        checkpoints.append(Checkpoint((segment + 1) * per, rss_mb(pid), qps, cpu_ms))
        report(checkpoints[-1])
    return checkpoints
