"""The Milvus backend (`haima[milvus]`): Haima's API over a Milvus deployment or milvus-lite.

backend.py      MilvusBackend, the Backend protocol over pymilvus
catalog.py      tenants, databases and collections in one Milvus collection
schema.py       record fields, index types, metrics and search parameters
expressions.py  the filter language compiled to Milvus expressions
rows.py         records as Milvus rows and back; exact ranking of small sets
uri.py          milvus:// and milvus-lite:// targets → pymilvus URIs

Only `uri` is imported here: every client and `haima run` ask whether a target is a Milvus
one, and the backend's modules are imported when one is opened (`backend.MilvusBackend`).
"""

from haima.backends.milvus.uri import is_milvus_target, milvus_uri

__all__ = ["is_milvus_target", "milvus_uri"]
