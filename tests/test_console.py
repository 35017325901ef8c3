"""The web console in a real headless Chromium (Debian's, driven by Playwright) against a
real `haima run`: overview, records with filters, a record's neighbours, search in every
mode and side by side, the embedding map, the evaluation view, deletes that ask first,
and signing in to a server with a key.

Every page must contact only the server itself and log no console errors (the browser's
own line for an HTTP error a test provokes on purpose, such as a refused filter, is
accounted for). Screenshots of each view go to a temporary folder, or to docs/images/
with HAIMA_CONSOLE_SCREENSHOTS=1 (how the committed ones were made).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.helpers.browser import CHROMIUM, PageLog, launch

if not CHROMIUM.exists():
    pytest.skip(
        f"browser tests of the console: no Chromium at {CHROMIUM} (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

import haima  # noqa: E402
from tests.helpers.console_seed import (  # noqa: E402
    ARTICLES,
    cluster_centres,
    collections_url,
    create_articles,
    create_points,
)
from tests.helpers.server import HAIMA, ServerProcess  # noqa: E402

POINTS = 6_000
MAP_SAMPLE = 5_000  # the map's default sample
KEY = "console-test-key"
ROOT = Path(__file__).resolve().parent.parent
MINI = ROOT / "tests" / "data" / "eval_mini"


@dataclass
class Store:
    server: ServerProcess
    articles: dict[str, Any]
    points: dict[str, Any]
    vectors: np.ndarray

    @property
    def url(self) -> str:
        return self.server.url

    def api(self, collection: dict[str, Any], operation: str, body: dict[str, Any]) -> Any:
        """A reference answer straight from the API (not through the page)."""
        response = httpx.post(
            f"{collections_url(self.url)}/{collection['id']}/{operation}", json=body, timeout=60
        )
        return response


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("HAIMA_CONSOLE_SCREENSHOTS"):
        folder = ROOT / "docs" / "images"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One server with the default model loaded (text search), holding bilingual notes,
    6,000 clustered points and a collection in a second tenant and database."""
    root = tmp_path_factory.mktemp("console")
    with ServerProcess(root / "store", "--no-access-log") as server:
        articles = create_articles(server.url)
        vectors, _ = create_points(server.url, POINTS)
        with haima.HttpClient.from_url(server.url) as admin:
            admin.create_tenant("acme")
            admin.create_database("staging", tenant="acme")
            points = httpx.get(f"{collections_url(server.url)}/points").json()
        with haima.HttpClient.from_url(server.url, tenant="acme", database="staging") as acme:
            acme.create_collection("tickets", embedding_function=None).add(
                ids=["t1", "t2"],
                embeddings=[[1.0, 0.0], [0.0, 1.0]],
                documents=["退款申请", "登录失败"],
            )
        yield Store(server, articles, points, vectors)


OpenPage = Callable[..., Any]


@pytest.fixture
def open_page(browser: Any) -> Iterator[OpenPage]:
    """Opens pages in fresh browser contexts; at the end checks that each contacted only
    its server and logged no console errors but the expected HTTP error answers."""
    opened: list[tuple[Any, PageLog, str, set[int]]] = []

    def open_(origin: str, expected_statuses: set[int] | None = None, **context: Any) -> Any:
        ctx = browser.new_context(viewport={"width": 1280, "height": 800}, **context)
        page = ctx.new_page()
        log = PageLog()
        log.attach(page)
        page.log = log
        opened.append(
            (ctx, log, origin, expected_statuses if expected_statuses is not None else set())
        )
        return page

    yield open_
    for ctx, log, origin, expected in opened:
        ctx.close()
        assert log.requests, "the page made no request"
        assert log.foreign_requests(origin) == [], "requests to other hosts"
        assert log.page_errors == []
        assert log.unexpected_console_errors(expected) == []


def ids_in(page: Any, selector: str) -> list[str]:
    return list(page.locator(selector).evaluate_all("els => els.map(e => e.dataset.id)"))


def shot(page: Any, folder: Path, name: str, full_page: bool = False) -> None:
    page.screenshot(path=str(folder / f"console-{name}.png"), full_page=full_page)


# -- overview --------------------------------------------------------------------------------


