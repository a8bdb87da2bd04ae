"""One golden run: a short proxy_protocol run with a failure, compared exactly with a CSV.

Regenerate after an intended behaviour change with ``SRCIP_UPDATE_GOLDEN=1 pytest
tests/test_golden.py`` and review the diff of ``tests/golden/*.csv`` like code.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import sim
from sim import presets

GOLDEN = Path(__file__).parent / "golden"

SCENARIO = replace(
    presets.proxy_protocol,
    duration_s=20.0,
    rate_per_s=20.0,
    seed=7,
    failures=(sim.NodeDown(node="node-3", at_s=6.0, up_at_s=14.0),),
)


def _csv(scenario: sim.Scenario) -> str:
    result = sim.simulate(scenario)
    conns = result.connections.to_csv(index=False, float_format="%.6f", lineterminator="\n")
    events = result.events.to_csv(index=False, float_format="%.6f", lineterminator="\n")
    return conns + "\n# events\n" + events


def test_golden_proxy_protocol_node_down() -> None:
    path = GOLDEN / f"{SCENARIO.name}.csv"
    text = _csv(SCENARIO)
    if os.environ.get("SRCIP_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{path} differs; rerun with SRCIP_UPDATE_GOLDEN=1 if intended"
