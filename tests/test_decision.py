"""Tests for sim.viz.decision: the decision table's cells come from the runs they name."""

from __future__ import annotations

from dataclasses import replace

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
    app = table["client IP at app (%)"]
    gateway = table["client IP at gateway (%)"]
    assert app["Cluster"] == 0.0 and gateway["Cluster"] == 0.0  # K1, N3
    assert app["Local"] == 100.0 and app["the PROXY fix"] == 100.0  # K2; H1, E1
    # mode http: the gateway learns it from XFF, the app's last entry is the SNAT (C4).
    assert gateway["HAProxy HTTP + XFF"] == 100.0 and app["HAProxy HTTP + XFF"] == 0.0


def test_failover_load_callers_and_spoofing(table: pd.DataFrame) -> None:
    reach = table["reachability (%)"]
    assert reach["Local"] > reach["Cluster"]  # no tail of a dead pod under Local (K2, K15)
    assert table.loc["HAProxy → NodePorts", "failover gap (s)"] < 1.0  # no ARP move (H10)
    assert table.loc["Local", "load gw-1 / gw-2 (%)"] == "0 / 100"  # M6
    callers = table["in-cluster callers ok (%)"]
    assert callers["Cluster"] == 100.0 and callers["the PROXY fix"] == 0.0  # K8, E5
    spoofed = table["spoofed by client XFF"]
    assert spoofed["the PROXY fix"] == "no"
    assert spoofed["the PROXY fix, numTrustedProxies 1"] == "gateway"  # I4, I5


def test_what_must_be_deployed() -> None:
    assert deployed_files(presets.cluster) == []
    assert deployed_files(presets.local) == ["service.yaml"]
    assert deployed_files(presets.proxy_protocol) == ["haproxy.cfg", "istio-envoyfilter.yaml"]
