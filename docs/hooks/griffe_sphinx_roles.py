"""Griffe extension for the API reference: render Sphinx roles in docstrings as inline code.

The package's docstrings use Sphinx roles (``:class:`ProxyHeader```, ``:func:`~sim.simulate```)
so that they read well in ``help()`` and IDEs. mkdocstrings renders Markdown, where such a role
would appear verbatim; this extension turns each one into inline code (``ProxyHeader``,
``simulate``). Loaded by ``mkdocs.yml`` (plugins: mkdocstrings: handlers: python: options:
extensions); docs build only, not part of the package.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:mod|class|func|meth|attr|data|exc|obj|const|term):`(~?)([^`]+)`")


def _replace(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2)
    # ":class:`text <target>`" shows "text"; "~a.b.c" shows "c", like Sphinx.
    explicit = re.fullmatch(r"(.+?)\s*<[^>]+>", target)
    if explicit:
        return f"`{explicit.group(1)}`"
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`target``` to ```target``` in every docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ":`" in obj.docstring.value:
            obj.docstring.value = _ROLE.sub(_replace, obj.docstring.value)
