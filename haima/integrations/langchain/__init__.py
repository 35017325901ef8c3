"""LangChain integration (`pip install haima[langchain]`).

    from haima.integrations.langchain import HaimaVectorStore

    store = HaimaVectorStore.from_texts(texts, embedding, metadatas=metadatas, path="./db")
    store.similarity_search("question", k=4, filter={"source": "faq.md"})
    retriever = store.as_retriever(search_type="mmr", search_kwargs={"k": 4})

- `HaimaVectorStore`: a LangChain `VectorStore` over one collection of any Haima client
  (in memory, on disk, or over HTTP); it uses only the Client/Collection API.
- `HaimaEmbeddings`: a Haima embedding function (by default the offline multilingual
  model) as LangChain `Embeddings`.
- `from_langchain(embeddings)`: any LangChain `Embeddings` as a Haima embedding function.
  (`create_collection(embedding_function=<Embeddings>)` also works directly.)

Haima is synchronous, so the async methods are LangChain's defaults, which run the sync
ones in a thread pool. Scores, metadata conversion and filters: docs/langchain.md.
"""

from haima.integrations.langchain.embeddings import (
    HaimaEmbeddings,
    LangChainEmbeddingFunction,
    from_langchain,
)
from haima.integrations.langchain.metadata import (
    JSON_KEYS_FIELD,
    from_haima_metadata,
    to_haima_metadata,
)
from haima.integrations.langchain.vectorstore import HaimaVectorStore, relevance_score_fn

__all__ = [
    "JSON_KEYS_FIELD",
    "HaimaEmbeddings",
    "HaimaVectorStore",
    "LangChainEmbeddingFunction",
    "from_haima_metadata",
    "from_langchain",
    "relevance_score_fn",
    "to_haima_metadata",
]
