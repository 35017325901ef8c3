"""The embedded engine, one module per job (see docs/architecture.md §11):

backend.py         LocalBackend, the front every client calls
writes.py          add, upsert, update, delete: one transaction each
indexes.py         the index cache: FAISS indexes in step with SQLite, snapshots
search.py          vector, keyword and hybrid search; the planner's cached plans
results.py         hits shaped as Chroma's query results
background.py      the indexer thread and the filtered-view builder
"""

from haima.backends.local.backend import STORE_FILE, LocalBackend

__all__ = ["STORE_FILE", "LocalBackend"]
