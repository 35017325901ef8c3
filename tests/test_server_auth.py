"""API keys: every route but the heartbeat needs one, from either client's header."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")

import haima
from haima.server import ServerConfig, create_app
from tests.helpers.server import HAIMA, ServerProcess

KEY = "s3cret-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("auth")
    with ServerProcess(root / "store", "--no-preload", env={"HAIMA_API_KEY": KEY}) as process:
        yield process


def _routes(tmp_path: Path) -> list[tuple[str, str]]:
    """Every (method, path) the app documents, path parameters filled in."""
    app = create_app(ServerConfig(path=tmp_path / "unused"))
    found = [("GET", "/openapi.json"), ("GET", "/docs")]
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            found.append((method.upper(), re.sub(r"\{[^}]+\}", "x", path)))
    return found


def test_every_route_but_heartbeat_needs_the_key(server: ServerProcess, tmp_path: Path) -> None:
    routes = _routes(tmp_path)
    assert len(routes) > 25
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-Chroma-Token": "wrong"}):
            response = httpx.request(method, server.url + path, headers=headers)
            if path == "/api/v2/heartbeat":
                assert response.status_code == 200, (method, path)
            else:
                assert response.status_code == 401, (method, path, headers)
                assert response.json()["error"] == "AuthorizationError"


def test_right_key_works_from_both_headers(server: ServerProcess) -> None:
    path = f"{server.url}/api/v2/tenants/default_tenant/databases/default_database/collections"
    for headers in ({"Authorization": f"Bearer {KEY}"}, {"X-Chroma-Token": KEY}):
        assert httpx.get(path, headers=headers).status_code == 200


def test_haima_client_with_and_without_key(server: ServerProcess) -> None:
    with haima.HttpClient.from_url(server.url, api_key=KEY) as client:
        client.get_or_create_collection("keyed", embedding_function=None).add(
            ids=["a"], embeddings=[[1.0, 0.0]]
        )
    with haima.HttpClient.from_url(server.url) as anonymous:
        assert anonymous.heartbeat() > 0
        with pytest.raises(haima.AuthorizationError, match="missing API key"):
            anonymous.list_collections()


def test_chroma_client_with_token(server: ServerProcess) -> None:
    chromadb = pytest.importorskip("chromadb")
    from chromadb.config import Settings

    settings = Settings(
        anonymized_telemetry=False,
        chroma_client_auth_provider="chromadb.auth.token_authn.TokenAuthClientProvider",
        chroma_client_auth_credentials=KEY,
    )
    client = chromadb.HttpClient(host="127.0.0.1", port=server.port, settings=settings)
    col = client.get_or_create_collection("chroma-keyed", embedding_function=None)
    col.add(ids=["x"], embeddings=[[0.5, 0.5]])
    assert col.count() == 1

    wrong = Settings(
        anonymized_telemetry=False,
        chroma_client_auth_provider="chromadb.auth.token_authn.TokenAuthClientProvider",
        chroma_client_auth_credentials="nope",
    )
    with pytest.raises(Exception, match="API key"):
        chromadb.HttpClient(host="127.0.0.1", port=server.port, settings=wrong).list_collections()


def test_refuses_public_bind_without_a_key(tmp_path: Path) -> None:
    result = subprocess.run(
        [*HAIMA, "run", "--path", str(tmp_path / "s"), "--host", "0.0.0.0", "--no-preload"],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in __import__("os").environ.items() if k != "HAIMA_API_KEY"},
    )
    assert result.returncode == 2
    assert "without an API key" in result.stderr
    assert not (tmp_path / "s").exists()
