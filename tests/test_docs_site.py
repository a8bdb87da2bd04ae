"""The docs site as a reader meets it (issue 12): built once, then read page by page.

The site is built once per session (``mkdocs build --strict`` into a temporary directory, about
10 s) and every page parsed once. The checks:

* every link of the right-hand table of contents points to an element id, and its entry keeps
  every word of its heading (inline code included);
* every image has a real alt text;
* no page loads a script or a style sheet from another host, the rendered notebooks carry no
  widget state and no ``nbval`` tag badge, and notebook 07 shows its static picture instead of
  the widget;
* ``404.html`` uses relative paths only, and they resolve;
* the API page does not show ``Result``'s private ``_summary``;
* every internal link (fact IDs, glossary terms, notebooks' links to docs pages) resolves to a
  file of the site and, with a fragment, to an id of that page; every fact ID mentioned in the
  docs, the notebooks and the code is a row of the facts page;
* the glossary, facts, decision-table and experiments pages exist with their anchors, rows and
  columns, and the home page and the tutorials index link to them;
* in Debian's headless Chromium, offline: notebook 07's page shows its static picture, decoded
  and drawn (the screenshot of its region is not blank), and the page asks no other host for
  anything. Without ``chromium`` this one test skips locally and fails when ``CI`` is set.
"""

from __future__ import annotations

import functools
import html
import io
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "hooks"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import error_page  # noqa: E402  (docs/hooks)
import fact_links  # noqa: E402  (docs/hooks)

PLACEHOLDER_ALT = "No description has been provided for this image"

GLOSSARY_ANCHORS = (
    "dra", "xff", "snat", "dnat", "masquerade", "conntrack", "vip", "arp-garp",
    "healthchecknodeport", "proxy-v1-v2", "tlv", "local-command", "cluster-local",
    "numtrustedproxies",
)  # fmt: skip
DECISION_ROWS = (
    "Cluster", "Local", "the PROXY fix", "HAProxy HTTP + XFF", "HAProxy → NodePorts",
    "the PROXY fix, numTrustedProxies 1", "the lab and the configs",
)  # fmt: skip
DECISION_COLUMNS = (
    "way", "client IP at the app", "reachability", "failover gap", "load spread",
    "in-cluster callers", "spoofable by a client header", "what must be deployed",
)  # fmt: skip


# --- the build ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once per session with ``mkdocs build --strict``."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


@dataclass
class Page:
    """What the tests read from one built page."""

    path: Path
    url: str  # e.g. "/tutorials/notebooks/07_explore/index.html"
    ids: set[str] = field(default_factory=set)
    toc: list[tuple[str, str]] = field(default_factory=list)  # (href, title)
    headings: dict[str, str] = field(default_factory=dict)  # id -> text
    images: list[dict[str, str]] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (href, class)
    scripts: list[dict[str, str]] = field(default_factory=list)
    stylesheets: list[str] = field(default_factory=list)
    text_in_links: list[str] = field(default_factory=list)


