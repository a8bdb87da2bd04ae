"""MkDocs hook: make the notebooks rendered by mkdocs-jupyter work as pages of this site, offline.

mkdocs-jupyter renders each notebook with nbconvert and builds the page's table of contents
separately, from a Markdown conversion of the notebook. The two disagree, and the page pulls
scripts from CDNs at view time. This hook post-processes every rendered notebook
(``on_page_content``, after mkdocs-jupyter's render):

* **Table of contents from the page itself.** The TOC is rebuilt from the headings nbconvert
  wrote, with their ids and all their words: mkdocs-jupyter's own TOC drops the words of inline
  code (``Why `172.x` means...`` became "Why means...") and links to ids that do not exist.
  Duplicate heading ids get a ``_1``, ``_2`` suffix, as nbconvert's anchor links do not.
* **No script from a CDN.** The widget renderer (an unpinned
  ``@jupyter-widgets/html-manager@*`` from a CDN), the saved widget state, the MathJax loader
  (its URL is empty here) and the Mermaid loader (a CDN import, used only when a notebook has a
  Mermaid diagram; none has, and a page that did would fail the build here) are removed.
  A widget's output (an empty box without the renderer) becomes a note that points to the
  notebook's static rendering of the same state, the next section of the page.
* **Tags stay in the notebook.** The ``nbval-*`` cell tags are test instructions, not content:
  their badge is removed.
* **Real alt text.** nbconvert gives every output image the alt text "No description has been
  provided for this image". Each gets one from its notebook cell instead: the cell's
  ``metadata["alt"]`` when set (a string, or a list with one per image), else the first comment
  line of the cell's code, else the title the code gives the figure, else the call that draws
  it; always after the nearest preceding heading, so a reader knows which figure it is.

Loaded by ``mkdocs.yml`` (``hooks:``); docs build only, not part of the package.
"""

from __future__ import annotations

import html as htmllib
import json
import logging
import re
from pathlib import Path
from typing import Any

from markdown.extensions.toc import nest_toc_tokens
from mkdocs.structure.toc import get_toc

log = logging.getLogger("mkdocs.hooks.notebooks")

PLACEHOLDER_ALT = "No description has been provided for this image"

_HEADING = re.compile(r"<h([1-6])\b([^>]*)>(.*?)</h\1>", re.DOTALL)
_ID_ATTR = re.compile(r'\bid="([^"]*)"')
_TAGS = re.compile(r"<[^>]+>")
_ANCHOR_LINK = re.compile(r'<a class="anchor-link"[^>]*>.*?</a>', re.DOTALL)

# Scripts nbconvert's lab template and mkdocs-jupyter put on the page that would load code from
# a CDN (or, for MathJax, from an empty URL), and the widget state only the renderer reads.
_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.DOTALL)

# One widget output: the output-area child with its "Out[n]:" prompt and the element that holds
# the widget-view script (the text/plain fallback of the widget is not rendered).
_WIDGET_OUTPUT = re.compile(
    r'<div class="jp-OutputArea-child[^"]*">\s*'
    r'(?:<div class="jp-OutputPrompt[^"]*">[^<]*</div>\s*)?'
    r'<div class="jupyter-widgets[^"]*"[^>]*>\s*'
    r"(?:<script\b[^>]*>.*?</script>\s*)+"
    r"</div>\s*</div>",
    re.DOTALL,
)

# The tag badge nbconvert draws above a tagged cell's input.
_CELLTOOLBAR = re.compile(
    r'<div class="celltoolbar">\s*<div class="button_container tags_button_container">\s*'
    r'<span class="tag-container">(.*?)</span>\s*</div>\s*</div>\s*',
    re.DOTALL,
)
_CELL_TAG = re.compile(r'<span class="cell-tag">([^<]*)</span>\s*')

