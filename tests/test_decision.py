"""Tests for sim.viz.decision: the decision table's cells come from the runs they name."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from sim import presets
from sim.viz.decision import DECISION_COLUMNS, DECISION_ROWS, decision_table, deployed_files


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    short = {
        label: replace(sc, duration_s=30.0, rate_per_s=20.0) for label, sc in DECISION_ROWS.items()
    }
    return decision_table(short, failure_at_s=10.0)


def test_rows_and_columns(table: pd.DataFrame) -> None:
    assert list(table.columns) == list(DECISION_COLUMNS)
    assert list(table.index) == list(DECISION_ROWS)


def test_who_learns_the_client(table: pd.DataFrame) -> None:
    app = table["client IP at the app (%)"]
    gateway = table["client IP at the gateway (%)"]
    assert app["Cluster"] == 0.0 and gateway["Cluster"] == 0.0  # K1, N3
    assert app["Local"] == 100.0 and app["the PROXY fix"] == 100.0  # K2; H1, E1
    # mode http: the gateway learns it from XFF, the app's last entry is the SNAT (C4).
    assert gateway["HAProxy HTTP + XFF"] == 100.0 and app["HAProxy HTTP + XFF"] == 0.0


def test_failover_load_callers_and_spoofing(table: pd.DataFrame) -> None:
    reach = table["reachability (%)"]
    assert reach["Local"] > reach["Cluster"]  # no tail of a dead pod under Local (K2, K15)
    assert table.loc["HAProxy → NodePorts", "failover gap (s)"] < 1.0  # no ARP move (H10)
    assert table.loc["Local", "load spread gw-1 / gw-2 (%)"] == "0 / 100"  # M6
    callers = table["in-cluster callers (% ok)"]
    assert callers["Cluster"] == 100.0 and callers["the PROXY fix"] == 0.0  # K8, E5
    spoofed = table["spoofable by a client header"]
    assert spoofed["the PROXY fix"] == "no"
    assert spoofed["the PROXY fix, numTrustedProxies 1"] == "gateway"  # I4, I5


def test_what_must_be_deployed() -> None:
    assert deployed_files(presets.cluster) == []
    assert deployed_files(presets.local) == ["service.yaml"]
    assert deployed_files(presets.proxy_protocol) == ["haproxy.cfg", "istio-envoyfilter.yaml"]


# The decision table page's columns that hold a number, by its header, and the computed column.
_PAGE = Path(__file__).resolve().parents[1] / "docs" / "background" / "decision-table.md"
_NUMERIC = {
    "client IP at the app": "client IP at the app (%)",
    "reachability": "reachability (%)",
    "failover gap": "failover gap (s)",
    "in-cluster callers": "in-cluster callers (% ok)",
}


def _page_table() -> dict[str, dict[str, str]]:
    text = _PAGE.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    header, body = cells[0], cells[2:]
    return {row[0].strip("*"): dict(zip(header, row, strict=True)) for row in body}


def test_the_page_shows_the_computed_numbers() -> None:
    """docs/background/decision-table.md quotes decision_table()'s runs, cell by cell."""
    computed = decision_table()
    page = _page_table()
    for way in DECISION_ROWS:
        row = page[way]
        for column, ours in _NUMERIC.items():
            number = re.match(r"[\d.]+", row[column])
            assert number, (way, column, row[column])
            assert float(number.group()) == pytest.approx(computed.loc[way, ours]), (way, column)
        load = computed.loc[way, "load spread gw-1 / gw-2 (%)"]
        assert row["load spread"].split(" (")[0] == load, way
        spoofable = computed.loc[way, "spoofable by a client header"] != "no"
        assert row["spoofable by a client header"].startswith("**yes**") == spoofable, way