class _Reader(HTMLParser):
    def __init__(self, page: Page) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self._toc: tuple[str, list[str]] | None = None
        self._heading: tuple[str, list[str]] | None = None
        self._skip_depth = 0  # inside a heading's permalink
        self._link_depth = 0
        self._link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if "id" in a:
            self.page.ids.add(a["id"])
        if tag == "a" and "name" in a:
            self.page.ids.add(a["name"])
        cls = a.get("class", "")
        if tag == "a":
            self.page.links.append((a.get("href", ""), cls))
            self._link_depth += 1
            if "md-nav__link" in cls and a.get("href", "").startswith("#"):
                self._toc = (a["href"], [])
            if self._heading and ("headerlink" in cls or "anchor-link" in cls):
                self._skip_depth += 1
        elif re.fullmatch(r"h[1-6]", tag) and "id" in a:
            self._heading = (a["id"], [])
        elif tag == "img":
            self.page.images.append(a)
        elif tag == "script":
            self.page.scripts.append(a)
        elif tag == "link" and "stylesheet" in a.get("rel", ""):
            self.page.stylesheets.append(a.get("href", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._link_depth = max(0, self._link_depth - 1)
            if self._skip_depth:
                self._skip_depth -= 1
            if self._toc is not None:
                self.page.toc.append((self._toc[0], " ".join("".join(self._toc[1]).split())))
                self._toc = None
            if not self._link_depth:
                self.page.text_in_links.append("".join(self._link_text))
                self._link_text = []
        elif re.fullmatch(r"h[1-6]", tag) and self._heading is not None:
            hid, parts = self._heading
            self.page.headings[hid] = " ".join("".join(parts).split()).rstrip("¶").strip()
            self._heading = None

    def handle_data(self, data: str) -> None:
        if self._toc is not None:
            self._toc[1].append(data)
        if self._heading is not None and not self._skip_depth:
            self._heading[1].append(data)
        if self._link_depth:
            self._link_text.append(data)


@functools.cache
def _read(path: Path, site: Path) -> Page:
    rel = path.relative_to(site).as_posix()
    page = Page(path=path, url="/" + rel)
    reader = _Reader(page)
    reader.feed(path.read_text(encoding="utf-8"))
    reader.close()
    return page


@pytest.fixture(scope="session")
def pages(site: Path) -> dict[str, Page]:
    """Every HTML page of the site, by its path relative to the site (``index.html``, ...)."""
    return {p.relative_to(site).as_posix(): _read(p, site) for p in sorted(site.rglob("*.html"))}


NOTEBOOK_PAGES = [
    f"tutorials/notebooks/{p.stem}/index.html" for p in sorted((ROOT / "notebooks").glob("*.ipynb"))
]


def _target(site: Path, page: Page, href: str) -> tuple[Path | None, str]:
    """The file and the fragment an internal href of ``page`` points to."""
    url = urljoin("http://site" + page.url, href)
    parts = urlsplit(url)
    path = unquote(parts.path)
    candidate = site / path.lstrip("/")
    if path.endswith("/") or candidate.is_dir():
        candidate = candidate / "index.html"
    return (candidate if candidate.exists() else None), unquote(parts.fragment)


# --- table of contents and images -----------------------------------------------------------


def test_every_toc_link_resolves_and_keeps_the_words_of_its_heading(pages: dict[str, Page]) -> None:
    broken, renamed = [], []
    for name, page in pages.items():
        for href, title in page.toc:
            target = html.unescape(href[1:])
            if target not in page.ids:
                broken.append(f"{name}: {href} ({title})")
            elif target in page.headings and name != "reference/api/index.html":
                heading = page.headings[target]
                if title != heading:
                    renamed.append(f"{name}: TOC {title!r} for heading {heading!r}")
    assert not broken, "TOC links to missing ids:\n" + "\n".join(broken)
    assert not renamed, "TOC entries that lost words:\n" + "\n".join(renamed)


def test_headings_with_inline_code_keep_it_in_the_toc(pages: dict[str, Page]) -> None:
    # Notebook 01's "Why `172.x` means an "Always" encapsulation" once read "Why means ...".
    page = pages["tutorials/notebooks/01_cluster_snat/index.html"]
    titles = [title for _, title in page.toc]
    assert any("172.x" in t for t in titles), titles
    for name in NOTEBOOK_PAGES:
        assert pages[name].toc, f"{name} has no table of contents"


def test_every_image_has_a_real_alt_text(pages: dict[str, Page]) -> None:
    bad = [
        f"{name}: {img.get('src', '')[:60]}"
        for name, page in pages.items()
        for img in page.images
        if not img.get("alt", "").strip() or img.get("alt") == PLACEHOLDER_ALT
    ]
    assert not bad, "images without a real alt text:\n" + "\n".join(bad)


# --- offline: no CDN, no widget state, no test tags --------------------------------------------


def test_no_page_loads_anything_from_another_host(pages: dict[str, Page], site: Path) -> None:
    remote = re.compile(r"^(https?:)?//", re.IGNORECASE)
    bad = [
        f"{name}: {src}"
        for name, page in pages.items()
        for src in [s.get("src", "") for s in page.scripts] + page.stylesheets
        if remote.match(src)
    ]
    assert not bad, "\n".join(bad)
    for name in NOTEBOOK_PAGES:
        text = (site / name).read_text(encoding="utf-8")
        for cdn in ("unpkg.com", "cdnjs.cloudflare.com", "cdn.jsdelivr.net", "widgetRendererSrc"):
            assert cdn not in text, f"{name} still refers to {cdn}"
        assert "application/vnd.jupyter.widget-state+json" not in text, name
        assert "application/vnd.jupyter.widget-view+json" not in text, name
        assert not re.search(r'class="cell-tag">\s*nbval', text), f"{name} shows an nbval tag"


def test_notebook_07_shows_a_note_and_the_static_picture_instead_of_the_widget(
    site: Path,
) -> None:
    text = (site / "tutorials/notebooks/07_explore/index.html").read_text(encoding="utf-8")
    note = text.index("srcip-widget-note")
    assert "make lab" in text[note : note + 600]
    after = text[note:]
    assert re.search(r'<img [^>]*src="data:image/png;base64,', after), "no static figure"


# --- 404 and the API page -----------------------------------------------------------------


def test_404_uses_relative_paths_that_resolve(site: Path, pages: dict[str, Page]) -> None:
    text = (site / "404.html").read_text(encoding="utf-8")
    assert not re.search(r'\b(href|src|action)="/(?!/)', text), "absolute path in 404.html"
    assert '"base": "/"' not in text
    page = pages["404.html"]
    for href in [s.get("src", "") for s in page.scripts if s.get("src")] + page.stylesheets:
        found, _ = _target(site, page, href)
        assert found is not None, f"404.html: {href} does not exist"


def test_error_page_hook_makes_root_paths_relative() -> None:
    out = error_page.relative('<a href="/x/">x</a><img src="/a.png"><a href="//h/">h</a>'
                              '{"base": "/", "search": "/assets/w.js"}')  # fmt: skip
    assert out == ('<a href="./x/">x</a><img src="./a.png"><a href="//h/">h</a>'
                   '{"base": ".", "search": "./assets/w.js"}')  # fmt: skip


def test_api_page_does_not_show_the_private_summary(site: Path) -> None:
    text = (site / "reference/api/index.html").read_text(encoding="utf-8")
    assert "Result" in text
    assert not re.search(r"(?<!\w)_summary\b", text), "Result's private _summary is shown"


# --- links ----------------------------------------------------------------------------------


def test_every_internal_link_resolves_to_a_file_and_an_id(
    site: Path, pages: dict[str, Page]
) -> None:
    broken = []
    for name, page in pages.items():
        if name == "404.html":
            continue
        for href, _cls in page.links:
            if not href or re.match(r"^[a-z][a-z0-9+.-]*:", href, re.IGNORECASE):
                continue  # http:, https:, mailto:, data:, ...
            if href.startswith("//"):
                continue
            found, fragment = _target(site, page, href)
            if found is None:
                broken.append(f"{name}: {href} (no such file)")
            elif fragment and found.suffix == ".html" and fragment not in _read(found, site).ids:
                broken.append(f"{name}: {href} (no id {fragment!r})")
    assert not broken, f"{len(broken)} broken links:\n" + "\n".join(broken[:50])


def test_fact_ids_link_to_their_rows(site: Path, pages: dict[str, Page]) -> None:
    facts = pages["background/facts/index.html"]
    ids = fact_links.read_facts(ROOT / "docs")
    assert len(ids) > 70
    for fid in ids:
        assert fid.lower() in facts.ids, f"no anchor #{fid.lower()} on the facts page"
    assert {"k1", "k11b", "m17", "c1", "t1", "h10", "e10", "i9", "n5"} <= facts.ids
    assert {"c4-what-the-logs-show", "e-alternatives"} <= facts.ids
    linked = 0
    for name, page in pages.items():
        for href, cls in page.links:
            if "fact-id" not in cls:
                continue
            linked += 1
            found, fragment = _target(site, page, href)
            assert found == site / "background/facts/index.html", (name, href)
            assert fragment in facts.ids, (name, href)
    assert linked > 500
    # the notebooks' fact IDs are linked too
    for name in NOTEBOOK_PAGES[:7]:
        assert any("fact-id" in cls for _, cls in pages[name].links), f"{name}: no fact link"


def test_every_fact_id_mentioned_anywhere_is_on_the_facts_page() -> None:
    facts = fact_links.read_facts(ROOT / "docs")
    known = set(facts) | set(fact_links.SECTIONS)
    mention = re.compile(rf"(?<![\w.])({fact_links.ID_PATTERN})(?!\w)")

    def unknown(text: str) -> set[str]:
        found = set(mention.findall(text)) - known
        # a clause of a fact (K2a: case (a) of K2) is fine when that fact has such a case
        return {f for f in found if not (f[:-1] in facts and f"({f[-1]})" in facts[f[:-1]])}

    missing: dict[str, set[str]] = {}
    sources = [*sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "sim").rglob("*.py"))]
    for path in sources:
        if "notebooks" in path.parts:
            continue
        if found := unknown(path.read_text(encoding="utf-8")):
            missing[str(path.relative_to(ROOT))] = found
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        text = "\n".join("".join(cell["source"]) for cell in nb["cells"])
        if found := unknown(text):
            missing[str(path.relative_to(ROOT))] = found
    assert not missing, f"fact IDs that are not on the facts page: {missing}"