_IMG = re.compile(r"<img\b[^>]*>")
_ALT = re.compile(r'\salt="([^"]*)"')
_SRC = re.compile(r'\ssrc="([^"]*)"')


def _text(fragment: str) -> str:
    """The plain text of an HTML fragment, whitespace collapsed (entities decoded)."""
    return " ".join(htmllib.unescape(_TAGS.sub("", fragment)).split())


def _is_notebook(page: Any) -> bool:
    return str(page.file.src_uri).endswith(".ipynb")


# --- table of contents ----------------------------------------------------------------------


def _toc_and_unique_ids(content: str) -> tuple[str, list[dict[str, Any]]]:
    """Give every heading a unique id and return the TOC tokens read from the headings."""
    seen: dict[str, int] = {}
    tokens: list[dict[str, Any]] = []

    def fix(match: re.Match[str]) -> str:
        level, attrs, inner = int(match.group(1)), match.group(2), match.group(3)
        found = _ID_ATTR.search(attrs)
        if not found:
            return match.group(0)
        old = found.group(1)
        new = old
        if old in seen:
            seen[old] += 1
            new = f"{old}_{seen[old]}"
            attrs = attrs.replace(f'id="{old}"', f'id="{new}"')
            inner = inner.replace(f'href="#{old}"', f'href="#{new}"')
        else:
            seen[old] = 0
        seen.setdefault(new, 0)
        name = _text(_ANCHOR_LINK.sub("", inner)).rstrip("¶").strip()
        tokens.append({"level": level, "id": new, "name": htmllib.escape(name), "children": []})
        return f"<h{level}{attrs}>{inner}</h{level}>"

    content = _HEADING.sub(fix, content)
    return content, nest_toc_tokens(tokens)


# --- scripts and widgets --------------------------------------------------------------------


def _strip_scripts(content: str, page: Any) -> str:
    def keep(match: re.Match[str]) -> str:
        attrs, body = match.group(1), match.group(2)
        if "widgetRendererSrc" in body or "application/vnd.jupyter.widget-state+json" in attrs:
            return ""
        if 'src=""' in attrs or "text/x-mathjax-config" in attrs:
            return ""
        if "mermaid" in body:
            if 'class="jp-Mermaid' in content:
                log.warning(
                    "%s has a Mermaid diagram, whose renderer loads from a CDN: the site does not "
                    "bundle it; draw the diagram as a figure instead",
                    page.file.src_uri,
                )
            return ""
        return match.group(0)

    return _SCRIPT.sub(keep, content)


def _replace_widgets(content: str) -> str:
    def note(match: re.Match[str]) -> str:
        following = _HEADING.search(content, match.end())
        found = _ID_ATTR.search(following.group(2)) if following else None
        where = (
            f' Its starting state is drawn without widgets in <a href="#{found.group(1)}">'
            f"{_text(_ANCHOR_LINK.sub('', following.group(3))).rstrip('¶').strip()}</a>."
            if following and found
            else ""
        )
        return (
            '<div class="jp-OutputArea-child"><div class="jp-OutputArea-output '
            'srcip-widget-note"><p><strong>Interactive widget.</strong> It runs in Jupyter '
            "(<code>make lab</code>), not on this static site." + where + "</p></div></div>"
        )

    return _WIDGET_OUTPUT.sub(note, content)


def _strip_test_tags(content: str) -> str:
    def keep(match: re.Match[str]) -> str:
        tags = [t for t in _CELL_TAG.findall(match.group(1)) if not t.startswith("nbval")]
        if not tags:
            return ""
        spans = "".join(f'<span class="cell-tag">{t}</span>' for t in tags)
        return match.group(0).replace(match.group(1), spans)

    return _CELLTOOLBAR.sub(keep, content)


# --- alt text -------------------------------------------------------------------------------