def test_overview_lists_every_collection_and_the_server(
    store: Store, open_page: OpenPage, shots: Path
) -> None:
    page = open_page(store.url)
    page.goto(store.url + "/")
    rows = page.locator("table.collections tbody tr")
    expect(rows).to_have_count(3)
    articles = page.locator('tr[data-collection="articles"] td')
    expect(articles.nth(1)).to_have_text(f"{len(ARTICLES)}")
    expect(articles.nth(2)).to_have_text("512")  # the default model's dimension
    expect(articles.nth(6)).to_have_text("on")
    points = page.locator('tr[data-collection="points"] td')
    expect(points.nth(1)).to_have_text(f"{POINTS:,}")
    expect(points.nth(2)).to_have_text("24")
    expect(points.nth(3)).to_have_text("cosine")
    expect(points.nth(6)).to_have_text("off")
    expect(points.nth(4)).to_contain_text("auto")
    expect(page.locator("h2.db-title", has_text="acme / staging")).to_be_visible()
    stats = page.locator("#server-stats")
    expect(stats).to_contain_text(haima.__version__)
    expect(stats).to_contain_text(f"{POINTS + len(ARTICLES) + 2:,}")  # records in all
    assert page.evaluate("performance.getEntriesByName('haima:overview-rendered').length") == 1
    shot(page, shots, "overview")

    # Keyboard: from the top of the page, Tab reaches the first collection and Enter opens it.
    page.locator("body").focus()
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "articles":
            break
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("articles")

    page.click("#theme")  # auto → light
    page.click("#theme")  # light → dark
    page.goto(store.url + "/#/")
    expect(rows).to_have_count(3)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 20, 24)", background
    shot(page, shots, "overview-dark")

    page.set_viewport_size({"width": 390, "height": 844})
    page.click("#theme")  # back to auto
    expect(rows).to_have_count(3)
    # Usable at phone width: the page itself never scrolls sideways (tables do, inside).
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, shots, "phone")


# -- records ---------------------------------------------------------------------------------


def test_records_page_and_filter_with_haima_messages(
    store: Store, open_page: OpenPage, shots: Path
) -> None:
    page = open_page(store.url, expected_statuses={400})
    page.goto(store.url + "/#/c/default_tenant/default_database/articles/records")
    page.select_option("#page-size", "10")
    table_ids = "#records-table tbody tr"
    first = store.api(store.articles, "get", {"limit": 10, "offset": 0}).json()["ids"]
    expect(page.locator("#page-position")).to_have_text(f"Records 1–10 of {len(ARTICLES)}")
    assert ids_in(page, table_ids) == first
    page.click("#next-page")
    expect(page.locator("#page-position")).to_have_text(f"Records 11–20 of {len(ARTICLES)}")
    second = store.api(store.articles, "get", {"limit": 10, "offset": 10}).json()["ids"]
    assert ids_in(page, table_ids) == second
    expect(page.locator("#prev-page")).to_be_enabled()

    where, where_document = {"lang": "zh"}, {"$contains": "北京"}
    page.fill("#where", json.dumps(where))
    page.fill("#where-document", json.dumps(where_document, ensure_ascii=False))
    page.click("#apply-filters")
    expected = store.api(
        store.articles, "get", {"where": where, "where_document": where_document}
    ).json()
    expect(page.locator("#page-position")).to_have_text(
        f"Matching records 1–{len(expected['ids'])}"
    )
    assert ids_in(page, table_ids) == expected["ids"]
    assert sorted(expected["ids"]) == ["zh-beijing", "zh-train", "zh-weather"]
    # Chinese text arrives as stored.
    expect(page.locator('tr[data-id="zh-beijing"] td.doc')).to_have_text(
        dict((a[0], a[1]) for a in ARTICLES)["zh-beijing"]
    )
    shot(page, shots, "records")

    wrong = {"$and": [{"lang": "zh"}, {"year": {"$gte": "2020"}}]}
    refused = store.api(store.articles, "get", {"where": wrong})
    assert refused.status_code == 400
    page.fill("#where", json.dumps(wrong))
    page.click("#apply-filters")
    expect(page.locator("#where-error")).to_have_text(refused.json()["message"])
    assert "$gte" in refused.json()["message"]
    expect(page.locator("#where-document-error")).to_be_empty()
    shot(page, shots, "filter-error")

    page.fill("#where", "{lang: zh}")  # not JSON: said in place, nothing sent
    page.click("#apply-filters")
    expect(page.locator("#where-error")).to_contain_text("where: not valid JSON")


