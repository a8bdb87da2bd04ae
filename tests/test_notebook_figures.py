"""Acceptance: the committed notebooks' figures were drawn with the current plotting code.

nbval compares text outputs, not images, so a changed plotting function would leave stale
pictures behind unnoticed. Every notebook carries the hash of the :mod:`sim.viz` code its cells
use (``metadata.srcip_lab``, written by ``python -m sim.viz.renotebook`` / ``make notebooks``);
this test recomputes it from today's sources.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from sim.viz import renotebook
from sim.viz.renotebook import figure_definitions, figures_hash

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9]*.ipynb"))


def _load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_figures_were_drawn_with_todays_plotting_code(path: Path) -> None:
    notebook = _load(path)
    stamp = notebook["metadata"].get("srcip_lab", {})
    digest, short = figures_hash(notebook)
    changed = sorted(
        name
        for name in set(short) | set(stamp.get("figures_functions", {}))
        if short.get(name) != stamp.get("figures_functions", {}).get(name)
    )
    assert stamp.get("figures_source_sha256") == digest, (
        f"{path.name}: its figures were drawn with other plotting code (changed: "
        f"{', '.join(changed) or 'the stamp is missing'}); re-run it: "
        f"python -m sim.viz.renotebook notebooks/{path.name}"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebooks_carry_no_execution_timing(path: Path) -> None:
    cells = _load(path)["cells"]
    assert not [c.get("id") for c in cells if "execution" in c.get("metadata", {})]


def test_the_hash_follows_the_definitions_a_cell_uses() -> None:
    code = ["%matplotlib inline\nfrom sim.viz.figures import plot_reachability, plot_timeline"]
    found = figure_definitions(code)
    # Its helpers come along, and a re-export is followed to the module that defines it.
    assert "sim.viz.figures._labels" in found
    assert "sim.viz.timeline.plot_timeline" in found
    assert "sim.viz.timeline._draw_events" in found
    assert "sim.viz.figures.plot_timeline" not in found
    assert not any(name.startswith("sim.viz.plots.") for name in found)
    assert figure_definitions(["import pandas as pd"]) == {}


def test_the_hash_changes_when_a_plotting_function_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = {"cells": [{"cell_type": "code", "source": "from sim.viz.paths import draw_paths"}]}
    before, _ = figures_hash(notebook)
    copy = tmp_path / "viz"
    shutil.copytree(Path(renotebook.__file__).parent, copy)
    source = (copy / "paths.py").read_text(encoding="utf-8")
    (copy / "paths.py").write_text(source.replace("_PT = 9.0", "_PT = 7.0"), encoding="utf-8")
    monkeypatch.setattr(renotebook, "_DIR", copy)
    renotebook._module.cache_clear()
    try:
        after, short = figures_hash(notebook)
    finally:
        monkeypatch.undo()
        renotebook._module.cache_clear()
    assert after != before
    assert "sim.viz.paths._PT" in short


def test_a_name_without_a_definition_is_refused() -> None:
    # A module __getattr__ re-export has no source to hash: the stamp would miss its code.
    with pytest.raises(ValueError, match=r"sim\.viz\.explore\.explorer"):
        figure_definitions(["from sim.viz.explore import explorer"])
