"""The notebooks' links work on the docs site, and terms are linked to the glossary on first use.

mkdocs-jupyter renders a notebook's Markdown to HTML without rewriting or checking its links
(``mkdocs build --strict`` sees none of them), so a ``.md`` link from a notebook is broken on
the site. The notebooks therefore link by page URL, relative to their own page
``tutorials/notebooks/<name>/``: ``../../../reference/glossary/#dra``. This test resolves each
one to the page's source in ``docs/`` (or another notebook) and checks its anchor there.
"""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

ROOT = Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
DOCS = ROOT / "docs"

GLOSSARY_ANCHORS = frozenset(
    {
        "dra",
        "xff",
        "snat",
        "dnat",
        "masquerade",
        "conntrack",
        "vip",
        "arp-garp",
        "healthchecknodeport",
        "proxy-v1-v2",
        "tlv",
        "local-command",
        "cluster-local",
        "numtrustedproxies",
    }
)
"""The glossary's anchors the notebooks may link to (``docs/reference/glossary.md``)."""

PENDING = {
    "reference/glossary.md",
    "background/facts.md",
    "background/decision-table.md",
    "tutorials/experiments.md",
}
"""Pages written by the docs half of issue 12; their links are checked once they exist."""

FIRST_USE = {
    "dra": r"\bDRA\b",
    "xff": r"\bXFF\b|X-Forwarded-For",
    "snat": r"\bSNAT",
    "dnat": r"\bDNAT",
    "masquerade": r"[Mm]asquerad|MASQUERADE",
    "conntrack": r"(?i)\bconntrack\b",
    "vip": r"\bVIP\b",
    "arp-garp": r"\bG?ARPs?\b|gratuitous ARP",
    "healthchecknodeport": r"healthCheckNodePort",
    "proxy-v1-v2": r"PROXY (protocol|v[12]|header)",
    "tlv": r"\bTLVs?\b",
    "local-command": r"\bLOCAL\b",
    "cluster-local": r"externalTrafficPolicy|`Cluster`|`Local`",
    "numtrustedproxies": r"numTrustedProxies",
}
"""Glossary anchor -> how the term appears: a notebook links it at or before its first use
(in its Markdown or in an output, such as the ``DRA`` of a trace)."""

_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _cells(path: Path) -> list[dict[str, object]]:
    return list(json.loads(path.read_text(encoding="utf-8"))["cells"])


def _text(cell: dict[str, object], key: str = "source") -> str:
    value = cell.get(key, "")
    return "".join(value) if isinstance(value, list) else str(value)


def _links(path: Path) -> list[str]:
    return [
        link
        for cell in _cells(path)
        if cell["cell_type"] == "markdown"
        for link in _LINK.findall(_text(cell))
        if not link.startswith(("http://", "https://", "#", "mailto:"))
    ]


def _source_of(path: Path, link: str) -> tuple[str, str]:
    """``(docs-relative source, anchor)`` of a page-URL link from notebook ``path``."""
    page, _, anchor = link.partition("#")
    assert not page.endswith((".md", ".ipynb")), f"{link}: links from a notebook use page URLs"
    assert page.endswith("/"), f"{link}: a page URL ends with '/'"
    here = f"tutorials/notebooks/{path.stem}/"
    target = posixpath.normpath(posixpath.join(here, page))
    assert not target.startswith(".."), f"{link}: leaves the site"
    if target.startswith("tutorials/notebooks/"):
        return f"{target}.ipynb", anchor
    for candidate in (f"{target}.md", f"{target}/index.md"):
        if (DOCS / candidate).is_file() or candidate in PENDING:
            return candidate, anchor
    return f"{target}.md", anchor


def _anchors(source: str) -> set[str]:
    text = (DOCS / source).read_text(encoding="utf-8")
    ids = set(re.findall(r"""\{[^}]*#([\w-]+)[^}]*\}""", text))
    ids |= set(re.findall(r"""id=["']([\w-]+)["']""", text))
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*(?:\{[^}]*\})?$", text, re.MULTILINE):
        plain = re.sub(r"[`*_]|\[([^]]*)\]\([^)]*\)", r"\1", heading)
        ids.add(slugify(plain, "-"))
    return ids


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_links_resolve_to_pages_and_anchors(path: Path) -> None:
    for link in _links(path):
        source, anchor = _source_of(path, link)
        if source.endswith(".ipynb"):
            assert (ROOT / "notebooks" / Path(source).name).is_file(), link
            continue
        if source in PENDING and not (DOCS / source).is_file():
            continue  # test_pending_pages_exist reports these
        assert (DOCS / source).is_file(), f"{path.name}: {link} -> docs/{source} does not exist"
        if anchor:
            assert anchor in _anchors(source), f"{path.name}: {link}: no #{anchor} in {source}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_glossary_links_use_the_agreed_anchors(path: Path) -> None:
    used = {link.partition("#")[2] for link in _links(path) if "reference/glossary/" in link}
    assert used - {""} <= GLOSSARY_ANCHORS, sorted(used - GLOSSARY_ANCHORS)
    assert set(FIRST_USE) == GLOSSARY_ANCHORS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_terms_are_linked_on_first_use(path: Path) -> None:
    seen: set[str] = set()
    for number, cell in enumerate(_cells(path)):
        text = _text(cell)
        if cell["cell_type"] == "markdown":
            seen |= {a for a in FIRST_USE if f"reference/glossary/#{a}" in text}
        outputs = cell.get("outputs", [])
        for out in outputs if isinstance(outputs, list) else []:
            text += _text(out, "text") + str(out.get("data", {}).get("text/plain", ""))
        for anchor, term in FIRST_USE.items():
            if re.search(term, text):
                assert anchor in seen, f"{path.name}, cell {number}: #{anchor} used, not linked yet"


def test_pending_pages_exist() -> None:
    missing = sorted(p for p in PENDING if not (DOCS / p).is_file())
    if missing:
        pytest.skip(f"written by the docs half of issue 12, not here yet: {', '.join(missing)}")
