"""Haima (海马): a vector database for LLM applications.

import haima
client = haima.PersistentClient("./haima_data")
docs = client.get_or_create_collection("docs")
docs.add(ids=["a"], embeddings=[[0.1, 0.2]], documents=["..."], metadatas=[{"k": 1}])
docs.query(query_embeddings=[[0.1, 0.2]], n_results=5, where={"k": {"$gte": 1}})
"""

from haima.client import Client, HttpClient, MilvusClient, PersistentClient, connect
from haima.collection import Collection
from haima.errors import (
    AuthorizationError,
    DimensionMismatchError,
    DuplicateIDError,
    EmbeddingFunctionError,
    HaimaError,
    InvalidArgumentError,
    InvalidFilterError,
    MissingDependencyError,
    NotFoundError,
    RequestTimeoutError,
    ResetNotAllowedError,
    ServerUnavailableError,
    UniqueConstraintError,
)
from haima.settings import Settings
from haima.types import GetResult, QueryResult

__version__ = "0.1.0"

__all__ = [
    "AuthorizationError",
    "Client",
    "Collection",
    "DimensionMismatchError",
    "DuplicateIDError",
    "EmbeddingFunctionError",
    "GetResult",
    "HaimaError",
    "HttpClient",
    "InvalidArgumentError",
    "InvalidFilterError",
    "MilvusClient",
    "MissingDependencyError",
    "NotFoundError",
    "PersistentClient",
    "QueryResult",
    "RequestTimeoutError",
    "ResetNotAllowedError",
    "ServerUnavailableError",
    "Settings",
    "UniqueConstraintError",
    "__version__",
    "connect",
]
