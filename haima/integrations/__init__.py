"""Adapters that let other frameworks use Haima. Each module imports its framework only
when it is itself imported, so the core never needs them.

- `haima.integrations.langchain` (`pip install haima[langchain]`): `HaimaVectorStore`, a
  LangChain `VectorStore`; `HaimaEmbeddings`, a Haima embedding function as LangChain
  `Embeddings`; and `from_langchain`, the reverse. See docs/langchain.md.
"""
