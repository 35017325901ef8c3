"""`ask`: retrieve chunks, have a chat model answer from them, and return the answer with
the sources it cited.

    from haima.rag import ChatModel, ask
    answer = ask("海马的默认度量是什么？", docs, llm=ChatModel(base_url=..., model=...), stream=True)
    answer.text        # "... 默认使用余弦距离 [1]。"
    answer.sources     # [Source(number=1, id="guide.md#3", document=..., metadata=...)]
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Any

from haima.collection import Collection
from haima.rag.llm import ChatModel, Message, TokenCallback
from haima.rag.retrieve import Source, retrieve
from haima.types import Where, WhereDocument

SYSTEM_PROMPT = (
    "You answer questions using the numbered sources you are given. Base the answer only "
    "on those sources and cite the ones you use with their numbers in square brackets, "
    "like [1] or [2][3], right after the statement they support. If the sources do not "
    "contain the answer, say so. Answer in the language of the question."
)

#: The answer when retrieval finds nothing; the model is not called.
NO_SOURCES = "Nothing in the collection matches the question, so there is nothing to answer from."

# [1], [1, 2], [1][2], and the full-width 【1】 that Chinese models often write.
_CITATION = re.compile(r"[\[【]\s*(\d+(?:\s*[,，、]\s*\d+)*)\s*[\]】]")


@dataclass
class Answer:
    question: str
    text: str
    #: The retrieved chunks the answer cites, in order of first citation.
    sources: list[Source] = field(default_factory=list)
    #: Every chunk given to the model, numbered as in the prompt.
    retrieved: list[Source] = field(default_factory=list)
    model: str | None = None

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "model": self.model,
            "sources": [s.to_dict() for s in self.sources],
            "retrieved": [s.to_dict() for s in self.retrieved],
        }


def build_messages(
    question: str, sources: list[Source], system_prompt: str = SYSTEM_PROMPT
) -> list[Message]:
    """The chat messages: instructions, then the numbered sources and the question."""
    blocks = [f"[{s.number}] {s.label()}\n{s.document.strip()}" for s in sources]
    user = "Sources:\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question.strip()}"
    return [{"role": "system", "content": system_prompt}, {"role": "user", "content": user}]


def cited(text: str, sources: list[Source]) -> list[Source]:
    """The sources `text` cites with [n] markers, in order of first citation; numbers
    that match no source are ignored."""
    by_number = {s.number: s for s in sources}
    out: dict[int, Source] = {}
    for match in _CITATION.finditer(text):
        for number in re.split(r"\s*[,，、]\s*", match.group(1)):
            n = int(number)
            if n in by_number and n not in out:
                out[n] = by_number[n]
    return list(out.values())


def _print_token(token: str) -> None:
    sys.stdout.write(token)
    sys.stdout.flush()


def ask(
    question: str,
    collection: Collection,
    llm: ChatModel | None = None,
    *,
    k: int = 5,
    where: Where | None = None,
    where_document: WhereDocument | None = None,
    mode: str = "vector",
    stream: bool | TokenCallback | None = None,
    system_prompt: str = SYSTEM_PROMPT,
) -> Answer:
    """Answer `question` from the `k` best chunks of `collection`.

    llm: the chat model; None reads it from HAIMA_LLM_BASE_URL / HAIMA_LLM_MODEL /
        HAIMA_LLM_API_KEY and raises `LLMNotConfiguredError` (before any retrieval) when
        they are not set.
    mode: "vector", or "keyword" / "hybrid" where the collection supports them.
    stream: a callback that receives the answer piece by piece, or True to print it to
        stdout as it arrives; None or False waits for the whole answer.
    """
    model = llm if llm is not None else ChatModel()
    on_token: TokenCallback | None
    if stream is True:
        on_token = _print_token
    elif callable(stream):
        on_token = stream
    else:
        on_token = None
    sources = retrieve(
        collection, question, k, where=where, where_document=where_document, mode=mode
    )
    if not sources:
        if on_token is not None:
            on_token(NO_SOURCES)
        return Answer(question, NO_SOURCES, [], [], model.model)
    text = model.chat(build_messages(question, sources, system_prompt), on_token=on_token)
    return Answer(question, text, cited(text, sources), sources, model.model)


__all__ = ["SYSTEM_PROMPT", "Answer", "ask", "build_messages", "cited"]
