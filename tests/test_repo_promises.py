"""The promises the README makes about the two commands, and that CI keeps them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _first_code_block(text: str) -> list[str]:
    match = re.search(r"```[a-z]*\n(.*?)```", text, re.DOTALL)
    assert match, "README has no code block"
    return [line.split("#")[0].strip() for line in match.group(1).splitlines() if line.strip()]


def test_readme_opens_with_exactly_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    # Nothing but the title comes before the two commands.
    before = readme[: readme.index("```")].strip().splitlines()
    assert before == ["# srcip-lab"]
    assert _first_code_block(readme) == ["make run", "make test"]


def test_makefile_targets_do_what_the_readme_says() -> None:
    makefile = (ROOT / "Makefile").read_text()
    run = re.search(r"^run:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    test = re.search(r"^test:(.*)$", makefile, re.MULTILINE)
    assert run and "srcip-lab compare" in run.group(1)
    assert test and set(test.group(1).split()) >= {"lint", "typecheck", "pytest", "docs-build"}
    pytest_recipe = re.search(r"^pytest:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert pytest_recipe
    assert "--nbval " in pytest_recipe.group(1) and "--nbval-lax" not in pytest_recipe.group(1)
    assert "notebooks" in pytest_recipe.group(1)
    assert "mkdocs build --strict" in makefile


def test_ci_runs_the_readme_test_command_after_installing_haproxy() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.MULTILINE)
    assert "haproxy" in ci and "apt-get install" in ci


def test_readme_shows_what_make_run_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The comparison table in the README is the one `srcip-lab compare` prints today."""
    from sim.cli import main

    assert main(["compare", "--out", str(tmp_path), "--no-figures"]) == 0
    printed = capsys.readouterr().out.split("\n\n")[0].strip()
    readme = (ROOT / "README.md").read_text()
    shown = readme.split("```text\n", 1)[1].split("```", 1)[0].strip()
    assert shown == printed
