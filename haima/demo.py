"""`make run`: a short tour of the embedded database on ./haima_data."""

from __future__ import annotations

import sys
from pathlib import Path

import haima
from haima.client import default_embedding_function

DOCUMENTS = [
    (
        "faiss",
        "FAISS finds nearest neighbours among millions of vectors in milliseconds.",
        "en",
        2017,
    ),
    (
        "sqlite",
        "SQLite keeps every record in one file, in transactions that survive a crash.",
        "en",
        2000,
    ),
    (
        "hnsw",
        "HNSW is a graph index: each query walks from coarse layers to fine ones.",
        "en",
        2016,
    ),
    ("rag", "检索增强生成先检索相关文档，再让大模型根据这些文档回答问题。", "zh", 2020),
    ("haima", "海马体把短期记忆变成长期记忆，向量数据库为大模型做同样的事。", "zh", 2024),
    (
        "filters",
        "Metadata filters narrow a search to the records that match, before ranking.",
        "en",
        2024,
    ),
]


def main(path: str = "./haima_data") -> int:
    fn = default_embedding_function()
    if fn is None:
        print("No embedding model is installed; see the README.", file=sys.stderr)
        return 1
    with haima.PersistentClient(Path(path)) as client:
        docs = client.get_or_create_collection("demo", embedding_function=fn)
        docs.upsert(
            ids=[d[0] for d in DOCUMENTS],
            documents=[d[1] for d in DOCUMENTS],
            metadatas=[{"lang": d[2], "year": d[3]} for d in DOCUMENTS],
        )
        print(f"Collection {docs.name!r} in {path}: {docs.count()} records\n")
        for question, where in [
            ("How does a vector database help a language model remember?", None),
            ("大模型如何利用外部知识回答问题？", {"lang": "zh"}),
            ("fast similarity search", {"year": {"$gte": 2010}}),
        ]:
            found = docs.query(query_texts=[question], n_results=2, where=where)
            print(f"Q: {question}" + (f"   where={where}" if where else ""))
            distances = found["distances"] or [[]]
            documents = found["documents"] or [[]]
            for rid, dist, doc in zip(found["ids"][0], distances[0], documents[0], strict=True):
                print(f"   {dist:.3f}  [{rid}] {doc}")
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
