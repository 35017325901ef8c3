"""The Milvus backend (`haima[milvus]`): Haima's API over a Milvus deployment or milvus-lite.

backend.py      MilvusBackend, the Backend protocol over pymilvus
catalog.py      tenants, databases and collections in one Milvus collection
schema.py       record fields, index types, metrics and search parameters
expressions.py  the filter language compiled to Milvus expressions
"""

from haima.backends.milvus.backend import MilvusBackend

__all__ = ["MilvusBackend"]
