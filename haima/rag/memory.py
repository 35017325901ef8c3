"""Chat memory: store the turns of conversations in a collection and recall the earlier
turns that matter to a new message.

    memory = ChatMemory(client.get_or_create_collection("chat"), session="user-42")
    memory.add("user", "我下周去杭州出差")
    memory.add("assistant", "好的，需要我帮你订酒店吗？")
    memory.relevant("杭州的天气怎么样？", k=3)   # -> [Turn(role="user", text="我下周去杭州出差", ...)]
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from haima.collection import Collection
from haima.errors import InvalidArgumentError
from haima.rag.retrieve import query, sources_of
from haima.types import Where


@dataclass
class Turn:
    id: str
    role: str
    text: str
    session: str
    time: float
    #: From `relevant`: how far the turn is from the message (None elsewhere).
    distance: float | None = None
    metadata: dict[str, Any] | None = None


def _turn(record_id: str, text: str | None, metadata: Mapping[str, Any] | None) -> Turn:
    md = dict(metadata or {})
    return Turn(
        id=record_id,
        role=str(md.get("role", "")),
        text=text or "",
        session=str(md.get("session", "")),
        time=float(md.get("time", 0.0)),
        metadata=md,
    )


class ChatMemory:
    """Turns are records: the text as document, metadata `role`, `session` and `time`
    (seconds since the epoch). Every method works on one session: the `session` given to
    it, else the memory's own."""

    def __init__(self, collection: Collection, session: str = "default") -> None:
        self.collection = collection
        self.session = _session(session)

    def add(
        self,
        role: str,
        text: str,
        *,
        session: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> str:
        """Store one turn ("user", "assistant", ...); returns its id."""
        if not isinstance(role, str) or not role.strip():
            raise InvalidArgumentError(f"role: expected a non-empty string, got {role!r}")
        if not isinstance(text, str) or not text.strip():
            raise InvalidArgumentError("text: expected a non-empty string")
        record_id = uuid.uuid4().hex
        md = {
            **(metadata or {}),
            "role": role,
            "session": self._session(session),
            "time": time.time(),
        }
        self.collection.add(ids=[record_id], documents=[text], metadatas=[md])
        return record_id

    def relevant(
        self,
        message: str,
        k: int = 5,
        *,
        session: str | None = None,
        all_sessions: bool = False,
        where: Where | None = None,
        mode: str = "vector",
    ) -> list[Turn]:
        """The `k` earlier turns closest to `message`, closest first (sort by `.time`
        for the order they were said in)."""
        clauses: list[Where] = [] if all_sessions else [{"session": self._session(session)}]
        if all_sessions:
            clauses.append({"session": {"$exists": True}})
        if where:
            clauses.append(where)
        combined = clauses[0] if len(clauses) == 1 else {"$and": clauses}
        result = query(self.collection, [message], k, where=combined, mode=mode)
        turns = []
        for source in sources_of(result):
            turn = _turn(source.id, source.document, source.metadata)
            turn.distance = source.distance
            turns.append(turn)
        return turns

    def recent(self, n: int = 10, *, session: str | None = None) -> list[Turn]:
        """The last `n` turns of the session, oldest first."""
        result = self.collection.get(where={"session": self._session(session)})
        metadatas = result["metadatas"] or [None] * len(result["ids"])
        documents = result["documents"] or [None] * len(result["ids"])
        turns = [
            _turn(i, d, m) for i, d, m in zip(result["ids"], documents, metadatas, strict=True)
        ]
        turns.sort(key=lambda t: t.time)
        return turns[-n:] if n > 0 else []

    def clear(self, *, session: str | None = None) -> None:
        """Forget every turn of the session."""
        self.collection.delete(where={"session": self._session(session)})

    def _session(self, session: str | None) -> str:
        return self.session if session is None else _session(session)


def _session(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"session: expected a non-empty string, got {value!r}")
    return value
