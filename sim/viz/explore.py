"""Tables for tutorials 05-07 and the interactive explorer of tutorial 07.

* :func:`log_table`: what each log shows, per setup and gateway pod, like FACTS.md section C4:
  the gateway's ``%DOWNSTREAM_REMOTE_ADDRESS%`` next to its direct peer (E7), the
  ``X-Forwarded-For`` the application receives (E8) and the sidecar's remote address (E9, I1),
  every address labelled with whose it is (client, node IP, tunnel IP, HAProxy, ...).
* :func:`client_visibility`: per setup, how often each of those addresses is the real client.
* :func:`summary_table`: :meth:`sim.Result.summary` of several runs as one rounded table.
* :func:`outcomes_by_window`: outcome counts per time window, to set next to HAProxy's health
  check events (H5).
* :func:`scenario_from_controls` / :func:`controls_from_scenario` (from :mod:`sim.viz.controls`):
  the explorer's controls as a pure mapping to and from a :class:`~sim.Scenario`.
* :func:`compact_summary`: the few summary columns that fit a page: reachability, client IP
  seen, failover gap, the load split and the main failure reasons.
* :func:`explorer` (:class:`Explorer`, in :mod:`sim.viz.explorer`, re-exported here):
  ipywidgets controls that re-run the simulation and redraw the summary and the timeline.

The module only reads results and builds scenarios; it models nothing itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from sim.addresses import HAPROXY_IP, SIDECAR_INBOUND_IP
from sim.results import Result
from sim.viz.controls import CONTROLS, controls_from_scenario, scenario_from_controls

__all__ = [
    "CONTROLS",
    "address_roles",
    "client_visibility",
    "compact_summary",
    "controls_from_scenario",
    "log_table",
    "outcomes_by_window",
    "scenario_from_controls",
    "summary_table",
]

LOG_COLUMNS = (
    "setup",
    "gateway pod",
    "client",
    "gateway DRA",
    "gateway direct peer",
    "XFF at app",
    "sidecar DRA",
)
"""Columns of :func:`log_table` (DRA = Envoy's ``%DOWNSTREAM_REMOTE_ADDRESS%``)."""


def address_roles(result: Result) -> dict[str, str]:
    """Map every address of a run to whose it is: ``client``, ``node-3 node IP``, ...

    Node and tunnel addresses come from :attr:`Result.nodes` (N2, N3), pod addresses from
    :attr:`Result.pods`, clients and in-cluster callers (K8) from :attr:`Result.connections`;
    HAProxy's address and the sidecar's inbound bind address (I8) are fixed.
    """
    roles: dict[str, str] = {HAPROXY_IP: "HAProxy", SIDECAR_INBOUND_IP: "sidecar (I8)"}
    for node, node_ip, tunnel_ip in result.nodes[["node", "node_ip", "tunnel_ip"]].itertuples(
        index=False
    ):
        roles[str(node_ip)] = f"{node} node IP"
        roles[str(tunnel_ip)] = f"{node} tunnel IP"
    for pod, pod_ip in result.pods[["pod", "pod_ip"]].itertuples(index=False):
        roles[str(pod_ip)] = f"{pod} pod IP"
    conns = result.connections
    if len(conns):
        inside = conns["path"] == "in_cluster"
        for ip in conns.loc[inside, "client_ip"].unique():
            roles[str(ip)] = "in-cluster caller"
        for ip in conns.loc[~inside, "client_ip"].unique():
            roles[str(ip)] = "client"
    return roles


def _labelled(value: str, roles: Mapping[str, str]) -> str:
    """``"a, b"`` -> ``"a (role), b (role)"``; addresses without a known role stay bare."""
    if not value:
        return "-"
    parts = [p.strip() for p in value.split(",")]
    return ", ".join(f"{p} ({roles[p]})" if p in roles else p for p in parts)


def log_table(results: Mapping[str, Result]) -> pd.DataFrame:
    """What each log shows, one row per setup and gateway pod (FACTS C4), addresses labelled.

    For every gateway pod of every run, the first connection that reached that pod (a
    successful one if there is any) gives: the client's address; the gateway's
    ``%DOWNSTREAM_REMOTE_ADDRESS%`` and ``%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%`` (E7); the
    ``X-Forwarded-For`` the sidecar and the application receive (E8, I7); and the sidecar's
    remote address, the last XFF entry (E9, I1). ``-`` marks a field the connection never set
    (for instance no XFF because the gateway answered 400 itself).

    Args:
        results: ``label -> Result``; labels become the ``setup`` column.

    Returns:
        A DataFrame with the columns of :data:`LOG_COLUMNS`.
    """
    rows: list[tuple[str, ...]] = []
    for label, result in results.items():
        roles = address_roles(result)
        conns = result.connections
        if not len(conns):
            continue
        reached = conns[conns["gateway_pod"] != ""]
        for pod in sorted(reached["gateway_pod"].unique()):
            mine = reached[reached["gateway_pod"] == pod]
            ok = mine[mine["outcome"] == "ok"]
            row = (ok if len(ok) else mine).iloc[0]
            rows.append(
                (
                    label,
                    f"{pod} on {row['gateway_node']}",
                    _labelled(str(row["client_ip"]), roles),
                    _labelled(str(row["gateway_client_ip"]), roles),
                    _labelled(str(row["gateway_direct_ip"]), roles),
                    _labelled(str(row["xff_at_app"]), roles),
                    _labelled(str(row["app_remote_ip"]), roles),
                )
            )
    return pd.DataFrame(rows, columns=list(LOG_COLUMNS))


VISIBILITY_FIELDS = {
    "gateway direct peer": "gateway_direct_ip",
    "gateway DRA": "gateway_client_ip",
    "x-envoy-external-address": "x_envoy_external_address",
    "first XFF entry at app": "xff_first",
    "sidecar DRA": "app_remote_ip",
}
"""Columns of :func:`client_visibility` and the connection field each one reads."""


def client_visibility(results: Mapping[str, Result]) -> pd.DataFrame:
    """Per setup, how often each logged address is the real client (% of successful requests).

    Columns (:data:`VISIBILITY_FIELDS`): the gateway's direct peer and DRA (E7), the
    ``x-envoy-external-address`` it set (E10, I4), the first ``X-Forwarded-For`` entry the app
    receives, and the sidecar's DRA, the last entry (E9, I1). A setup where no request
    succeeded gets NaN. Rounded to 0.1.

    Args:
        results: ``label -> Result``; labels become the index (named ``setup``).
    """
    rows: list[dict[str, float]] = []
    for result in results.values():
        ok = result.connections[result.connections["outcome"] == "ok"]
        client = ok["client_ip"]
        fields = {
            "gateway_direct_ip": ok["gateway_direct_ip"],
            "gateway_client_ip": ok["gateway_client_ip"],
            "x_envoy_external_address": ok["x_envoy_external_address"],
            "xff_first": ok["xff_at_app"].str.split(",").str[0].str.strip(),
            "app_remote_ip": ok["app_remote_ip"],
        }
        rows.append(
            {
                label: float(100.0 * (fields[field] == client).mean()) if len(ok) else float("nan")
                for label, field in VISIBILITY_FIELDS.items()
            }
        )
    return pd.DataFrame(rows, index=pd.Index(list(results), name="setup")).round(1)


_SUMMARY_ORDER = ("connections", "ok", "reachability_pct", "client_ip_seen_pct", "failover_gap_s")


def summary_table(results: Mapping[str, Result]) -> pd.DataFrame:
    """The runs' :meth:`~sim.Result.summary` as one table, one row per label, rounded to 0.1.

    Like :func:`sim.compare`, but for results already simulated: absent ``share_*`` and
    ``failed_*`` columns are 0, and ``failed_*`` columns come last, sorted by name.

    Args:
        results: ``label -> Result``; labels become the index (named ``setup``).
    """
    frame = pd.DataFrame(
        [r.summary() for r in results.values()],
        index=pd.Index(list(results), name="setup"),
    ).drop(columns="name")
    shares = sorted(c for c in frame.columns if c.startswith("share_"))
    failed = sorted(c for c in frame.columns if c.startswith("failed_"))
    frame[shares] = frame[shares].fillna(0.0)
    frame[failed] = frame[failed].fillna(0).astype("int64")
    return frame[[*_SUMMARY_ORDER, *shares, *failed]].round(1)


def outcomes_by_window(result: Result, window_s: float = 10.0) -> pd.DataFrame:
    """Connections per outcome in consecutive windows of ``window_s`` simulated seconds.

    The index is the window's start (``from_s``); one column per outcome that occurred.

    Raises:
        ValueError: ``window_s`` is not a positive number.
    """
    if isinstance(window_s, bool) or not isinstance(window_s, int | float) or window_s <= 0:
        raise ValueError(f"window_s: expected a positive number of seconds, got {window_s!r}")
    conns = result.connections
    start = (conns["t_start"].astype(float) // window_s * window_s).round(6)
    table = pd.crosstab(start.rename("from_s"), conns["outcome"])
    table.columns.name = None
    return table


COMPACT_COLUMNS = (
    "reachability_pct",
    "client_ip_seen_pct",
    "failover_gap_s",
    "load per pod (%)",
    "main failure",
)
"""Columns of :func:`compact_summary`."""


def compact_summary(results: Mapping[str, Result]) -> pd.DataFrame:
    """A :func:`summary_table` narrow enough for a page: :data:`COMPACT_COLUMNS`.

    ``load per pod (%)`` joins the ``share_*`` columns (``"gw-1 50 / gw-2 50"``); ``main
    failure`` names the two most frequent ``failed_*`` reasons with their counts
    (``"dead_node 845, haproxy_no_server 420"``), ``"-"`` when every connection succeeded.

    Args:
        results: ``label -> Result``; labels become the index (named ``setup``).
    """
    full = summary_table(results)
    shares = [c for c in full.columns if c.startswith("share_")]
    failed = [c for c in full.columns if c.startswith("failed_")]
    frame = full[list(COMPACT_COLUMNS[:3])].copy()
    frame[COMPACT_COLUMNS[3]] = [
        " / ".join(f"{c.removeprefix('share_')} {row[c]:.0f}" for c in shares)
        for _, row in full.iterrows()
    ]
    main = []
    for _, row in full[failed].iterrows():
        counts = sorted((-int(row[c]), str(c)) for c in failed if int(row[c]) > 0)[:2]
        main.append(", ".join(f"{c.removeprefix('failed_')} {-n}" for n, c in counts) or "-")
    frame[COMPACT_COLUMNS[4]] = main
    return frame


_WIDGET_NAMES = frozenset({"Explorer", "explorer", "show_state"})


def __getattr__(name: str) -> Any:
    """The widget lives in :mod:`sim.viz.explorer`; its names stay importable from here (on
    first use, as that module imports this one)."""
    if name in _WIDGET_NAMES:
        from sim.viz import explorer as widget

        return getattr(widget, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
