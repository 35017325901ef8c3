"""The web console's timings, from the browser's own performance entries, and the size of
its assets.

Starts `haima run` on a store of 5,000 records (384 dims, the default sample of the map)
plus a few small collections, opens the console in Debian's headless Chromium several
times, and prints the median of:

- first paint and first contentful paint of the overview, and the overview's
  table on screen (`haima:overview-rendered`, marked by the page once the server's
  statistics and every collection are drawn), both from navigation start;
- the map of 5,000 points: the canvas drawing alone (`haima:map-draw`) and from the
  request to the frame on screen (`haima:map-load`, which includes the server sampling
  and projecting the vectors).

Usage: .venv/bin/python benchmarks/console.py [--points 5000] [--dim 384] [--runs 5]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import haima  # noqa: E402
from tests.helpers.browser import CHROMIUM, launch  # noqa: E402
from tests.helpers.server import ServerProcess  # noqa: E402

CONSOLE = ROOT / "haima" / "server" / "console"


def asset_sizes() -> tuple[int, int, int]:
    """Files, bytes, and bytes gzipped (what a server with compression would send)."""
    files = [p for p in CONSOLE.iterdir() if p.is_file()]
    raw = sum(p.stat().st_size for p in files)
    packed = sum(len(gzip.compress(p.read_bytes(), 9)) for p in files)
    return len(files), raw, packed


def seed(url: str, points: int, dim: int) -> None:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((12, dim)).astype(np.float32) * 3
    labels = rng.integers(0, 12, points)
    vectors = centres[labels] + rng.standard_normal((points, dim)).astype(np.float32)
    with haima.HttpClient.from_url(url) as client:
        col = client.create_collection("map", embedding_function=None)
        for start in range(0, points, 2_000):
            stop = min(points, start + 2_000)
            col.add(
                ids=[f"r{i}" for i in range(start, stop)],
                embeddings=vectors[start:stop],
                metadatas=[{"topic": f"t{labels[i]}"} for i in range(start, stop)],
                documents=[f"record {i}" for i in range(start, stop)],
            )
        for name in ("notes", "faq", "tickets"):
            client.create_collection(name, embedding_function=None).add(
                ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]]
            )


def measure(url: str, runs: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    found: dict[str, list[float]] = {
        "first-paint": [],
        "first-contentful-paint": [],
        "haima:overview-rendered": [],
        "haima:map-draw": [],
        "haima:map-load": [],
    }
    with sync_playwright() as playwright:
        browser = launch(playwright)
        for _ in range(runs):
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.goto(url + "/")
            page.wait_for_selector("table.collections")
            page.wait_for_function("performance.getEntriesByName('first-contentful-paint').length")
            for name in ("first-paint", "first-contentful-paint", "haima:overview-rendered"):
                found[name].append(
                    page.evaluate(f"performance.getEntriesByName('{name}')[0].startTime")
                )
            page.goto(url + "/#/c/default_tenant/default_database/map/map")
            page.wait_for_selector("#map-canvas[data-state=ready]", timeout=60_000)
            for name in ("haima:map-draw", "haima:map-load"):
                found[name].append(
                    page.evaluate(f"performance.getEntriesByName('{name}')[0].duration")
                )
            context.close()
        browser.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=5_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    files, raw, packed = asset_sizes()
    print(f"console assets: {files} files, {raw / 1024:.1f} KiB ({packed / 1024:.1f} KiB gzipped)")
    if not CHROMIUM.exists():
        sys.exit(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as folder:
        server = ServerProcess(Path(folder) / "store", "--no-preload", "--no-access-log")
        with server:
            seed(server.url, args.points, args.dim)
            found = measure(server.url, args.runs)
    print(
        f"median of {args.runs} runs, Chromium {CHROMIUM}, {args.points:,} points x {args.dim} dims:"
    )
    for name, values in found.items():
        shown = ", ".join(f"{v:.0f}" for v in values)
        print(f"  {name:26} {statistics.median(values):7.1f} ms   ({shown})")


if __name__ == "__main__":
    main()
