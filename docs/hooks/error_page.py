"""MkDocs hook: ``404.html`` with relative links, so that it works wherever the site is put.

Without ``site_url`` MkDocs renders the error page with absolute paths (``/assets/...``,
``/tutorials/``), assuming the site is served from the root of its host. Opened from a
directory, from ``file://``, or on a host under a path prefix, such a page has no styles and
its links lead nowhere. The error page lives at the top of the site, so every path becomes
relative to the top (``assets/...``), and Material's ``__config`` (``base``, the search worker)
likewise. The price, as for any relative page: a server that shows ``404.html`` for a missing
URL deep in the tree (``/a/b/c``) resolves its links from there; this site names no host, so no
``site_url`` could fix both.

Loaded by ``mkdocs.yml`` (``hooks:``); docs build only, not part of the package.
"""

from __future__ import annotations

import re
from typing import Any

_ABSOLUTE_ATTR = re.compile(r'\b(href|src|action)="/(?!/)')
_CONFIG_BASE = re.compile(r'"base": "/"')
_CONFIG_SEARCH = re.compile(r'"search": "/(?!/)')


def relative(html: str) -> str:
    """``html`` of a page at the top of the site with its root-absolute paths made relative."""
    html = _ABSOLUTE_ATTR.sub(lambda m: f'{m.group(1)}="./', html)
    html = _CONFIG_BASE.sub('"base": "."', html)
    return _CONFIG_SEARCH.sub('"search": "./', html)


def on_post_template(output: str, template_name: str, **_: Any) -> str:
    if template_name != "404.html":
        return output
    return relative(output)
