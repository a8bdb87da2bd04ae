"""The decision table: every way to keep the client IP, side by side, computed from runs.

:func:`decision_table` simulates each row's scenario four times on the seed topology (seed 0,
60 s, 50 connections per second) and reads one number per column from the run it names:

============================= ==============================================================
column                        run and field
============================= ==============================================================
client IP at the gateway (%)  no failure: delivered requests whose gateway DRA is the client
                              (E7)
client IP at the app (%)      no failure: ``client_ip_seen_pct``, the app's last XFF entry
                              (I1)
reachability (%)              node-3 (the VIP's announcer, with gw-2) powered off at 20 s
failover gap (s)              the same run's ``failover_gap_s``
load spread gw-1 / gw-2 (%)   no failure: ``share_gw-1`` / ``share_gw-2``
in-cluster callers (% ok)     20 % of the connections from pods calling the VIP (K8, K9)
spoofable by a client header  every client sends ``X-Forwarded-For: 6.6.6.6``: does the
                              gateway or the app take it for the client? (I4, I5)
what must be deployed         the files ``srcip-lab config`` writes for it that differ from
                              ``Cluster``'s (kube-proxy's own rules and the node list excluded)
============================= ==============================================================

The column names are the decision table page's (docs ``background/decision-table.md``), with
units; the page has no gateway column and says what must be deployed in words.

The rows are :data:`DECISION_ROWS`. Cells are numbers or single words, no prose.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pandas as pd

from sim import presets
from sim.scenario import NodeDown, Scenario
from sim.topology import simulate

__all__ = ["DECISION_COLUMNS", "DECISION_ROWS", "SPOOF", "decision_table", "deployed_files"]

DECISION_ROWS: dict[str, Scenario] = {
    "Cluster": presets.cluster,
    "Local": presets.local,
    "the PROXY fix": presets.proxy_protocol,
    "HAProxy HTTP + XFF": presets.haproxy_http_xff,
    "HAProxy → NodePorts": presets.get("haproxy_nodeports"),
    "the PROXY fix, numTrustedProxies 1": replace(
        presets.proxy_protocol, name="pp_trusts_xff", num_trusted_proxies=1
    ),
}
"""The ways to keep the client IP (and the one mistake that makes the fix spoofable)."""

DECISION_COLUMNS = (
    "client IP at the gateway (%)",
    "client IP at the app (%)",
    "reachability (%)",
    "failover gap (s)",
    "load spread gw-1 / gw-2 (%)",
    "in-cluster callers (% ok)",
    "spoofable by a client header",
    "what must be deployed",
)
"""The columns of :func:`decision_table`, in order."""

SPOOF = "6.6.6.6"
"""The address every client claims in its own ``X-Forwarded-For`` in the spoofing run."""

# Files of `srcip-lab config` that are the cluster's, not a choice: kube-proxy writes its rules
# itself, the node list is what it is, and the gateway-topology variant is an alternative form
# of the EnvoyFilter.
_NOT_DEPLOYED = ("iptables-save.txt", "nodes.yaml", "alternative-gateway-topology")


def deployed_files(scenario: Scenario, baseline: Scenario = presets.cluster) -> list[str]:
    """The configuration files of ``scenario`` (:func:`sim.config.write_configs`) that differ
    from ``baseline``'s, ignoring the files nobody deploys by choice."""
    from sim.config import write_configs

    def files(sc: Scenario) -> dict[str, str]:
        # Same name, so that only real differences count (the files name their scenario).
        sc = replace(sc, name="decision")
        with tempfile.TemporaryDirectory() as tmp:
            paths = write_configs(sc, tmp)
            return {
                str(p.relative_to(tmp)): p.read_text(encoding="utf-8")
                for p in paths
                if not any(part in str(p) for part in _NOT_DEPLOYED)
            }

    mine, base = files(scenario), files(baseline)
    return [name for name in mine if base.get(name) != mine[name]]


def _in_cluster_ok(scenario: Scenario) -> float:
    conns = simulate(replace(scenario, in_cluster_share=0.2)).connections
    inside = conns[conns["path"] == "in_cluster"]
    return round(100.0 * float((inside["outcome"] == "ok").mean()), 1) if len(inside) else 0.0


def _spoofed(scenario: Scenario) -> str:
    conns = simulate(replace(scenario, client_xff=SPOOF)).connections
    ok = conns[conns["outcome"] == "ok"]
    where = [
        who
        for who, column in (("gateway", "gateway_client_ip"), ("app", "app_remote_ip"))
        if (ok[column] == SPOOF).any()
    ]
    return " + ".join(where) if where else "no"


def _row(scenario: Scenario, failure_at_s: float) -> list[object]:
    base = simulate(scenario)
    summary = base.summary()
    ok = base.connections[base.connections["outcome"] == "ok"]
    at_gateway = 100.0 * float((ok["gateway_client_ip"] == ok["client_ip"]).mean())
    down = simulate(replace(scenario, failures=(NodeDown(node="node-3", at_s=failure_at_s),)))
    failed = down.summary()
    load = " / ".join(f"{summary.get(f'share_{p}', 0.0):.0f}" for p in scenario.pod_names)
    deploy = [Path(f).name for f in deployed_files(scenario)]
    return [
        round(at_gateway, 1),
        round(float(summary["client_ip_seen_pct"]), 1),
        round(float(failed["reachability_pct"]), 1),
        round(float(failed["failover_gap_s"]), 1),
        load,
        _in_cluster_ok(scenario),
        _spoofed(scenario),
        ", ".join(deploy) if deploy else "-",
    ]


def decision_table(
    rows: Mapping[str, Scenario] | None = None, *, failure_at_s: float = 20.0
) -> pd.DataFrame:
    """One row per way to keep the client IP, the columns of :data:`DECISION_COLUMNS`.

    Args:
        rows: label -> scenario; by default :data:`DECISION_ROWS`. Each needs a node called
            ``node-3`` (the one powered off) and the seed's two gateway pods for the load column.
        failure_at_s: when node-3 is powered off in the failover run.
    """
    chosen = DECISION_ROWS if rows is None else rows
    data = [_row(scenario, failure_at_s) for scenario in chosen.values()]
    return pd.DataFrame(data, index=pd.Index(list(chosen), name="way"), columns=DECISION_COLUMNS)
