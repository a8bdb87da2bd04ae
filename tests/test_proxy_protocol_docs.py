"""The codec's documented examples run: docstrings of its modules and the ``>>>`` blocks of
docs/reference/codec.md (so the reference cannot drift from the code)."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

import sim.proxy_protocol as codec

DOC = Path(__file__).resolve().parents[1] / "docs" / "reference" / "codec.md"


@pytest.mark.parametrize(
    "module",
    ["sim.proxy_protocol", "sim.proxy_protocol._decoder", "sim.proxy_protocol._policy"],
)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_reference_page_examples() -> None:
    blocks = [b for b in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S) if ">>>" in b]
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for i, block in enumerate(blocks):
        globs = {name: getattr(codec, name) for name in codec.__all__}
        runner.run(doctest.DocTestParser().get_doctest(block, globs, f"codec.md[{i}]", str(DOC), 0))
    assert len(blocks) >= 2 and runner.tries > 5 and runner.failures == 0
