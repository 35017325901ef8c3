"""Shared fixtures. `client` runs a test against every kind of client (the contract)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import haima

ClientFactory = Callable[[], haima.Client]


@pytest.fixture(params=["memory", "persistent"])
def client_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_client(client_kind: str, tmp_path: Path) -> Iterator[ClientFactory]:
    """Opens clients of one kind; persistent ones share `tmp_path`, so a second call
    reopens the same store. Everything opened is closed at the end."""
    opened: list[haima.Client] = []
    memory_client: list[haima.Client] = []

    def factory() -> haima.Client:
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
