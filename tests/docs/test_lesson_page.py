"""Browser test of the built lesson page (module 09).

Serves ``docs/_build/html`` on 127.0.0.1 and loads the lesson in Debian's
Chromium through Playwright.  It needs the site built first::

    sphinx-build -W --keep-going -b html docs docs/_build/html
    PIXELFOREST_REQUIRE_BROWSER=1 pytest -m browser tests/docs

Without a built site, Playwright or Chromium the tests are skipped, unless
``PIXELFOREST_REQUIRE_BROWSER=1`` (set by ``.ci/run``) turns that into a
failure.  Full-page screenshots are saved to
``docs/_build/html/_screenshots/lesson-09.png`` (desktop, 1280 px wide) and
``lesson-09-phone.png`` (a phone, 390 px wide).
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
PHONE_SCREENSHOT = SITE / "_screenshots" / "lesson-09-phone.png"
PHONE = {"width": 390, "height": 844}
REQUIRED = os.environ.get("PIXELFOREST_REQUIRE_BROWSER") == "1"
#: Set by .ci/run, which makes the napari screenshots before the build.
SCREENSHOTS_REQUIRED = os.environ.get("PIXELFOREST_REQUIRE_SCREENSHOTS") == "1"
#: The screenshots of Part 5 (docs/_ext/napari_screenshots.py), in page order.
NAPARI_SHOTS = ["napari-widget-panel.png", "napari-widget-strokes.png",
                "napari-widget-uncertainty.png"]
ROOT = Path(__file__).resolve().parents[2]


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
    assert n >= 6, f"expected one collapsed solution per exercise, found {n}"
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


def _fetch_notebook(page, selector):
    link = page.locator(selector)
    assert link.count() == 1, f"the page needs exactly one {selector} link"
    href = link.get_attribute("href")
    assert href.endswith(".ipynb"), href
    url = page.evaluate("h => new URL(h, document.baseURI).href", href)
    response = page.request.get(url)
    assert response.ok, f"{url} answered {response.status}"
    notebook = json.loads(response.body())
    assert notebook["nbformat"] == 4
    return link.inner_text(), notebook


def test_download_notebook_links(lesson):
    page, _ = lesson
    text, learner = _fetch_notebook(page, "a.download-notebook")
    assert "Download the notebook" in text
    kinds = [cell["cell_type"] for cell in learner["cells"]]
    assert kinds.count("code") >= 10 and "markdown" in kinds
    sources = "".join("".join(cell["source"]) for cell in learner["cells"])
    assert "{exercise" not in sources and "{solution" not in sources, \
        "MyST directives leaked into the notebook"
    for name in ("check_normalize", "check_kmeans", "check_iou", "check_features",
                 "check_improvement", "check_count"):
        assert name in sources, f"the notebook lacks the {name} exercise check"
    assert sources.count("# your code here") >= 6, "the learner's notebook has no skeletons"
    assert "forest.fit(X_train, y_train)" not in sources, "a solution is in the learner's notebook"
    text, instructor = _fetch_notebook(page, "a.download-solutions")
    assert "solutions" in text
    sources = "".join("".join(cell["source"]) for cell in instructor["cells"])
    assert "forest.fit(X_train, y_train)" in sources


def test_figures_have_real_alt_text(lesson):
    page, _ = lesson
    images = page.eval_on_selector_all(
        "article .cell_output img", "els => els.map(e => ({src: e.getAttribute('src'), "
        "alt: e.getAttribute('alt') || ''}))")
    assert len(images) >= 10
    for img in images:
        alt = img["alt"].strip()
        assert len(alt) >= 40 and " " in alt, f"{img['src']}: alt text {alt!r}"
        assert not alt.lower().endswith((".png", ".svg")) and "_images" not in alt, alt


def test_next_link_after_the_lesson(lesson):
    page, _ = lesson
    nxt = page.locator("a.right-next")
    assert nxt.count() == 1
    href = nxt.get_attribute("href")
    assert "practice" in href and "cluster" not in href, href


def _napari_shots(page):
    """The page's napari screenshots, or a skip/failure if it was built without them."""
    shots = page.eval_on_selector_all(
        "article figure.screenshot img",
        "els => els.map(e => ({src: e.getAttribute('src'), alt: e.getAttribute('alt') || '',"
        " ok: e.complete && e.naturalWidth > 0, shown: e.clientWidth, natural: e.naturalWidth,"
        " link: e.closest('a') ? e.closest('a').getAttribute('href') : null}))")
    missing = page.locator("article .missing-screenshot").count()
    if not shots and missing:
        reason = ("the site was built without the napari screenshots (docs/_generated/); "
                  "make them first: xvfb-run -a pytest tests/docs/test_napari_screenshots.py")
        if SCREENSHOTS_REQUIRED:
            pytest.fail(reason + " (PIXELFOREST_REQUIRE_SCREENSHOTS=1 makes this an error)")
        pytest.skip(reason)
    assert missing == 0, f"{missing} screenshot notes next to {len(shots)} screenshots"
    return shots


