"""Shared pieces of the real-kernel lab tests (``tests/test_lab_*.py``).

:func:`require_lab` skips a test locally when the machine lacks root, network namespaces or a
tool, and fails it when the environment variable ``CI`` is set (CI must run the lab; the same
rule as ``tests/haproxy_harness.py``). :func:`lab_run` runs a scenario once per test session and
caches the result, so several assertions share one deployment.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import pytest

import sim
from sim.lab import LabOptions, LabRun, existing_namespaces, missing_requirements, run_lab
from sim.overrides import apply_overrides

_RUNS: dict[str, LabRun] = {}


def require_lab(*, tshark: bool = False) -> None:
    """Skip (locally) or fail (``CI`` set) unless the lab can run here."""
    from sim.lab.netns import which

    missing = missing_requirements()
    if tshark and which("tshark") is None:
        missing.append("tshark (Debian package tshark)")
    if not missing:
        return
    reason = "the real-kernel lab needs: " + "; ".join(missing)
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so the lab tests must run: {reason}")
    pytest.skip(reason)


def scenario(preset: str, *sets: str, failures: tuple[Any, ...] = ()) -> sim.Scenario:
    """A preset with ``key=value`` changes (the CLI's ``--set`` syntax) and failures."""
    changes = [tuple(s.split("=", 1)) for s in sets]
    sc = apply_overrides(sim.presets.get(preset), changes)
    return replace(sc, failures=failures) if failures else sc


def lab_run(key: str, sc: sim.Scenario, options: LabOptions | None = None) -> LabRun:
    """Run ``sc`` in the lab once per session under ``key``."""
    if key not in _RUNS:
        assert not existing_namespaces(), "a lab is already deployed"
        _RUNS[key] = run_lab(sc, options)
        assert not existing_namespaces(), "the lab left namespaces behind"
    return _RUNS[key]
