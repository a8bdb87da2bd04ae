"""Re-execute tutorial notebooks and stamp them with the figure code they were drawn with.

nbval compares a notebook's text outputs but not its images, so a change to a plotting
function would leave stale pictures in the committed notebooks (and on the docs site) without
any test noticing. Each notebook therefore carries, in ``metadata.srcip_lab``:

* ``figures_source_sha256``: the SHA-256 of the source of every :mod:`sim.viz` function, class
  and constant the notebook's code uses, followed through the definitions they use in turn;
* ``figures_functions``: those definitions by qualified name, each with the first 12 hex digits
  of its own hash, so a failing check can say which one changed.

:func:`figures_hash` computes it from a notebook's code cells and the current sources; a test
compares it with the stamp. ``python -m sim.viz.renotebook notebooks/NN_*.ipynb`` (or ``make
notebooks``) executes each notebook in its own directory, drops the cells' execution timing
(``metadata.execution``: the committed notebooks carry none), stamps the hash and writes the
notebook back, keeping every cell id.
"""

from __future__ import annotations

import ast
import hashlib
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["PACKAGE", "figure_definitions", "figures_hash", "main", "renotebook", "stamp"]

PACKAGE = "sim.viz"
"""The package whose code draws the notebooks' figures."""
_DIR = Path(__file__).resolve().parent
_MAGIC = re.compile(r"^\s*[%!].*$", re.MULTILINE)

_Key = tuple[str, str]  # (module, top-level name)


@cache
def _module(name: str) -> tuple[dict[str, str], dict[str, _Key], dict[str, ast.AST]]:
    """A :mod:`sim.viz` module's top-level definitions: ``(sources, imports, nodes)``."""
    path = _DIR / f"{name}.py"
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    sources: dict[str, str] = {}
    nodes: dict[str, ast.AST] = {}
    for node in tree.body:
        names: list[str] = []
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names = [node.name]
        elif isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names = [node.target.id]
        for n in names:
            sources[n] = ast.get_source_segment(text, node) or ""
            nodes[n] = node
    return sources, _imports(tree), nodes


def _imports(tree: ast.AST) -> dict[str, _Key]:
    """Names bound by ``from sim.viz.X import a`` / ``from sim.viz import X`` anywhere in
    ``tree``: local name -> (module, name), with ``""`` as the name for a whole module."""
    found: dict[str, _Key] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                local = alias.asname or alias.name
                if node.module.startswith(f"{PACKAGE}."):
                    found[local] = (node.module.removeprefix(f"{PACKAGE}."), alias.name)
                elif node.module == PACKAGE:
                    found[local] = (alias.name, "")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(f"{PACKAGE}.") and alias.asname:
                    found[alias.asname] = (alias.name.removeprefix(f"{PACKAGE}."), "")
    return found


def _references(node: ast.AST, imports: Mapping[str, _Key], module: str) -> set[_Key]:
    """The :mod:`sim.viz` definitions ``node`` names: bare names, ``mod.attr`` and its own
    function-level imports."""
    local = {**imports, **_imports(node)}
    own, _, _ = _module(module) if module else ({}, {}, {})
    found: set[_Key] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            if sub.id in local and local[sub.id][1]:
                found.add(local[sub.id])
            elif sub.id in own:
                found.add((module, sub.id))
        elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name):
            target = local.get(sub.value.id)
            if target is not None and not target[1]:
                found.add((target[0], sub.attr))
    return found


def _exists(key: _Key) -> bool:
    return (_DIR / f"{key[0]}.py").is_file() and key[1] in _module(key[0])[0]


def _resolve(key: _Key, seen: frozenset[_Key] = frozenset()) -> _Key:
    """Follow a re-export (``from sim.viz.timeline import plot_timeline`` in figures) to the
    module that defines the name."""
    module, name = key
    if not (_DIR / f"{module}.py").is_file() or key in seen:
        return key
    sources, imports, _ = _module(module)
    if name not in sources and name in imports and imports[name][1]:
        return _resolve(imports[name], seen | {key})
    return key


def figure_definitions(code: Iterable[str]) -> dict[str, str]:
    """Every :mod:`sim.viz` definition that ``code`` (a notebook's code cells) uses, followed
    through the definitions those use in turn: ``"module.name" -> source``.

    Raises:
        ValueError: ``code`` names a :mod:`sim.viz` object whose definition is not in the
            sources (import it from the module that defines it).
    """
    tree = ast.parse("\n".join(_MAGIC.sub("", cell) for cell in code))
    imports = _imports(tree)
    # What a notebook imports by name counts as used, whether or not a cell calls it.
    roots = {key for key in imports.values() if key[1]} | _references(tree, imports, "")
    todo = [_resolve(k) for k in roots]
    missing = sorted(f"{PACKAGE}.{m}.{n}" for m, n in todo if not _exists((m, n)))
    if missing:
        # A name found only at run time (a module __getattr__) would hash nothing: refuse.
        raise ValueError(f"code: cannot find the definition of {', '.join(missing)}")
    out: dict[str, str] = {}
    while todo:
        key = todo.pop()
        qual = f"{PACKAGE}.{key[0]}.{key[1]}"
        if qual in out or not _exists(key):
            continue
        sources, imports, nodes = _module(key[0])
        out[qual] = sources[key[1]]
        todo += [_resolve(k) for k in _references(nodes[key[1]], imports, key[0])]
    return dict(sorted(out.items()))


def _code_cells(notebook: Mapping[str, Any]) -> list[str]:
    cells = notebook.get("cells", [])
    return [
        "".join(c["source"]) if isinstance(c["source"], list) else str(c["source"])
        for c in cells
        if c.get("cell_type") == "code"
    ]


def figures_hash(notebook: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """``(sha256, per-definition short hashes)`` of the figure code ``notebook`` uses (a
    notebook as JSON: its ``cells`` with ``cell_type`` and ``source``)."""
    definitions = figure_definitions(_code_cells(notebook))
    total = hashlib.sha256()
    short: dict[str, str] = {}
    for qual, source in definitions.items():
        total.update(f"{qual}\n{source}\n".encode())
        short[qual] = hashlib.sha256(source.encode()).hexdigest()[:12]
    return total.hexdigest(), short


def stamp(notebook: Any) -> None:
    """Drop every cell's ``metadata.execution`` and write the figure hash into
    ``metadata.srcip_lab`` of ``notebook`` (an ``nbformat`` notebook, changed in place)."""
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    digest, short = figures_hash(notebook)
    notebook.metadata["srcip_lab"] = {"figures_source_sha256": digest, "figures_functions": short}


def renotebook(path: str | Path, *, timeout_s: int = 900) -> None:
    """Execute the notebook at ``path`` in its directory, :func:`stamp` it, write it back."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    client = NotebookClient(
        notebook,
        timeout=timeout_s,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    client.execute()
    stamp(notebook)
    nbformat.write(notebook, path)  # type: ignore[no-untyped-call]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sim.viz.renotebook NOTEBOOK.ipynb ...``: re-execute and stamp each one."""
    paths = list(sys.argv[1:] if argv is None else argv)
    if not paths or not all(p.endswith(".ipynb") for p in paths):
        print("usage: python -m sim.viz.renotebook NOTEBOOK.ipynb ...", file=sys.stderr)
        return 2
    for p in paths:
        print(f"executing {p}", file=sys.stderr)
        renotebook(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