def test_record_detail_shows_norm_and_nearest_neighbours(
    store: Store, open_page: OpenPage, shots: Path
) -> None:
    page = open_page(store.url)
    page.goto(store.url + "/#/c/default_tenant/default_database/articles/records")
    page.click('#records-table a:text-is("en-weather")')
    expect(page.locator("#record-id")).to_have_text("en-weather")
    stored = store.api(
        store.articles, "get", {"ids": ["en-weather"], "include": ["embeddings", "documents"]}
    ).json()
    vector = np.asarray(stored["embeddings"][0], dtype=np.float64)
    expect(page.locator("#vector-norm")).to_have_text(f"{np.linalg.norm(vector):.4f}")
    expect(page.locator("#record-document")).to_have_text(stored["documents"][0])
    nearest = store.api(
        store.articles, "query", {"query_embeddings": [vector.tolist()], "n_results": 11}
    ).json()["ids"][0]
    neighbours = [i for i in nearest if i != "en-weather"][:10]
    assert ids_in(page, "#neighbours-table tbody tr") == neighbours
    shot(page, shots, "record")
    page.click(f'#neighbours-table a:text-is("{neighbours[0]}")')
    expect(page.locator("#record-id")).to_have_text(neighbours[0])


# -- search ----------------------------------------------------------------------------------


def run_search(page: Any) -> None:
    page.click("#run-search")
    page.wait_for_function(
        "() => { const r = document.querySelector('#search-results');"
        " return r && !r.hasAttribute('aria-busy') && r.children.length > 0; }"
    )


def test_search_in_every_mode_and_side_by_side(
    store: Store, open_page: OpenPage, shots: Path
) -> None:
    page = open_page(store.url)
    page.goto(store.url + "/#/c/default_tenant/default_database/articles/search")
    query = "北京的天气"
    page.fill("#query", query)
    left = '#search-results .result-column[data-side="0"] li'
    for mode in ("vector", "keyword", "hybrid"):
        page.click(f'label:has(input[name="mode"][value="{mode}"])')
        run_search(page)
        expected = store.api(
            store.articles, "query", {"query_texts": [query], "n_results": 10, "mode": mode}
        ).json()
        assert ids_in(page, left) == expected["ids"][0], mode
        head = page.locator('.result-column[data-side="0"] > .hit-head')
        expect(head).to_contain_text(mode)
        assert re.search(r"took \d+(\.\d+)? ms", head.inner_text())
    # keyword results (the last two modes rank them) show the query's words highlighted
    marks = page.locator(f"{left} mark").all_inner_texts()
    assert marks and set(marks) <= {"北京", "天气"}

    page.check("#compare")
    page.click('#compare-options label:has(input[value="keyword"])')
    page.click('label:has(input[name="mode"][value="vector"])')
    run_search(page)
    vector = store.api(store.articles, "query", {"query_texts": [query], "n_results": 10}).json()
    keyword = store.api(
        store.articles, "query", {"query_texts": [query], "n_results": 10, "mode": "keyword"}
    ).json()
    assert ids_in(page, left) == vector["ids"][0]
    right = '#search-results .result-column[data-side="1"] li'
    assert ids_in(page, right) == keyword["ids"][0]
    both = set(vector["ids"][0]) & set(keyword["ids"][0])
    assert both and set(ids_in(page, f"{right}.shared")) == both
    shot(page, shots, "search", full_page=True)

    # A pasted vector, in another collection.
    centre = cluster_centres()[3]
    page.goto(store.url + "/#/c/default_tenant/default_database/points/search")
    page.click('label:has(input[name="kind"][value="vector"])')
    page.fill("#query", json.dumps(centre.tolist()))
    run_search(page)
    expected = store.api(
        store.points, "query", {"query_embeddings": [centre.tolist()], "n_results": 10}
    ).json()
    assert ids_in(page, left) == expected["ids"][0]


# -- the map ---------------------------------------------------------------------------------


