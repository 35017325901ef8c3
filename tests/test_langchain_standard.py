"""LangChain's own standard test suites, run against the Haima integration.

`VectorStoreIntegrationTests` runs once per kind of client: each kind is one subclass of
`HaimaStandardTests` that overrides the `haima_client` fixture (a fresh, empty client per
test). The HTTP variant (`haima.HttpClient` over a test server) is added by the server
work as one more such subclass.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_tests.integration_tests import (
    EmbeddingsIntegrationTests,
    VectorStoreIntegrationTests,
)
from langchain_tests.unit_tests import EmbeddingsUnitTests

import haima
from haima.integrations.langchain import HaimaEmbeddings, HaimaVectorStore
from tests.helpers.server import fresh_tenant


class HaimaStandardTests(VectorStoreIntegrationTests):
    """The standard vector-store suite over the client that `haima_client` yields."""

    @pytest.fixture
    def haima_client(self, tmp_path: Path) -> Iterator[haima.Client]:
        raise NotImplementedError("a subclass yields a fresh client")

    @pytest.fixture
    def vectorstore(self, haima_client: haima.Client) -> Iterator[HaimaVectorStore]:
        store = HaimaVectorStore("standard", embedding=self.get_embeddings(), client=haima_client)
        yield store
        store.delete_collection()


class TestInMemoryClient(HaimaStandardTests):
    @pytest.fixture
    def haima_client(self, tmp_path: Path) -> Iterator[haima.Client]:
        with haima.Client() as client:
            yield client


class TestPersistentClient(HaimaStandardTests):
    @pytest.fixture
    def haima_client(self, tmp_path: Path) -> Iterator[haima.Client]:
        with haima.PersistentClient(tmp_path / "store") as client:
            yield client


class TestHttpClient(HaimaStandardTests):
    @pytest.fixture
    def haima_client(self, request: pytest.FixtureRequest) -> Iterator[haima.Client]:
        # A tenant of its own on the session's shared `haima run` (tests/conftest.py).
        server = request.getfixturevalue("shared_server")
        tenant = fresh_tenant(server.url)
        with haima.HttpClient.from_url(
            server.url, tenant=tenant, database="default_database"
        ) as client:
            yield client


class TestHaimaEmbeddingsUnit(EmbeddingsUnitTests):
    """`HaimaEmbeddings()` with Haima's default offline model."""

    @property
    def embeddings_class(self) -> type[HaimaEmbeddings]:
        return HaimaEmbeddings


class TestHaimaEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[HaimaEmbeddings]:
        return HaimaEmbeddings
