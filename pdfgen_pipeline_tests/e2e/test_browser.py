"""What a person sees, in a real headless Chromium: the Dagster UI of a local instance that published lf1 and g9,
and the generated store's `index.html` opened over HTTP.

Local setup only (no S3): a throw-away DAGSTER_HOME (SQLite), the bundled sample referentiel, generated and
artifact stores as temporary folders. Everything runs through the real CLIs (`dagster job execute`,
`dagster asset materialize`, `dagster-webserver`). Screenshots go to `pdfgen_pipeline_tests/artifacts/`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pdfgen_pipeline_tests.browser import (
    chromium_context,
    dagster_cli,
    dagster_webserver,
    local_dagster_env,
    require_chromium,
    screenshot_path,
    static_server,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

PUBLISHED = ("g9", "lf1")  # the two small sample ouvrages, rendered by the fixture
ALL_KEYS = ("c99", "g9", "lf1")  # every ouvrage of the sample referentiel (c99 stays unmaterialized)
UI_TIMEOUT = 60_000  # ms: the first page load waits for the code location


@pytest.fixture(scope="module")
def playwright_api():
    require_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:  # a test dependency (pyproject's [test] extra)
        pytest.fail(f"the playwright package is missing: pip install -e '.[test]' ({e})", pytrace=False)
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A local Dagster instance after discovery, publication of lf1 and g9 and the catalogue;
    the webserver on it and the generated store over HTTP. Yields a dict of URLs and paths."""
    require_chromium()  # do not spend two minutes rendering for nothing
    tmp = tmp_path_factory.mktemp("browser")
    env = local_dagster_env(tmp)
    log = tmp / "dagster.log"
    dagster_cli(["job", "execute", "-m", "pdfgen_pipeline.definitions", "-j", "discover_ouvrages"], env, log)
    for key in PUBLISHED:
        dagster_cli(["asset", "materialize", "-m", "pdfgen_pipeline.definitions", "--select", "group:ouvrages",
                     "--partition", key], env, log)
    dagster_cli(["asset", "materialize", "-m", "pdfgen_pipeline.definitions", "--select", "catalogue"], env, log)
    generated = Path(env["PDFGEN_GENERATED_URL"])
    assert (generated / "index.html").is_file(), f"no index.html in {generated}"
    with dagster_webserver(env, tmp / "webserver.log") as ui, static_server(generated) as static:
        yield {"ui": ui, "static": static, "generated": generated, "tmp": tmp}


@pytest.fixture
def browser_page(playwright_api, tmp_path):
    """A page in a fresh Chromium profile; HTTP errors (>= 400) and page errors are recorded on it."""
    with chromium_context(playwright_api, tmp_path / "profile", viewport={"width": 1400, "height": 900},
                          locale="fr-FR") as context:
        # Dagster's one-time "Join the Dagster community" dialog covers the page: mark it as already seen.
        context.add_init_script("try { localStorage.setItem('communityNux', JSON.stringify('1')) } catch (e) {}")
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(UI_TIMEOUT)
        page.http_errors = []
        page.js_errors = []
        page.on("response", lambda r: r.status >= 400 and page.http_errors.append(f"{r.status} {r.url}"))
        page.on("pageerror", lambda e: page.js_errors.append(str(e)))
        yield page


def _dismiss_community_dialog(page) -> None:
    """Fallback when the localStorage flag changes name: click "Skip" if the dialog is there."""
    skip = page.get_by_role("button", name="Skip")
    if skip.count() and skip.first.is_visible():
        skip.first.click()


