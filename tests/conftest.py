"""Session-wide check: the real-kernel lab leaves no namespace and no process behind."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _nothing_of_the_lab_remains() -> Iterator[None]:
    yield
    if not os.path.isdir("/run/netns") and not os.path.exists("/run/srcip-lab/state.json"):
        return
    from sim.lab.netns import STATE_FILE, _cmdline0, existing_namespaces

    left = existing_namespaces()
    procs = []
    if STATE_FILE.exists():
        state = json.loads(STATE_FILE.read_text())
        procs = [p for p in state.get("procs", []) if _cmdline0(int(p["pid"])) == p["argv0"]]
    assert not left and not procs, f"the lab left namespaces {left} and processes {procs}"