def isolated_point(store: Store, sample: int) -> str:
    """The id of the sampled point farthest from every other (on the map alone, so that
    hovering its place finds it and nothing else)."""
    response = httpx.post(
        f"{store.url}/api/v2/haima/tenants/default_tenant/databases/default_database"
        f"/collections/{store.points['id']}/map",
        json={"sample": sample},
        timeout=60,
    ).json()
    points = np.asarray(response["points"])
    squared = ((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(squared, np.inf)
    return str(response["ids"][int(np.argmax(squared.min(axis=1)))])


def test_map_draws_the_sample_and_places_a_query(
    store: Store, open_page: OpenPage, shots: Path
) -> None:
    page = open_page(store.url)
    page.goto(store.url + "/#/c/default_tenant/default_database/points/map")
    canvas = page.locator("#map-canvas")
    expect(canvas).to_have_attribute("data-state", "ready", timeout=30_000)
    expect(canvas).to_have_attribute("data-points", str(min(POINTS, MAP_SAMPLE)))
    legend = page.locator("#map-legend > span").all_inner_texts()
    counts = {
        m.group(1): int(m.group(2).replace(",", ""))
        for m in (re.match(r"(c\d) \(([\d,]+)\)", t) for t in legend)
        if m
    }
    assert sorted(counts) == ["c0", "c1", "c2", "c3", "c4"]
    assert sum(counts.values()) == MAP_SAMPLE
    painted = page.evaluate(
        """() => { const c = document.querySelector('#map-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4)
          if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2]) n++;
        return n; }"""
    )
    assert painted > 10_000  # thousands of dots, not an empty canvas and two axes

    alone = isolated_point(store, MAP_SAMPLE)
    where = page.evaluate("id => window.haimaConsole.mapPoint(id)", alone)
    page.mouse.move(where["x"], where["y"])
    expect(page.locator("#tooltip")).to_be_visible()
    expect(page.locator("#tooltip strong")).to_have_text(alone)

    centre = cluster_centres()[2]
    page.fill("#map-query", json.dumps(centre.tolist()))
    page.click("#map-drop-button")
    expect(canvas).to_have_attribute("data-query", "shown")
    expected = store.api(
        store.points,
        "query",
        {"query_embeddings": [centre.tolist()], "n_results": 10, "include": ["metadatas"]},
    ).json()
    assert ids_in(page, "#map-neighbour-list li") == expected["ids"][0]
    assert {m["cluster"] for m in expected["metadatas"][0]} == {"c2"}
    shot(page, shots, "map", full_page=True)

    page.mouse.click(where["x"], where["y"])
    expect(page.locator("#record-id")).to_have_text(alone)

    page.go_back()
    expect(canvas).to_have_attribute("data-state", "ready", timeout=30_000)
    page.select_option("#map-sample", "1000")
    expect(canvas).to_have_attribute("data-points", "1000", timeout=30_000)


def test_map_places_a_text_query_among_its_neighbours(
    store: Store, open_page: OpenPage, shots: Path
) -> None:
    page = open_page(store.url)
    page.goto(store.url + "/#/c/default_tenant/default_database/articles/map")
    canvas = page.locator("#map-canvas")
    expect(canvas).to_have_attribute("data-points", str(len(ARTICLES)), timeout=30_000)
    page.fill("#map-query", "北京")
    page.click("#map-drop-button")
    expect(canvas).to_have_attribute("data-query", "shown")
    expected = store.api(store.articles, "query", {"query_texts": ["北京"], "n_results": 10}).json()
    assert ids_in(page, "#map-neighbour-list li") == expected["ids"][0]
    shot(page, shots, "map-query", full_page=True)


# -- evaluation ------------------------------------------------------------------------------


def test_evaluation_view_reads_a_haima_eval_file(
    open_page: OpenPage, store: Store, shots: Path, tmp_path: Path
) -> None:
    report_path = tmp_path / "run.json"
    subprocess.run(
        [*HAIMA, "eval", str(MINI), "--embedding", "default", "--embedding", "random",
         "--mode", "vector", "--mode", "keyword", "--mode", "hybrid", "-k", "1,5,10",
         "--no-cache", "--store-dir", str(tmp_path / "stores"), "--json", str(report_path), "-q"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    report = json.loads(report_path.read_text())
    page = open_page(store.url)
    page.goto(store.url + "/#/eval")
    page.set_input_files("#eval-file", str(report_path))
    rows = page.locator("#eval-table tbody tr")
    expect(rows).to_have_count(len(report["results"]))
    names = rows.evaluate_all("rows => rows.map(r => r.dataset.config)")
    assert names == [r["name"] for r in report["results"]]
    best = next(r for r in report["results"] if r["best"])
    ndcg = f"{best['metrics']['ndcg@10']:.3f}"
    expect(page.locator(f'tr[data-config="{best["name"]}"] td').nth(1)).to_contain_text(ndcg)
    ok = [r for r in report["results"] if not r["error"]]
    expect(page.locator("#recall-chart g.series")).to_have_count(len(ok))
    expect(page.locator("#tradeoff-chart circle.point")).to_have_count(len(ok))
    shot(page, shots, "eval", full_page=True)

    other = tmp_path / "notes.json"
    other.write_text('{"answer": 42}')
    page.set_input_files("#eval-file", str(other))
    expect(page.locator("#eval-error")).to_contain_text("not a result file of `haima eval --json`")


# -- writes ----------------------------------------------------------------------------------


def test_deletes_ask_for_confirmation(store: Store, open_page: OpenPage) -> None:
    with haima.HttpClient.from_url(store.url) as client:
        scratch = client.create_collection("scratch", embedding_function=None)
        scratch.add(ids=["s1", "s2", "s3"], embeddings=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        page = open_page(store.url)
        page.goto(store.url + "/#/c/default_tenant/default_database/scratch/record/s1")
        dialog = page.locator("dialog")
        page.click("#delete-record")
        expect(dialog).to_be_visible()
        dialog.locator("button", has_text="Cancel").click()
        expect(dialog).to_have_count(0)
        assert scratch.count() == 3
        page.click("#delete-record")
        dialog.locator("button", has_text="Delete record").click()
        expect(page.locator("#records-table tbody tr")).to_have_count(2)
        assert scratch.get()["ids"] == ["s2", "s3"]

        page.goto(store.url + "/#/")
        page.click('button[aria-label="Delete collection scratch"]')
        confirm = dialog.locator("button", has_text="Delete collection")
        expect(confirm).to_be_disabled()
        dialog.locator("input").fill("scratc")
        expect(confirm).to_be_disabled()
        dialog.locator("input").fill("scratch")
        confirm.click()
        expect(page.locator('tr[data-collection="scratch"]')).to_have_count(0)
        expect(page.locator('tr[data-collection="points"]')).to_have_count(1)
        with pytest.raises(haima.NotFoundError):
            client.get_collection("scratch", embedding_function=None)


# -- a server with a key ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("locked")
    args = ("--no-preload", "--no-access-log", "--api-key", KEY, "--read-only-console")
    with ServerProcess(root / "store", *args) as server:
        with haima.HttpClient.from_url(server.url, api_key=KEY) as client:
            client.create_collection("locked-notes", embedding_function=None).add(
                ids=["n1", "n2"], embeddings=[[1.0, 0.0], [0.6, 0.8]], documents=["甲", "乙"]
            )
        yield server


def test_sign_in_with_the_key_and_a_read_only_console(
    locked: ServerProcess, open_page: OpenPage, shots: Path
) -> None:
    page = open_page(locked.url, expected_statuses={401})
    page.goto(locked.url + "/")
    expect(page.locator("#api-key")).to_be_visible()
    expect(page.locator("table")).to_have_count(0)
    shot(page, shots, "sign-in")

    page.fill("#api-key", "not-the-key")
    page.click("button:text-is('Sign in')")
    refused = httpx.get(
        f"{locked.url}/api/v2/haima/info", headers={"Authorization": "Bearer not-the-key"}
    )
    expect(page.locator("#sign-in-error")).to_have_text(refused.json()["message"])

    page.fill("#api-key", KEY)
    page.click("button:text-is('Sign in')")
    expect(page.locator('tr[data-collection="locked-notes"]')).to_be_visible()
    expect(page.locator("#read-only")).to_be_visible()
    expect(page.locator("button", has_text="Delete")).to_have_count(0)
    page.click('a:text-is("locked-notes")')
    page.click('#records-table a:text-is("n1")')
    expect(page.locator("#record-id")).to_have_text("n1")
    expect(page.locator("button", has_text="Delete")).to_have_count(0)

    data = [r for r in page.log.requests if "/api/" in r.url]
    assert data and all(KEY not in r.url for r in page.log.requests)
    signed = [r for r in data if r.all_headers().get("authorization") == f"Bearer {KEY}"]
    assert len(signed) >= 4  # info, collections, server, the collection's pages

    page.click("#sign-out")
    expect(page.locator("#api-key")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('haima.apiKey')") is None