def test_fact_link_hook_skips_code_headings_and_links() -> None:
    fact_links.on_config({"docs_dir": str(ROOT / "docs")})
    src = (
        "<p>K1 and K2a, (FACTS section E), see Background → The story.</p>"
        '<pre><code>K1</code></pre><p><code>K1</code></p><h2 id="k1-x">K1 x</h2>'
        '<p><a href="x">K1</a> ZK1 K1x K99</p><svg><linearGradient></linearGradient></svg>'
    )
    out = fact_links.link_fact_ids(src, "../facts/", "../story/")
    assert out.count('class="fact-id"') == 3
    assert '<a class="fact-id" href="../facts/#k1"' in out
    assert 'href="../facts/#k2"' in out and ">K2a</a>" in out
    assert 'href="../facts/#e-alternatives"' in out
    assert '<a href="../story/">Background → The story</a>' in out
    assert '<pre><code>K1</code></pre><p><code>K1</code></p><h2 id="k1-x">K1 x</h2>' in out
    assert '<a href="x">K1</a> ZK1 K1x K99' in out
    assert "<linearGradient></linearGradient>" in out  # end tags as written


# --- the new pages ----------------------------------------------------------------------------


def test_glossary_has_one_anchor_per_term(pages: dict[str, Page]) -> None:
    glossary = pages["reference/glossary/index.html"]
    missing = [a for a in GLOSSARY_ANCHORS if a not in glossary.ids]
    assert not missing, missing


