"""Browser test of the built lesson page (module 09).

Serves ``docs/_build/html`` on 127.0.0.1 and loads the lesson in Debian's
Chromium through Playwright.  It needs the site built first::

    sphinx-build -W --keep-going -b html docs docs/_build/html
    PIXELFOREST_REQUIRE_BROWSER=1 pytest -m browser tests/docs

Without a built site, Playwright or Chromium the tests are skipped, unless
``PIXELFOREST_REQUIRE_BROWSER=1`` (set by ``.ci/run``) turns that into a
failure.  A full-page screenshot is saved to
``docs/_build/html/_screenshots/lesson-09.png``.
"""

import functools
import http.server
import json
import os
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser

SITE = Path(__file__).resolve().parents[2] / "docs" / "_build" / "html"
LESSON = "lessons/09-segment-with-ml.html"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = SITE / "_screenshots" / "lesson-09.png"
REQUIRED = os.environ.get("PIXELFOREST_REQUIRE_BROWSER") == "1"


def _unavailable(reason):
    if REQUIRED:
        pytest.fail(f"{reason} (PIXELFOREST_REQUIRE_BROWSER=1 makes this an error)")
    pytest.skip(reason)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


@pytest.fixture(scope="module")
def server():
    if not (SITE / LESSON).is_file():
        _unavailable(f"the site is not built ({SITE / LESSON} is missing); run "
                     "sphinx-build -W --keep-going -b html docs docs/_build/html first")
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed: pip install -e '.[docs]'")
    if not CHROMIUM.is_file():
        _unavailable(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def lesson(server, browser):
    """The loaded lesson page and everything it did on the network and console."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    events = {"outside": [], "failed": [], "bad_status": [], "console": [], "page_errors": []}
    origin = urlsplit(server).netloc

    def route(route):
        if urlsplit(route.request.url).netloc == origin:
            route.continue_()
        else:  # never let the page reach the network; record the attempt
            events["outside"].append(route.request.url)
            route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("console", lambda msg: msg.type == "error" and events["console"].append(
        f"{msg.text} ({msg.location.get('url', '')})"))
    page.on("pageerror", lambda exc: events["page_errors"].append(str(exc)))
    page.on("requestfailed", lambda req: events["failed"].append(
        f"{req.url}: {req.failure}"))
    page.on("response", lambda resp: resp.status >= 400 and events["bad_status"].append(
        f"{resp.status} {resp.url}"))
    page.goto(f"{server}/{LESSON}", wait_until="networkidle")
    # scroll through the page so lazily loaded images load too
    page.evaluate("""async () => {
        for (let y = 0; y < document.body.scrollHeight; y += 600) {
            window.scrollTo(0, y); await new Promise(r => setTimeout(r, 20));
        }
        window.scrollTo(0, 0);
    }""")
    page.wait_for_load_state("networkidle")
    yield page, events
    context.close()


def test_screenshot(lesson):
    # first, while the page is as a reader opens it: solutions folded, no focus
    page, _ = lesson
    page.evaluate("window.scrollTo(0, 0)")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000


def test_figures_render(lesson):
    page, _ = lesson
    images = page.eval_on_selector_all(
        "article img",
        "els => els.map(e => ({src: e.currentSrc || e.src, ok: e.complete, w: e.naturalWidth,"
        " output: !!e.closest('.cell_output')}))")
    figures = [img for img in images if img["output"]]
    assert len(figures) >= 5, f"expected the lesson's figures in cell outputs, found {images}"
    broken = [img["src"] for img in images if not (img["ok"] and img["w"] > 0)]
    assert not broken, f"images that did not load: {broken}"


def test_solutions_collapsed_until_clicked(lesson):
    page, _ = lesson
    solutions = page.locator("div.solution.dropdown")
    n = solutions.count()
    assert n >= 5, f"expected one collapsed solution per exercise, found {n}"
    for i in range(n):
        solution = solutions.nth(i)
        body = solution.locator("section").first
        solution.scroll_into_view_if_needed()
        assert not body.is_visible(), f"solution {i + 1} is shown before any click"
        solution.locator("button.toggle-button").click()
        body.wait_for(state="visible", timeout=5000)
        assert body.is_visible(), f"solution {i + 1} stays hidden after a click"
        solution.locator("button.toggle-button").click()
        body.wait_for(state="hidden", timeout=5000)


def test_download_notebook_link(lesson):
    page, _ = lesson
    link = page.locator("a.download-notebook")
    assert link.count() == 1, "the page needs exactly one 'Download notebook' link"
    assert "Download notebook" in link.inner_text()
    href = link.get_attribute("href")
    assert href.endswith(".ipynb"), href
    url = page.evaluate("h => new URL(h, document.baseURI).href", href)
    response = page.request.get(url)
    assert response.ok, f"{url} answered {response.status}"
    notebook = json.loads(response.body())
    assert notebook["nbformat"] == 4
    kinds = [cell["cell_type"] for cell in notebook["cells"]]
    assert kinds.count("code") >= 10 and "markdown" in kinds
    sources = "".join("".join(cell["source"]) for cell in notebook["cells"])
    assert "{exercise" not in sources and "{solution" not in sources, \
        "MyST directives leaked into the notebook"
    for name in ("check_normalize", "check_kmeans", "check_iou", "check_features",
                 "check_improvement"):
        assert name in sources, f"the notebook lacks the {name} exercise check"


def test_offline_and_no_errors(lesson):
    # runs last: the clicks and fetches above count too
    page, events = lesson
    assert not events["outside"], f"requests outside the site: {events['outside']}"
    assert not events["failed"], f"failed requests: {events['failed']}"
    assert not events["bad_status"], f"error responses: {events['bad_status']}"
    assert not events["console"], f"console errors: {events['console']}"
    assert not events["page_errors"], f"uncaught page errors: {events['page_errors']}"