def test_dagster_ui_shows_the_partitions_of_ouvrage_pdf(pipeline, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{pipeline['ui']}/assets/ouvrage_pdf?view=partitions")
    expect(page.get_by_role("tab", name="Partitions")).to_be_visible()
    for key in ALL_KEYS:
        expect(page.get_by_title(key, exact=True)).to_be_visible()
    _dismiss_community_dialog(page)

    # The status filters count 2 materialized partitions and 1 missing one.
    expect(page.get_by_text("Materialized (2)", exact=True)).to_be_visible()
    expect(page.get_by_text("Missing (1)", exact=True)).to_be_visible()
    expect(page.get_by_text("Failed (0)", exact=True)).to_be_visible()

    # Each row's status dot: lf1 and g9 share one colour (materialized, green), c99 another (missing).
    dots = {key: page.get_by_title(key, exact=True).evaluate(
        "e => getComputedStyle(e.closest('[data-tooltip]').nextElementSibling).backgroundColor")
        for key in ALL_KEYS}
    assert dots["g9"] == dots["lf1"] != dots["c99"], dots
    r, g, b = (int(v) for v in re.findall(r"\d+", dots["lf1"])[:3])
    assert g > r and g > b, f"materialized partitions should have a green dot: {dots}"

    # Unticking "Missing" leaves exactly the materialized partitions.
    page.get_by_text("Missing (1)", exact=True).click()
    expect(page.get_by_title("c99", exact=True)).to_have_count(0)
    for key in PUBLISHED:
        expect(page.get_by_title(key, exact=True)).to_be_visible()
    page.get_by_text("Missing (1)", exact=True).click()
    expect(page.get_by_title("c99", exact=True)).to_be_visible()

    # Selecting lf1 shows its latest materialization and the asset's metadata (its page count).
    page.get_by_title("lf1", exact=True).click()
    expect(page).to_have_url(re.compile(r"[?&]partition=lf1\b"))
    expect(page.get_by_text("Materialized", exact=True)).to_be_visible()  # the status tag by the title
    pages = json.loads((pipeline["generated"] / "lf1" / "manifest.json").read_text())["pages"]
    row = page.locator("tr").filter(has=page.locator("td").filter(has_text=re.compile(r"^\s*pages\s*$")))
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(1)).to_have_text(str(pages))
    page.screenshot(path=screenshot_path("dagster_ouvrage_pdf_partitions.png"))
    assert not page.js_errors, page.js_errors


def test_catalogue_index_lists_the_published_ouvrages(pipeline, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    generated = pipeline["generated"]
    manifests = {key: json.loads((generated / key / "manifest.json").read_text()) for key in PUBLISHED}
    response = page.goto(f"{pipeline['static']}/index.html")
    assert response is not None and response.status == 200
    expect(page).to_have_title("Ouvrages nautiques publiés")
    expect(page.get_by_role("heading", level=1)).to_have_text("Ouvrages nautiques publiés")
    assert page.evaluate("document.characterSet") == "UTF-8"
    expect(page.locator(".sub")).to_contain_text("2 ouvrages")

    cards = page.locator("article.card")
    expect(cards).to_have_count(len(PUBLISHED))
    assert cards.evaluate_all("cs => cs.map(c => c.dataset.ouvrage)") == sorted(PUBLISHED)
    for key, manifest in manifests.items():
        card = page.locator(f'article.card[data-ouvrage="{key}"]')
        expect(card.get_by_role("heading", level=2)).to_have_text(manifest["title"])
        expect(card).to_contain_text(f"{key} — {manifest['pages']} pages")
        assert manifest["pages"] > 0
        row = page.locator("#par-date tbody tr").filter(has=page.get_by_role("link", name=key, exact=True))
        expect(row).to_have_count(1)
        expect(row.locator("td").nth(1)).to_have_text(manifest["title"])
        expect(row.locator("td").nth(2)).to_have_text(manifest["serie"].upper())
        expect(row.locator("td").nth(5)).to_have_text(str(manifest["pages"]))
    expect(page.get_by_text("Édition : 7 septembre 2022")).to_be_visible()  # g9: French date, accents intact

    # Every thumbnail actually loaded (lazy images: bring each one into view first).
    images = page.locator("article.card img")
    expect(images).to_have_count(len(PUBLISHED))
    for i in range(images.count()):
        images.nth(i).scroll_into_view_if_needed()
    page.wait_for_function("[...document.querySelectorAll('article.card img')].every(i => i.complete)")
    sizes = images.evaluate_all("is => is.map(i => [i.getAttribute('src'), i.naturalWidth, i.naturalHeight])")
    assert [s[0] for s in sizes] == [f"{k}/vignette.jpg" for k in sorted(PUBLISHED)]
    assert all(w > 0 and h > w for _, w, h in sizes), f"thumbnails not loaded (or not portrait pages): {sizes}"
    page.evaluate("window.scrollTo(0, 0)")

    # Every link resolves over HTTP: the PDFs are PDFs, the other files are there.
    hrefs = sorted(set(page.locator("a[href]").evaluate_all(
        "as => as.filter(a => a.getAttribute('href') !== '#').map(a => a.href)")))
    pdfs = [h for h in hrefs if h.endswith(".pdf")]
    expected_pdfs = {f"{pipeline['static']}/{p}" for m in manifests.values() for p in
                     (f"{m['ouvrage']}/{n}" for n in m["files"] if n.endswith(".pdf"))}
    assert set(pdfs) == expected_pdfs
    for href in hrefs:
        r = page.request.get(href)
        assert r.status == 200, f"{href}: HTTP {r.status}"
        if href.endswith(".pdf"):
            assert r.body().startswith(b"%PDF-"), href
    page.screenshot(path=screenshot_path("catalogue_index.png"), full_page=True)
    assert not [e for e in page.http_errors if not e.endswith("/favicon.ico")], page.http_errors
    assert not page.js_errors, page.js_errors