def _table_rows(text: str) -> tuple[list[str], list[str]]:
    """Header cells and first cells of the first table in ``text`` (HTML), as plain text."""
    table = text[text.index("<table>") : text.index("</table>")]
    strip = lambda cell: " ".join(html.unescape(re.sub(r"<[^>]+>", "", cell)).split())  # noqa: E731
    header = [strip(c) for c in re.findall(r"<th[^>]*>(.*?)</th>", table, re.DOTALL)]
    body = table[table.index("<tbody>") :]
    rows = re.findall(r"<tr>\s*<td[^>]*>(.*?)</td>", body, re.DOTALL)
    return header, [strip(r) for r in rows]


def test_decision_table_has_the_agreed_rows_and_columns(site: Path) -> None:
    text = (site / "background/decision-table/index.html").read_text(encoding="utf-8")
    header, rows = _table_rows(text)
    assert tuple(header) == DECISION_COLUMNS
    assert tuple(rows) == DECISION_ROWS
    for command in ("srcip-lab run cluster --node-down node-3@20",
                    "srcip-lab run haproxy_nodeports --node-down node-3@20"):  # fmt: skip
        assert command in html.unescape(re.sub(r"<[^>]+>", "", text)), command


def test_experiments_page_has_its_three_groups(pages: dict[str, Page]) -> None:
    page = pages["tutorials/experiments/index.html"]
    h2 = {h for h in page.headings.values()}
    assert {"Surprising", "Useful", "Tutorial"} <= h2
    for title in (
        "The PROXY fix (HAProxy in front) doubles the failover gap",
        "A recovered node resets your long connections",
        "Tune memberlist timings",
        "HAProxy → NodePorts instead of the VIP",
    ):
        assert title in h2, title


