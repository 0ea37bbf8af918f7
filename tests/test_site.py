"""The course website (`make site`) in headless Chromium, as a reader opens it.

Every page of the table of contents loads without a console error or a failed request, every
image has loaded, every internal link (and #anchor) resolves, no page reaches for the network,
the search page finds `requires_grad`, and the lessons show their plots. Run alone, the site is
(re)built first with the same command as `make site`: incremental, lessons executed only when they
or the package changed (a lesson that raises fails the build, and so this test). Under `make test`,
which has just run `make site`, TLCOURSE_SITE_BUILT=1 says so and the site is tested as built.
"""

import contextlib
import functools
import http.server
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import pytest
from browser_support import ROOT, chromium, screenshot

pytestmark = pytest.mark.browser  # headless Chromium: `make test`, not `make check`

SITE = ROOT / "_build" / "site"
# The `make site` command (Makefile); -W: a broken cross-reference or a missing image fails it.
BUILD = ["-m", "sphinx", "-b", "html", "-c", "site", "-d", "_build/doctrees", "-W", "--keep-going"]
LESSONS = sorted(ROOT.glob("notebooks/[0-9]*.ipynb"))
EXERCISES = sorted(ROOT.glob("exercises/[0-9]*.ipynb"))


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # one line per file would drown pytest's output
        pass


