"""From what the lab saw to rows with the simulator's columns (``sim.results``).

Three witnesses are joined per connection: the client (its address, port, outcome), the stand-in
servers' logs (matched by the request's ``x-lab-conn`` tag), and the **kernel's conntrack table**
on every node, read over netlink (pyroute2): the entry whose reply tuple is ``pod:8080 ->
<the gateway's direct peer>`` and whose original destination is the VIP or the node's NodePort
tells the entry node, the DNAT target and the SNAT source and port that netfilter chose (K1,
K14, K17, N1). Columns the lab cannot observe are ``""``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from pyroute2 import Conntrack

from sim.addresses import GATEWAY_PORT, NODE_PORT, VIP, VIP_PORT, node_ip
from sim.lab.netns import in_netns
from sim.results import CONNECTION_COLUMNS

__all__ = ["EXTRA_COLUMNS", "conntrack_entries", "observed_frame"]

EXTRA_COLUMNS = tuple(
    c
    for c in ("gateway_direct_port", "pre_nat_port", "proxy_src", "detail")
    if c not in CONNECTION_COLUMNS
)
"""Columns the lab adds: the gateway's direct peer port, the source port before NAT on the
entry node (conntrack's original tuple), the PROXY source the gateway read, the client's error."""

Entry = tuple[str, int, str, int, str, int, str, int]


def conntrack_entries(namespace: str) -> list[Entry]:
    """TCP conntrack entries of a node: ``(orig src, sport, orig dst, dport, reply src, sport,
    reply dst, dport)``."""
    out = []
    # The whole dump inside the namespace: pyroute2 may open its netlink socket lazily.
    with in_netns(namespace):
        ct = Conntrack()
        try:
            for e in ct.dump_entries():
                o, r = e.tuple_orig, e.tuple_reply
                if o.proto == 6:
                    out.append(
                        (o.saddr, o.sport, o.daddr, o.dport, r.saddr, r.sport, r.daddr, r.dport)
                    )
        finally:
            ct.close()
    return out


def _entry_for(
    conntrack: Mapping[str, Sequence[Entry]], pod_ip: str, peer: tuple[str, int], nodes: list[str]
) -> tuple[str, Entry] | None:
    for node, entries in conntrack.items():
        own = node_ip(nodes.index(node))
        for e in entries:
            if (e[4], e[5], e[6], e[7]) != (pod_ip, GATEWAY_PORT, peer[0], peer[1]):
                continue
            if (e[2], e[3]) in ((VIP, VIP_PORT), (own, NODE_PORT)):
                return node, e
    return None


def observed_frame(
    scenario: Any,
    attempts: Sequence[Any],
    log: Sequence[Mapping[str, Any]],
    conntrack: Mapping[str, Sequence[Entry]],
    t0: float,
) -> pd.DataFrame:
    """One row per client connection, columns :data:`CONNECTION_COLUMNS` + :data:`EXTRA_COLUMNS`."""
    gateway = {r["tag"]: r for r in log if r["kind"] == "gateway" and r["tag"] >= 0}
    sidecar = {r["tag"]: r for r in log if r["kind"] == "sidecar" and r["tag"] >= 0}
    pods: dict[str, str] = {}
    nodes = list(scenario.node_names)
    rows = []
    path = "haproxy" if scenario.haproxy is not None else "direct"
    for a in attempts:
        row: dict[str, Any] = dict.fromkeys(CONNECTION_COLUMNS, "")
        row.update(dict.fromkeys(EXTRA_COLUMNS, ""))
        row.update(
            conn_id=a.conn_id,
            client_ip=a.client_ip,
            client_port=a.client_port,
            t_start=round(a.t_start - t0, 4),
            t_end=round(a.t_end - t0, 4),
            outcome=a.outcome,
            path=path,
            detail=a.detail,
        )
        gw = gateway.get(a.conn_id)
        if gw is not None:
            pod_ip = pods.setdefault(gw["pod"], _pod_ip(log, gw))
            row.update(
                reason=gw.get("reason", ""),
                gateway_pod=gw["pod"],
                gateway_node=gw["node"],
                gateway_direct_ip=gw["direct_ip"],
                gateway_direct_port=gw["direct_port"],
                gateway_client_ip=gw.get("client_ip", ""),
                x_envoy_external_address=gw.get("external_address", ""),
                proxy_src=gw.get("proxy_src", ""),
            )
            found = _entry_for(conntrack, pod_ip, (gw["direct_ip"], gw["direct_port"]), nodes)
            if found is not None:
                node, e = found
                row.update(entry_node=node, pre_nat_port=e[1])
                row["snat_ip"] = e[6] if e[6] != e[0] else ""
        side = sidecar.get(a.conn_id)
        if side is not None:
            row.update(xff_at_app=side["xff"], app_remote_ip=side["remote_ip"])
        rows.append(row)
    return pd.DataFrame(rows, columns=[*CONNECTION_COLUMNS, *EXTRA_COLUMNS])


def _pod_ip(log: Sequence[Mapping[str, Any]], gw: Mapping[str, Any]) -> str:
    return str(gw.get("pod_ip", ""))
