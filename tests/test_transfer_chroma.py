"""Moving data out of (and into) a real Chroma server: `chroma run` from the `chromadb`
package, populated and read with the official client, as a process on loopback."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import haima
from haima import transfer

try:
    from helpers.server import free_port
except ImportError:  # tests/ imported as a package
    from tests.helpers.server import free_port  # type: ignore[no-redef]

chromadb = pytest.importorskip("chromadb")
CHROMA = Path(sys.executable).parent / "chroma"


@pytest.fixture
def chroma_url(tmp_path: Path) -> Iterator[str]:
    exe = str(CHROMA) if CHROMA.exists() else shutil.which("chroma")
    if exe is None:
        pytest.skip("the `chroma` command (chromadb package) is not installed")
    port = free_port()
    log = open(tmp_path / "chroma.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [
            exe,
            "run",
            "--path",
            str(tmp_path / "chroma"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError((tmp_path / "chroma.log").read_text())
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("chroma run did not answer")
            time.sleep(0.05)  # polling for readiness, bounded by the deadline
        yield url
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def chroma_client(url: str) -> Any:
    port = int(url.rsplit(":", 1)[1])
    return chromadb.HttpClient(host="127.0.0.1", port=port)


def test_migrate_from_chroma_into_haima_and_back(chroma_url: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 700
    embeddings = rng.standard_normal((n, 12)).astype(np.float32)
    ids = [f"c{i:04d}" for i in range(n)]
    documents = [f"chroma doc {i} 海马" for i in range(n)]
    metadatas = [{"i": i, "even": i % 2 == 0, "ratio": i / 3, "s": "x"} for i in range(n)]
    client = chroma_client(chroma_url)
    col = client.create_collection(
        "from-chroma", metadata={"team": "search"}, configuration={"hnsw": {"space": "cosine"}}
    )
    for lo in range(0, n, 300):
        col.add(ids=ids[lo : lo + 300], embeddings=embeddings[lo : lo + 300],
                documents=documents[lo : lo + 300], metadatas=metadatas[lo : lo + 300])  # fmt: skip

    # What Chroma holds, as its own client reads it (it keeps some floats of metadata
    # less exactly than they were given: 90.33333333333333 comes back ...31).
    held = col.get(include=["metadatas"])
    held_metadata = dict(zip(held["ids"], held["metadatas"], strict=True))
    assert held_metadata["c0003"] == metadatas[3]

    report = transfer.migrate(chroma_url, str(tmp_path / "haima"), batch_size=250)
    assert [(c.name, c.count) for c in report.collections] == [("from-chroma", n)]
    with haima.PersistentClient(tmp_path / "haima", create=False) as local:
        copy = local.get_collection("from-chroma", embedding_function=None)
        assert copy.configuration["metric"] == "cosine"
        assert copy.metadata == {"team": "search"}
        got = copy.get(include=["embeddings", "documents", "metadatas"])
        order = np.argsort(got["ids"])
        assert [got["ids"][i] for i in order] == ids
        assert [got["documents"][i] for i in order] == documents
        assert [got["metadatas"][i] for i in order] == [held_metadata[i] for i in ids]
        assert np.abs(np.asarray(got["embeddings"])[order] - embeddings).max() <= 1e-6

    # And back into Chroma under another name: the official client sees the same records.
    with haima.PersistentClient(tmp_path / "haima") as local:
        local.get_collection("from-chroma", embedding_function=None).modify(name="round-trip")
    back = transfer.migrate(str(tmp_path / "haima"), chroma_url, collections=["round-trip"])
    assert back.collections[0].checksum == report.collections[0].checksum
    again = client.get_collection("round-trip")
    assert again.count() == n
    sample = again.get(ids=["c0005"], include=["documents", "metadatas"])
    assert sample["documents"] == [documents[5]] and sample["metadatas"] == [metadatas[5]]