def test_new_pages_are_linked_from_the_home_page_and_the_tutorials_index(
    site: Path, pages: dict[str, Page]
) -> None:
    wanted = {
        "reference/glossary/index.html",
        "background/facts/index.html",
        "background/decision-table/index.html",
        "tutorials/experiments/index.html",
        "background/story/index.html",
    }
    for name in ("index.html", "tutorials/index.html"):
        page = pages[name]
        targets = set()
        for href, _ in page.links:
            found, _fragment = _target(site, page, href)
            if found is not None:
                targets.add(found.relative_to(site).as_posix())
        assert wanted <= targets, f"{name} does not link {sorted(wanted - targets)}"


def test_the_story_is_a_link_wherever_it_is_named(pages: dict[str, Page], site: Path) -> None:
    for name, page in pages.items():
        text = re.sub(r"<[^>]+>", "", (site / name).read_text(encoding="utf-8"))
        named = html.unescape(text).count("Background → The story")
        linked = sum("Background → The story" in t for t in page.text_in_links)
        assert named == linked, f"{name}: 'Background → The story' is not a link"


# --- in a real browser ------------------------------------------------------------------------


def test_notebook_07_page_in_headless_chromium_offline(site: Path, tmp_path: Path) -> None:
    import browser

    if browser.chromium() is None:
        reason = "Debian's chromium is not installed (apt-get install chromium; .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the browser test must run: {reason}")
        pytest.skip(reason)
    from PIL import Image, ImageStat

    with browser.serve(site) as base, browser.Browser(width=1280, height=900) as chrome:
        chrome.open(base + "tutorials/notebooks/07_explore/")
        state = chrome.evaluate(
            """(() => {
              // the static picture: the first output image after the note for the widget
              const note = document.querySelector('.srcip-widget-note');
              const imgs = [...document.querySelectorAll('.jp-RenderedImage img')];
              const img = note && imgs.find(
                i => note.compareDocumentPosition(i) & Node.DOCUMENT_POSITION_FOLLOWING);
              if (!img) return {found: false, note: !!note, alts: imgs.map(i => i.alt)};
              img.scrollIntoView({block: 'center'});
              const r = img.getBoundingClientRect();
              return {found: true, complete: img.complete, natural: img.naturalWidth,
                      naturalHeight: img.naturalHeight, x: r.x + scrollX, y: r.y + scrollY,
                      w: r.width, h: r.height,
                      visible: getComputedStyle(img).visibility === 'visible'
                               && r.width > 0 && r.height > 0,
                      note: note ? note.offsetHeight : 0,
                      zoomable: img.classList.contains('srcip-zoomable')};
            })()"""
        )
        assert state["found"], f"no static picture of the default state; images: {state}"
        assert state["complete"] and state["natural"] > 0, state
        assert state["visible"] and state["w"] > 300 and state["h"] > 100, state
        assert state["note"] > 0, "the note that replaces the widget is not shown"
        clip = {"x": state["x"], "y": state["y"], "width": state["w"], "height": state["h"]}
        shots = ROOT / ".cache" / "screenshots"
        png = chrome.screenshot(shots / "07_explore-static-picture.png", clip)
        chrome.screenshot(shots / "07_explore-viewport.png")
        # The figure region is drawn: not blank, with the plot's lines and labels.
        region = Image.open(io.BytesIO(png)).convert("L")
        stat = ImageStat.Stat(region)
        dark = sum(region.histogram()[:200]) / (region.width * region.height)
        assert stat.stddev[0] > 10 and dark > 0.01, (stat.stddev, dark)
        # The lightbox opens the same picture full size, and Escape closes it.
        assert state["zoomable"]
        opened = chrome.evaluate(
            """(() => {
              const note = document.querySelector('.srcip-widget-note');
              const img = [...document.querySelectorAll('.jp-RenderedImage img')].find(
                i => note.compareDocumentPosition(i) & Node.DOCUMENT_POSITION_FOLLOWING);
              img.click();
              const big = document.querySelector('.srcip-lightbox img');
              return big ? big.naturalWidth : -1;
            })()"""
        )
        assert opened == state["natural"]
        chrome.evaluate("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'}))")
        assert chrome.evaluate("document.querySelector('.srcip-lightbox') === null")
        requested = list(chrome.requested)
        blocked = list(chrome.blocked)
    assert requested, "the browser's requests were not seen"
    assert not blocked, f"the page asked other hosts for: {blocked}"
    for url in requested:
        host = urlsplit(url).hostname or ""
        assert host in browser.LOOPBACK or url.startswith("data:"), url
