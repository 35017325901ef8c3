"""The RAG toolkit: load files, split them, ingest a folder incrementally, retrieve, and
answer with any OpenAI-compatible chat model, citing sources.

    import haima
    from haima.rag import ChatModel, ask, ingest

    docs = haima.PersistentClient("./haima_data").get_or_create_collection("docs")
    print(ingest(docs, "./notes").summary())          # again later: only changes are redone
    answer = ask("How do I install it?", docs, llm=ChatModel(base_url=..., model=...))
    print(answer.text, [s.source for s in answer.sources])

PDF, Word and encoding detection need the `rag` extra: pip install 'haima[rag]'.
See docs/rag.md.
"""

from haima.rag._types import Document, LoadError, LoadFailure
from haima.rag.ask import SYSTEM_PROMPT, Answer, ask, build_messages, cited
from haima.rag.ingest import IngestReport, ingest
from haima.rag.llm import (
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_MODEL,
    ChatModel,
    LLMError,
    LLMNotConfiguredError,
)
from haima.rag.loaders import (
    LoadResult,
    find_files,
    load,
    load_bytes,
    load_file,
    register_loader,
    supported_extensions,
)
from haima.rag.memory import ChatMemory, Turn
from haima.rag.retrieve import MODES, Source, retrieve
from haima.rag.splitters import MarkdownSplitter, RecursiveSplitter, Splitter, Tokenizer

__all__ = [
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "ENV_MODEL",
    "MODES",
    "SYSTEM_PROMPT",
    "Answer",
    "ChatMemory",
    "ChatModel",
    "Document",
    "IngestReport",
    "LLMError",
    "LLMNotConfiguredError",
    "LoadError",
    "LoadFailure",
    "LoadResult",
    "MarkdownSplitter",
    "RecursiveSplitter",
    "Source",
    "Splitter",
    "Tokenizer",
    "Turn",
    "ask",
    "build_messages",
    "cited",
    "find_files",
    "ingest",
    "load",
    "load_bytes",
    "load_file",
    "register_loader",
    "retrieve",
    "supported_extensions",
]
