"""MkDocs hook: put the real ``--help`` text of each srcip-lab command into the CLI reference.

A page line ``<!-- srcip-lab-help: pp decode -->`` is replaced by the help of
``srcip-lab pp decode`` as argparse prints it, so the reference can never drift from the code.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from typing import Any

_MARKER = re.compile(r"^<!-- srcip-lab-help:(?P<cmd>[^>]*)-->$", re.MULTILINE)


def _help(command: str) -> str:
    from sim.cli import build_parser

    os.environ["COLUMNS"] = "80"  # fits the docs theme's code blocks without scrolling
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
        build_parser().parse_args([*command.split(), "--help"])
    return buf.getvalue().rstrip()


def on_page_markdown(markdown: str, **_: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        cmd = match.group("cmd").strip()
        shown = f"srcip-lab {cmd}".rstrip()
        return f"```text\n$ {shown} --help\n{_help(cmd)}\n```"

    return _MARKER.sub(replace, markdown)