def build_site() -> None:
    if os.environ.get("TLCOURSE_SITE_BUILT") == "1":  # `make test`: `make site` ran just before
        assert (SITE / "index.html").is_file(), "TLCOURSE_SITE_BUILT=1, no _build/site: make site"
        return
    started = time.perf_counter()
    build = subprocess.run(
        [sys.executable, *BUILD, ".", str(SITE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=os.environ | {"TLCOURSE_OFFLINE": "1"},
    )
    output = f"{build.stdout[-3000:]}{build.stderr[-6000:]}"
    assert build.returncode == 0, f"`make site` failed:\n{output}"
    print(f"site build: {time.perf_counter() - started:.1f} s")


@contextlib.contextmanager
def serve(directory: Path):
    """The built site on a local HTTP server, as a reader (or a static host) serves it."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def site_url():
    build_site()
    with serve(SITE) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium("The website test (tests/test_site.py)") as browser:
        yield browser


class Visit:
    """One page in a fresh tab, with everything that went wrong while it loaded."""

    def __init__(self, browser, url: str, origin: str):
        self.problems: list[str] = []
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url}"))
        self.page.on("response", self._response)
        self.page.route("**/*", functools.partial(self._offline, origin))
        self.page.goto(url, wait_until="load")

    def _console(self, message):
        if message.type == "error":
            self.problems.append(f"console error: {message.text}")

    def _response(self, response):
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def _offline(self, origin, route):
        """The site must work with no network: a request elsewhere is a problem (and blocked)."""
        if route.request.url.startswith(origin) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            self.problems.append(f"reaches the network: {route.request.url}")
            route.abort()

    def broken_images(self) -> list[str]:
        """Images that did not load (naturalWidth 0), lazy ones included."""
        return self.page.evaluate(
            """async () => {
                const images = Array.from(document.images);
                images.forEach(img => { img.loading = "eager"; });
                await Promise.all(images.map(img => img.complete ? null :
                    new Promise(done => { img.onload = img.onerror = done; })));
                return images.filter(img => img.naturalWidth === 0)
                             .map(img => img.getAttribute("src"));
            }"""
        )

    def links(self) -> list[str]:
        return self.page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")

    def outputs(self) -> tuple[int, int]:
        """(cell outputs, images among them that loaded): what executing the notebook added."""
        return self.page.evaluate(
            """() => [document.querySelectorAll(".cell_output").length,
                      [...document.querySelectorAll(".cell_output img")]
                          .filter(img => img.naturalWidth > 0).length]"""
        )


@functools.cache
def anchors(path: Path) -> frozenset[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    return frozenset(re.findall(r'\b(?:id|name)="([^"]+)"', text))


def unresolved(url: str) -> str | None:
    """Why an internal link does not resolve (None when its file and #anchor exist)."""
    address, fragment = urldefrag(url)
    path = SITE / unquote(urlsplit(address).path).lstrip("/")
    if path.is_dir():
        path = path / "index.html"
    if not path.is_file():
        return f"{url}: no such file"
    if fragment and path.suffix == ".html" and unquote(fragment) not in anchors(path):
        return f"{url}: no #{fragment} on that page"
    return None


def toc_pages(browser, site_url: str) -> list[str]:
    """The landing page and every page its sidebar (the table of contents) links to."""
    visit = Visit(browser, site_url, site_url)
    visit.page.wait_for_url("**/README.html")  # index.html redirects to the README
    hrefs = visit.page.eval_on_selector_all(
        "nav.bd-docs-nav a.reference.internal", "links => links.map(a => a.href)"
    )
    visit.page.close()
    pages = [visit.page.url, *dict.fromkeys(urldefrag(h)[0] for h in hrefs)]
    expected = [*LESSONS, *EXERCISES, ROOT / "docs/benchmarks.md", ROOT / "docs/errors.md"]
    for source in expected:
        html = site_url + source.relative_to(ROOT).with_suffix(".html").as_posix()
        assert html in pages, f"{source.relative_to(ROOT)} is not in the site's table of contents"
    assert any(p.endswith("/site/api.html") for p in pages), "no API reference in the contents"
    return pages


def test_every_page_loads_cleanly_with_its_images_and_links(browser, site_url):
    problems, outputs, checked_links = [], {}, 0
    pages = toc_pages(browser, site_url)
    for url in pages:
        visit = Visit(browser, url, site_url)
        name = url.removeprefix(site_url)
        problems += [f"{name}: image not loaded: {src}" for src in visit.broken_images()]
        for link in visit.links():
            if link.startswith(site_url):
                checked_links += 1
                if reason := unresolved(link):
                    problems.append(f"{name}: broken link {reason}")
        if name.startswith(("notebooks/", "exercises/")):
            outputs[name] = visit.outputs()
        if name == "notebooks/00_setup_check.html":
            screenshot(visit.page, "site_lesson_00.png")
        visit.page.close()
        problems += [f"{name}: {problem}" for problem in visit.problems]
    print(f"{len(pages)} pages, {checked_links} internal links; (outputs, plots): {outputs}")
    assert not problems, "\n".join(problems)
    assert checked_links > 10 * len(pages), "too few links: is the sidebar there?"
    lessons = {name: n for name, n in outputs.items() if name.startswith("notebooks/")}
    assert all(count for count, _ in lessons.values()), f"a lesson without outputs: {lessons}"
    assert lessons["notebooks/00_setup_check.html"][1] >= 1, "lesson 00 shows no plot"
    assert sum(plots for _, plots in lessons.values()) >= len(lessons), f"few plots: {lessons}"
    blank = {name: n for name, n in outputs.items() if name.startswith("exercises/")}
    assert not any(count for count, _ in blank.values()), f"exercises must be blank: {blank}"


def test_search_finds_requires_grad(browser, site_url):
    visit = Visit(browser, f"{site_url}search.html?q=requires_grad", site_url)
    results = visit.page.locator("#search-results ul.search li")
    results.first.wait_for(timeout=30_000)
    found = visit.page.eval_on_selector_all(
        "#search-results ul.search li a", "links => links.map(a => a.href)"
    )
    screenshot(visit.page, "site_search.png")
    visit.page.close()
    assert not visit.problems, "\n".join(visit.problems)
    lesson = f"{site_url}notebooks/02_feature_extraction.html"
    assert any(link.startswith(lesson) for link in found), f"lesson 02 not among {found}"


def test_opens_from_disk_without_a_server(browser, site_url):
    """`open _build/site/index.html` (file://): the landing page, a lesson and search work."""
    root = SITE.as_uri()
    for name in ("index.html", "notebooks/00_setup_check.html", "search.html?q=requires_grad"):
        visit = Visit(browser, f"{root}/{name}", root)
        if name == "index.html":
            visit.page.wait_for_url("**/README.html")
        if name.startswith("search"):
            visit.page.locator("#search-results ul.search li").first.wait_for(timeout=30_000)
        else:
            assert not visit.broken_images(), f"{name}: images missing from disk"
        visit.page.close()
        assert not visit.problems, f"{name} from disk:\n" + "\n".join(visit.problems)
