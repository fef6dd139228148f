"""The built book: the build passes with warnings as errors, and every page works in a real browser.

The browser is Debian's Chromium (``apt-get install chromium``) driven by
Playwright for Python; ``playwright install`` is never needed. The pages are
served from the built HTML folder on 127.0.0.1. Requests to any other host
(MathJax and other CDN files) are aborted, so the test is the same offline
and online and never depends on a third party; the only errors those aborted
loads cause are Chromium's "Failed to load resource" messages for external
URLs, which are the only load failures allowed.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from conftest import read_config, repository_url, toc_files

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests may run as root (CI), where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# sphinx-thebe's script is included twice on every page of sphinx-book-theme
# 1.x, so the second copy logs this error; nothing depends on it.
HARMLESS_ERROR = "Identifier 'THEBE_JS_URL' has already been declared"
# Reports whether every <img> of the page decoded (lazy images are loaded first).
IMAGES_NOT_LOADED = """async () => {
    const images = Array.from(document.images);
    images.forEach(img => { img.loading = "eager"; });
    await Promise.all(images.map(img => img.decode().catch(() => null)));
    return images.filter(img => !(img.complete && img.naturalWidth > 0))
                 .map(img => img.getAttribute("src"));
}"""

TOC = toc_files()


def test_book_builds_every_page(built_book: Path) -> None:
    """The build passed with -W (the fixture fails otherwise) and wrote a page for every TOC entry."""
    missing = [doc for doc in TOC if not (built_book / f"{doc}.html").is_file()]
    assert not missing, f"The build wrote no HTML page for these TOC entries: {missing}"
    assert (built_book / "index.html").is_file(), "The build wrote no index.html"


@pytest.fixture(scope="module")
def site(built_book: Path) -> Iterator[str]:
    """The built book served over HTTP on 127.0.0.1, as its base URL."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(built_book)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium) to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def colab_url(doc: str) -> str:
    """The Colab link a notebook page must carry, from the repository named in ``_config.yml``."""
    config = read_config()
    owner_and_name = urlparse(repository_url()).path.strip("/")
    branch = config["repository"]["branch"]
    return f"https://colab.research.google.com/github/{owner_and_name}/blob/{branch}/{doc}.ipynb"


@pytest.mark.parametrize("doc", TOC)
def test_page_in_browser(doc: str, site: str, browser, repo_root: Path) -> None:
    def is_local(url: str) -> bool:
        return url.startswith((site, "data:", "blob:", "about:"))

    problems: list[str] = []

    def on_console(message) -> None:
        if message.type != "error" or HARMLESS_ERROR in message.text:
            return
        source = message.location.get("url", "")
        if message.text.startswith("Failed to load resource") and source and not is_local(source):
            return  # an external file we aborted on purpose (see the module docstring)
        problems.append(f"console error: {message.text} (at {source or 'unknown'})")

    def on_page_error(error) -> None:
        if HARMLESS_ERROR not in str(error):
            problems.append(f"page error: {error}")

    page = browser.new_page()
    try:
        page.route("**/*", lambda route: route.continue_() if is_local(route.request.url) else route.abort())
        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        page.on("requestfailed", lambda r: problems.append(f"failed to load {r.url}") if is_local(r.url) else None)
        page.on("response", lambda r: problems.append(f"HTTP {r.status} for {r.url}") if r.status >= 400 else None)

        response = page.goto(f"{site}/{doc}.html", wait_until="networkidle")
        assert response is not None and response.status == 200, f"{doc}.html: HTTP {response and response.status}"

        book_title = read_config()["title"]
        title = page.title()
        assert title.endswith(book_title) and len(title) > len(book_title) + 3, (
            f"{doc}.html: the page title {title!r} should be the page's own title followed by {book_title!r}"
        )

        broken = page.evaluate(IMAGES_NOT_LOADED)
        assert not broken, f"{doc}.html: these images did not load: {broken}"
        # A figure whose image was not rendered (e.g. the kernel ran without the inline backend).
        assert "<Figure size" not in page.inner_text("main"), f"{doc}.html shows a figure as text, not as an image"

        if (repo_root / f"{doc}.ipynb").is_file():
            links = page.locator('a[href^="https://colab.research.google.com"]')
            hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
            assert hrefs == [colab_url(doc)], f"{doc}.html: Colab launch links {hrefs}, expected [{colab_url(doc)!r}]"
    finally:
        page.close()
    assert not problems, f"{doc}.html:\n" + "\n".join(problems)


# The pages that show network diagrams (cnnbook.diagram), and how many each must show. A diagram is
# an inline <svg class="cnnbook-diagram"> (the appendix, diagrams side by side) or an SVG image file
# that myst-nb wrote from a cell's output.
DIAGRAM_PAGES = {"chapters/lenet5": 1, "chapters/alexnet": 1, "chapters/zfnet": 2, "chapters/nin": 1,
                 "chapters/vgg": 1, "chapters/googlenet": 3, "chapters/inception-v2-v3": 4,
                 "chapters/inception-v4": 5, "chapters/resnet": 4, "chapters/preact-resnet": 3,
                 "chapters/resnext": 5, "chapters/stochastic-depth": 2, "chapters/densenet": 2,
                 "chapters/highway-fractalnet": 3, "chapters/dsn-ladder-dfn": 4,
                 "chapters/diagrams": None}  # fmt: skip
# Opens every collapsed <details>, then measures each diagram as the browser laid it out.
DIAGRAMS_RENDERED = """() => {
    document.querySelectorAll("details").forEach(d => { d.open = true; });
    const inline = Array.from(document.querySelectorAll("svg.cnnbook-diagram"));
    const files = Array.from(document.querySelectorAll(".cell_output img"))
        .filter(img => (img.getAttribute("src") || "").endsWith(".svg"));
    return inline.map(svg => ({kind: "inline", width: svg.getBoundingClientRect().width,
                               boxes: svg.querySelectorAll("g.node").length}))
        .concat(files.map(img => ({kind: "file", width: img.naturalWidth, boxes: null})));
}"""


@pytest.mark.parametrize("doc", DIAGRAM_PAGES)
def test_diagrams_render_in_browser(doc: str, site: str, browser) -> None:
    from cnnbook import models

    expected = DIAGRAM_PAGES[doc] or len(models.names()) + 1  # the appendix: every model, and one module
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)) if HARMLESS_ERROR not in str(error) else None)
    try:
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(site) else route.abort())
        page.goto(f"{site}/{doc}.html", wait_until="networkidle")
        page.evaluate(IMAGES_NOT_LOADED)  # loads the lazy images first
        diagrams = page.evaluate(DIAGRAMS_RENDERED)
    finally:
        page.close()
    assert not errors, f"{doc}.html: script errors: {errors}"
    assert len(diagrams) == expected, f"{doc}.html shows {len(diagrams)} diagrams, expected {expected}"
    empty = [d for d in diagrams if not d["width"] > 0 or d["boxes"] == 0]
    assert not empty, f"{doc}.html: diagrams that did not render (no width, or no boxes): {empty}"