_MD_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_MD_INLINE = re.compile(r"\[([^\]]*)\]\([^)]*\)|[`*_]")
_COMMENT = re.compile(r"^\s*#(?![!%])\s*(?!noqa|type:|%%)(.+)$", re.MULTILINE)
_TITLE = re.compile(r"""(?:set_title|suptitle|title)\s*[(=]\s*[rf]?["']([^"'{}]+)["']""")


def _md_plain(text: str) -> str:
    return " ".join(_MD_INLINE.sub(lambda m: m.group(1) or "", text).split())


def _describe(source: str) -> str:
    """What the code of a figure cell says about its figure."""
    comment = _COMMENT.search(source)
    if comment:
        return comment.group(1).strip().rstrip(".:")
    title = _TITLE.search(source)
    if title:
        return title.group(1).strip()
    lines = [
        line.strip()
        for line in source.splitlines()
        if line.strip() and not re.match(r"(_ ?=|%|import |from |#)", line.strip())
    ]
    # The plotting call: a draw_/plot_/show_ function, else any call not on plt, ax or fig.
    drawing = [line for line in lines if re.search(r"\b(?:draw|plot|show)_\w+\(", line)]
    other = [line for line in lines if not re.match(r"(plt|ax|axes|fig)\b", line)]
    chosen = drawing or other or lines
    call = chosen[0] if chosen else "a figure"
    if len(call) > 80:
        call = call[:77] + "..."
    return f"the figure drawn by {call}"


def _alt_texts(notebook: Path) -> dict[str, str]:
    """Image data (base64, no whitespace) -> alt text, for every image output of the notebook."""
    try:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    heading = notebook.stem.replace("_", " ")
    alts: dict[str, str] = {}
    for cell in nb.get("cells", []):
        source = "".join(cell.get("source", []))
        if cell.get("cell_type") == "markdown":
            found = _MD_HEADING.findall(source)
            if found:
                heading = _md_plain(found[-1])
            continue
        images = [
            "".join(data).replace("\n", "")
            for out in cell.get("outputs", [])
            for mime, data in out.get("data", {}).items()
            if mime in ("image/png", "image/jpeg", "image/gif")
        ]
        if not images:
            continue
        given = cell.get("metadata", {}).get("alt")
        for k, data in enumerate(images):
            if isinstance(given, list) and k < len(given):
                alts[data] = str(given[k])
                continue
            text = given if isinstance(given, str) else f"{heading}: {_describe(source)}"
            if len(images) > 1:
                text += f" (figure {k + 1} of {len(images)})"
            alts[data] = text
    return alts


def _fix_alts(content: str, notebook: Path) -> str:
    alts = _alt_texts(notebook)
    headings = [(m.start(), m) for m in _HEADING.finditer(content)]

    def fix(match: re.Match[str]) -> str:
        tag = match.group(0)
        alt = _ALT.search(tag)
        if alt and alt.group(1).strip() and alt.group(1) != PLACEHOLDER_ALT:
            return tag
        src = _SRC.search(tag)
        data = src.group(1).split(",", 1)[-1] if src else ""
        text = alts.get(data)
        if text is None:
            before = [m for pos, m in headings if pos < match.start()]
            where = _text(_ANCHOR_LINK.sub("", before[-1].group(3))) if before else notebook.stem
            text = f"{where.rstrip('¶').strip()}: output image"
        value = htmllib.escape(text, quote=True)
        if alt:
            return tag.replace(alt.group(0), f' alt="{value}"')
        return tag.replace("<img", f'<img alt="{value}"', 1)

    return _IMG.sub(fix, content)


# --- the hook -------------------------------------------------------------------------------


def on_page_content(html: str, page: Any, **_: Any) -> str:
    if not _is_notebook(page):
        return html
    html = _strip_scripts(html, page)
    html = _replace_widgets(html)
    html = _strip_test_tags(html)
    html = _fix_alts(html, Path(page.file.abs_src_path))
    html, tokens = _toc_and_unique_ids(html)
    page.toc = get_toc(tokens)
    return html
