"""Shared fixtures. `client` runs a test against every kind of client (the contract)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import haima
from tests.helpers.server import ServerProcess, fresh_tenant
from tests.milvus_exclusions import MILVUS_EXCLUSIONS

ClientFactory = Callable[[], haima.Client]


@pytest.fixture(params=["memory", "persistent", "http", "milvus"])
def client_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "milvus":
        reason = MILVUS_EXCLUSIONS.get(request.function.__name__)
        if reason is not None:
            pytest.skip(f"not on Milvus: {reason}")
    return str(request.param)


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One `haima run` for the HTTP variant of the contract suite; each test works in a
    tenant of its own, so tests stay independent without a server each."""
    root = tmp_path_factory.mktemp("shared-server")
    server = ServerProcess(root / "store", "--no-preload", "--no-access-log").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def shared_milvus(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One milvus-lite store for the Milvus variant of the contract suite; each test works
    in a tenant of its own (as on the shared server)."""
    return str(tmp_path_factory.mktemp("shared-milvus") / "store.db")


def fresh_milvus_tenant(uri: str) -> str:
    tenant = f"t-{uuid.uuid4().hex}"
    with haima.MilvusClient(uri) as admin:
        admin.create_tenant(tenant)
        admin.create_database("default_database", tenant=tenant)
    return tenant


@pytest.fixture
def make_client(
    client_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[ClientFactory]:
    """Opens clients of one kind; persistent ones share `tmp_path`, so a second call
    reopens the same store, and HTTP ones share a fresh tenant on the shared server.
    Everything opened is closed at the end."""
    opened: list[haima.Client] = []
    memory_client: list[haima.Client] = []
    if client_kind == "http":
        server: ServerProcess = request.getfixturevalue("shared_server")
        tenant = fresh_tenant(server.url)
    if client_kind == "milvus":
        milvus_uri: str = request.getfixturevalue("shared_milvus")
        tenant = fresh_milvus_tenant(milvus_uri)

    def factory() -> haima.Client:
        if client_kind == "milvus":
            m: haima.Client = haima.MilvusClient(milvus_uri, tenant=tenant)
            opened.append(m)
            return m
        if client_kind == "http":
            c: haima.Client = haima.HttpClient.from_url(
                server.url, tenant=tenant, database="default_database"
            )
            opened.append(c)
            return c
        if client_kind == "memory":
            if not memory_client:
                memory_client.append(haima.Client())
                opened.append(memory_client[0])
            return memory_client[0]
        c = haima.PersistentClient(tmp_path / "store")
        opened.append(c)
        return c

    yield factory
    for c in opened:
        c.close()


@pytest.fixture
def client(make_client: ClientFactory) -> haima.Client:
    return make_client()


def random_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