def test_napari_screenshots_in_part_5(lesson):
    page, _ = lesson
    shots = _napari_shots(page)
    assert [Path(s["src"]).name for s in shots] == NAPARI_SHOTS
    for shot in shots:
        assert shot["ok"], f"{shot['src']} did not load"
        alt = " ".join(shot["alt"].split())
        assert len(alt) >= 40 and not alt.lower().endswith(".png"), (shot["src"], alt)
        # each links to its full-size file (the page shows the window ones scaled down)
        assert shot["link"] and Path(shot["link"]).name == Path(shot["src"]).name, shot
    section = page.locator("section#part-5-paint-your-own-labels-in-napari")
    assert section.locator("figure.screenshot").count() == len(NAPARI_SHOTS)
    text = section.inner_text()
    for step in ("Plugins > pixelforest > Pixel classifier", "Live", "uncertainty",
                 "Where should I paint next?", "Save model", "load_model"):
        assert step in text, f"Part 5 does not mention {step!r}"


def test_repository_link_in_the_header(lesson):
    import tomllib

    page, _ = lesson
    url = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    link = page.locator(".bd-header-article a.btn-source-repository-button")
    assert link.count() >= 1, "no repository button in the header"
    assert link.first.get_attribute("href") == url


@pytest.fixture(scope="module")
def phone(server, browser):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    context.route("**/*", lambda route: route.continue_()
                  if urlsplit(route.request.url).netloc == urlsplit(server).netloc
                  else route.abort())
    page = context.new_page()
    page.goto(f"{server}/{LESSON}", wait_until="networkidle")
    page.evaluate("""async () => {
        for (let y = 0; y < document.body.scrollHeight; y += 600) {
            window.scrollTo(0, y); await new Promise(r => setTimeout(r, 20));
        }
        window.scrollTo(0, 0);
    }""")
    page.wait_for_load_state("networkidle")
    yield page
    context.close()


def test_phone_screenshot(phone):
    PHONE_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(PHONE_SCREENSHOT), full_page=True)
    assert PHONE_SCREENSHOT.stat().st_size > 10_000


def test_phone_no_horizontal_scrolling_outside_code(phone):
    width = phone.evaluate("window.innerWidth")
    assert width == PHONE["width"]
    page_width = phone.evaluate("document.documentElement.scrollWidth")
    assert page_width <= width, f"the page scrolls sideways: {page_width} px > {width} px"
    # every piece of text outside code blocks lies within the screen
    overflowing = phone.evaluate("""() => {
        const out = [];
        const sel = 'article p, article li, article h1, article h2, article h3, '
                  + 'article dt, article dd, article td, article th, article blockquote, '
                  + 'article .admonition-title, article caption';
        for (const el of document.querySelectorAll(sel)) {
            if (el.closest('pre, .highlight, .cell_output pre, div.output')) continue;
            const r = el.getBoundingClientRect();
            if (r.width === 0) continue;
            if (r.right > window.innerWidth + 1 || r.left < -1
                || el.scrollWidth > el.clientWidth + 1)
                out.push(el.tagName + ': ' + el.textContent.trim().slice(0, 60));
        }
        return out;
    }""")
    assert not overflowing, f"text wider than the phone's screen: {overflowing[:10]}"


def test_phone_figure_text_is_readable(phone):
    from pixelforest.lesson.figures import DPI, MIN_FONT_PT

    natural_font_px = MIN_FONT_PT * DPI / 72  # the smallest text, in image pixels
    images = phone.eval_on_selector_all(
        "article .cell_output img",
        "els => els.map(e => ({src: e.getAttribute('src'), shown: e.clientWidth,"
        " natural: e.naturalWidth}))")
    assert len(images) >= 10
    small = [(img["src"], round(img["shown"] / img["natural"] * natural_font_px, 1))
             for img in images if img["shown"] / img["natural"] * natural_font_px < 12]
    assert not small, f"figure text below 12 px on a 390 px wide phone: {small}"


def test_phone_napari_screenshots_fit_and_link_to_full_size(phone):
    # Qt's 12 px text: the panel is shown at its own size (a frame that scrolls
    # sideways on a phone), so its text is 12 px; the window screenshots fit the
    # screen and, like the panel, link to the full-size file
    shots = {Path(s["src"]).name: s for s in _napari_shots(phone)}
    panel = shots["napari-widget-panel.png"]
    assert panel["shown"] >= panel["natural"], panel
    for name in NAPARI_SHOTS:
        if name != "napari-widget-panel.png":
            assert shots[name]["shown"] <= phone.evaluate("window.innerWidth"), shots[name]
        assert shots[name]["link"] and Path(shots[name]["link"]).name == name, shots[name]


def test_offline_and_no_errors(lesson):
    # runs last: the clicks and fetches above count too
    page, events = lesson
    assert not events["outside"], f"requests outside the site: {events['outside']}"
    assert not events["failed"], f"failed requests: {events['failed']}"
    assert not events["bad_status"], f"error responses: {events['bad_status']}"
    assert not events["console"], f"console errors: {events['console']}"
    assert not events["page_errors"], f"uncaught page errors: {events['page_errors']}"
