"""MkDocs hook: draw the home page's path picture at build time, so it never goes stale.

``docs/index.md`` shows ``assets/path-addresses.png``: the story's three setups drawn by
:func:`sim.viz.paths.main` (the same picture as ``python -m sim.viz.paths OUT.png`` and
notebook 00). Nothing is committed: ``on_files`` draws it with the current code into a
temporary file and adds it to the site as a generated file, before MkDocs validates the links
that point to it.

Loaded by ``mkdocs.yml`` (``hooks:``); docs build only, not part of the package.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

PATHS_PICTURE = "assets/path-addresses.png"

_tmp = tempfile.TemporaryDirectory(prefix="srcip-docs-figures-")


def on_files(files: Files, config: Any, **_: Any) -> Files:
    from sim.viz.paths import main

    out = Path(_tmp.name) / "path-addresses.png"
    if main([str(out)]) != 0:
        raise RuntimeError("sim.viz.paths could not draw the home page's picture")
    existing = files.get_file_from_path(PATHS_PICTURE)
    if existing is not None:
        files.remove(existing)
    files.append(File.generated(config, PATHS_PICTURE, abs_src_path=str(out)))
    return files
