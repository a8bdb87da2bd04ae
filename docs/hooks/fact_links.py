"""MkDocs hook: every fact ID on the site links to its row on the facts page.

The facts page (``docs/background/facts.md``) lists each fact in a table row whose first cell is
its ID (``| K1 | ... |``). This hook

* reads those IDs from the page's source (``on_config``), so that only IDs that exist are linked;
* gives each row an anchor, the ID in lower case (``#k1``, ``#k11b``), in ``on_page_markdown``
  (before the page is rendered, so that MkDocs' own link validation sees the anchors);
* turns every fact ID in every rendered page, Markdown pages and notebooks alike, into a link to
  its row (``on_page_content``), relative to the page, with the fact's summary as the link's
  title. Only text is touched: not code (``code``, ``pre``, ``kbd``, ``samp``), not headings,
  not the text of existing links, scripts or styles, and no attribute.

Two names that look like fact IDs are not facts and link to their sections instead: ``C4`` is
the derived table "What the logs show" (``#c4-what-the-logs-show``), and "section E" (as in
"FACTS section E") is the table of alternatives (``#e-alternatives``). A clause of a fact
(``K2a``, ``K2b``: K2's cases (a) and (b)) links to its fact's row. And the name of the story
page, "Background → The story", links to that page wherever it is not a link already.

Loaded by ``mkdocs.yml`` (``hooks:``); docs build only, not part of the package.
"""

from __future__ import annotations

import html as htmllib
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from mkdocs.utils import get_relative_url

FACTS_PAGE = "background/facts.md"

# A fact ID: prefix letter, one or two digits, an optional lower-case suffix (K11b).
ID_PATTERN = r"[KNMEIHCT]\d{1,2}[a-z]?"
_ROW = re.compile(rf"^\|\s*({ID_PATTERN})\s*\|(.*?)\|", re.MULTILINE)
_MENTION = re.compile(
    rf"(?<![\w.])({ID_PATTERN})(?!\w)|(?<!\w)((?:FACTS )?section E)(?![\w.])"
    r"|(Background → The story)"
)
STORY_PAGE = "background/story.md"

# Fact-like names that are sections of the facts page, not rows.
SECTIONS = {"C4": "c4-what-the-logs-show"}
SECTION_E = "e-alternatives"

_SKIP = {"a", "code", "pre", "kbd", "samp", "script", "style", "textarea", "title", "svg",
         "h1", "h2", "h3", "h4", "h5", "h6", "button", "select", "option"}  # fmt: skip
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}  # fmt: skip

_facts: dict[str, str] = {}


def _plain(markdown: str) -> str:
    """A table cell's Markdown as plain text."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = re.sub(r"[`*]", "", text)
    return " ".join(text.split())


def _title(text: str) -> str:
    """A link title: the fact's summary, cut to about two lines of a tooltip."""
    text = text if len(text) <= 160 else text[:157].rstrip() + "..."
    return htmllib.escape(text)


def read_facts(docs_dir: str | Path) -> dict[str, str]:
    """Fact ID -> its summary as plain text, read from the facts page's tables."""
    source = (Path(docs_dir) / FACTS_PAGE).read_text(encoding="utf-8")
    return {m.group(1): _plain(m.group(2)) for m in _ROW.finditer(source)}


def anchor(fact_id: str) -> str:
    """The anchor of a fact's row, or of the section a fact-like name stands for."""
    return SECTIONS.get(fact_id, fact_id.lower())


def on_config(config: Any, **_: Any) -> Any:
    _facts.clear()
    _facts.update(read_facts(config["docs_dir"]))
    return config


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if page.file.src_uri != FACTS_PAGE:
        return markdown

    def row(match: re.Match[str]) -> str:
        fid = match.group(1)
        cell = f'<a class="fact-anchor" id="{anchor(fid)}" href="#{anchor(fid)}">{fid}</a>'
        return match.group(0).replace(fid, cell, 1)

    return _ROW.sub(row, markdown)


class _Linker(HTMLParser):
    """Re-emits an HTML fragment as it was, with fact IDs in its text turned into links."""

    def __init__(self, base: str, story: str = "") -> None:
        super().__init__(convert_charrefs=False)
        self.base = base
        self.story = story
        self.out: list[str] = []
        self.skipping: dict[str, int] = {}

    def _link(self, match: re.Match[str]) -> str:
        fid, section, story = match.group(1), match.group(2), match.group(3)
        if story:
            return f'<a href="{self.story}">{story}</a>' if self.story else story
        if section:
            href, title = f"{self.base}#{SECTION_E}", "Alternatives the seed did not consider"
            return f'<a class="fact-id" href="{href}" title="{title}">{section}</a>'
        if fid in SECTIONS:
            title = "What the logs show (derived table)"
        elif fid in _facts:
            title = f"{fid}: {_facts[fid]}"
        elif fid[:-1] in _facts and f"({fid[-1]})" in _facts[fid[:-1]]:  # K2a: K2's case (a)
            title = f"{fid[:-1]} ({fid[-1]}): {_facts[fid[:-1]]}"
            fid, shown = fid[:-1], fid
            href = f"{self.base}#{anchor(fid)}"
            return f'<a class="fact-id" href="{href}" title="{_title(title)}">{shown}</a>'
        else:
            return fid
        href = f"{self.base}#{anchor(fid)}"
        return f'<a class="fact-id" href="{href}" title="{_title(title)}">{fid}</a>'

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.out.append(self.get_starttag_text() or "")
        if tag in _SKIP and tag not in _VOID:
            self.skipping[tag] = self.skipping.get(tag, 0) + 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.out.append(self.get_starttag_text() or "")

    def parse_endtag(self, i: int) -> int:
        # Keep the end tag as written (HTMLParser lower-cases the name it reports).
        end = self.rawdata.find(">", i + 1)
        self._end_text = self.rawdata[i : end + 1] if end >= 0 else ""
        return super().parse_endtag(i)  # type: ignore[misc,no-any-return]

    def handle_endtag(self, tag: str) -> None:
        self.out.append(getattr(self, "_end_text", "") or f"</{tag}>")
        self._end_text = ""
        if self.skipping.get(tag):
            self.skipping[tag] -= 1

    def handle_data(self, data: str) -> None:
        if any(self.skipping.values()):
            self.out.append(data)
        else:
            self.out.append(_MENTION.sub(self._link, data))

    def handle_entityref(self, name: str) -> None:
        self.out.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self.out.append(f"&#{name};")

    def handle_comment(self, data: str) -> None:
        self.out.append(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self.out.append(f"<!{decl}>")

    def handle_pi(self, data: str) -> None:
        self.out.append(f"<?{data}>")

    def unknown_decl(self, data: str) -> None:
        self.out.append(f"<![{data}]>")


def link_fact_ids(html: str, base: str, story: str = "") -> str:
    """``html`` with every fact ID in its text linked to ``base#<id>`` (and the story page's
    name to ``story``, when given)."""
    linker = _Linker(base, story)
    linker.feed(html)
    linker.close()  # flushes text held back at the end (after a bare "<" or "&")
    return "".join(linker.out)


def on_page_content(html: str, page: Any, files: Any, **_: Any) -> str:
    if not _facts:
        return html
    facts = files.get_file_from_path(FACTS_PAGE)
    base = "" if page.file.src_uri == FACTS_PAGE else get_relative_url(facts.url, page.url)
    story = files.get_file_from_path(STORY_PAGE)
    story_url = get_relative_url(story.url, page.url) if story is not None else ""
    return link_fact_ids(html, base, story_url)
