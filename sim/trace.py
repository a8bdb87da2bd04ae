"""Follow one connection hop by hop: who sent it where, and who rewrote what.

:func:`trace` runs the scenario once more with hop recording switched on for one connection
(the same seed gives the same connections, so the hops belong to the row of the same
``conn_id`` in :attr:`sim.Result.connections`). Hop 1 is the client's own leg; every later hop
is the leg an element sends on after its rewrite (a hop where the connection failed shows the leg
that element received): source and destination ``ip:port``, what the element did to the
addresses (with the fact IDs), the PROXY protocol header on that leg in hex, and the
``X-Forwarded-For`` header on that leg. The source ports of the gateway's and the sidecar's own
upstream connections are not modelled; traces show them from Linux's ephemeral range
(:func:`ephemeral_port`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

if TYPE_CHECKING:
    from sim.net.haproxy import HAProxy
    from sim.net.node import GatewayPod, Node
    from sim.scenario import Scenario

__all__ = ["HOP_COLUMNS", "Hop", "HopList", "hop", "trace"]

HOP_COLUMNS = ("hop", "element", "src", "dst", "rewrite", "proxy_header_hex", "xff")
"""Columns of the DataFrame :func:`trace` returns."""

_V1 = b"PROXY "
_V2 = b"\r\n\r\n\x00\r\nQUIT\n"


class Hop(NamedTuple):
    """One leg of a connection's path (:data:`HOP_COLUMNS`; :func:`trace` adds ``hop``)."""

    element: str
    src: str
    dst: str
    rewrite: str
    proxy_header_hex: str
    xff: str


HopList = list[Hop]
"""The hops of one connection, in path order."""


def _proxy_hex(data: bytes) -> str:
    from sim.proxy_protocol import ProxyProtocolError, decode

    if not (data.startswith(_V1) or data.startswith(_V2)):
        return ""
    try:
        decoded = decode(data)
    except ProxyProtocolError:
        return ""
    if decoded is None:
        return ""
    return data[: decoded[1]].hex()


def _xff(data: bytes) -> str:
    values = []
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"x-forwarded-for":
            values.append(value.strip().decode("latin-1"))
    return ",".join(values)


def ephemeral_port(conn_id: int, leg: int = 0) -> int:
    """A source port for a leg the model does not track (an element's own upstream connection).

    Shown in traces only: Linux's default ephemeral range, 32768-60999, walked by connection id
    (``leg`` offsets the sidecar's leg from the gateway's), so a trace is deterministic.
    """
    return 32768 + (conn_id + leg * 14116) % 28232


def hop(
    element: str,
    src_ip: str,
    src_port: int,
    dst_ip: str,
    dst_port: int,
    rewrite: str,
    data: bytes = b"",
) -> Hop:
    """One :class:`Hop`; ``data`` is the bytes on that leg (the PROXY header and XFF come from it).

    A port of 0 is shown as the bare address (an address learnt from XFF has no port, E9).
    """
    src = f"{src_ip}:{src_port}" if src_port else src_ip
    dst = f"{dst_ip}:{dst_port}" if dst_port else dst_ip
    header_hex = _proxy_hex(data) if data else ""
    xff = _xff(data[len(header_hex) // 2 :]) if data else ""
    return Hop(element, src, dst, rewrite, header_hex, xff)


def trace(scenario: Scenario, conn_id: int | None = None) -> pd.DataFrame:
    """The hop-by-hop path of one connection of ``scenario``.

    Args:
        scenario: the scenario to run.
        conn_id: the connection to follow; ``None`` follows the first successful one, or the
            first connection of the run when none succeeded (its last hop shows where and why
            it failed).

    Returns:
        One row per hop with the columns of :data:`HOP_COLUMNS`; ``frame.attrs`` holds the
        traced connection's ``conn_id``, ``outcome`` and ``reason``.

    Raises:
        ValueError: ``conn_id`` is not a connection of the run, or (with ``None``) the run has
            no connection at all.
    """
    from sim.scenario import Scenario
    from sim.topology import Topology

    if not isinstance(scenario, Scenario):
        raise ValueError(f"trace: expected a sim.Scenario, got {type(scenario).__name__}")
    if conn_id is not None and (isinstance(conn_id, bool) or not isinstance(conn_id, int)):
        raise ValueError(f"conn_id: expected None or a connection id (int), got {conn_id!r}")
    if conn_id is not None and conn_id < 0:
        raise ValueError(f"conn_id: must be >= 0, got {conn_id}")
    topo = Topology(scenario, trace_conn=-1 if conn_id is None else conn_id)
    result = topo.run()
    if topo.hops is None and conn_id is None and len(result.connections):
        # Nothing succeeded: show the first connection, which failed, to say where and why.
        topo = Topology(scenario, trace_conn=0)
        result = topo.run()
    if topo.hops is None:
        if conn_id is None:
            raise ValueError(f"trace: scenario {scenario.name!r} made no connection")
        raise ValueError(
            f"conn_id: no connection {conn_id} in this run "
            f"(it has {len(result.connections)} connections, ids 0..{len(result.connections) - 1})"
        )
    rows = [(i + 1, *h) for i, h in enumerate(topo.hops)]
    frame = pd.DataFrame(rows, columns=list(HOP_COLUMNS))
    # Which connection this is and how it ended, for callers that print a heading.
    traced = int(topo.hops_conn_id)
    row = result.connections.iloc[traced]
    frame.attrs.update(conn_id=traced, outcome=str(row["outcome"]), reason=str(row["reason"]))
    return frame


GATEWAY_FAILURE_FACTS = {
    # What each gateway failure reason means, for the hop that failed.
    "proxy_header_missing": "E5: the filter requires a header; closed before HTTP",
    "proxy_header_invalid": "E1: a header the filter cannot use; closed",
    "proxy_header_unexpected": "E6: PROXY bytes read as HTTP; 400",
    "bad_request": "E6: not a valid HTTP request; 400",
}


def haproxy_rewrite(hap: HAProxy) -> str:
    """What HAProxy did to the addresses, for its hop."""
    cfg = hap.config
    if cfg.mode == "http":
        extra = "; appends x-forwarded-for: <client> (H7)" if cfg.forwardfor else ""
        return f"new connection from HAProxy (full proxy){extra}"
    if cfg.send_proxy:
        return f"new connection from HAProxy; PROXY {cfg.send_proxy} header carries the client (H1)"
    return "new connection from HAProxy; the client address is lost (H7)"


def kube_proxy_rewrite(
    node: Node, pod: GatewayPod, names: list[str], snat: str, target: str = "VIP"
) -> str:
    """What kube-proxy did to the addresses (DNAT, and MASQUERADE or not), for its hop."""
    dnat = f"DNAT {target} -> {pod.name} on {names[pod.node]} (K14)"
    if not snat:
        return f"{dnat}; no SNAT, client address kept (Local, K2)"
    device = (
        "node IP: pod on this node" if snat == node.node_ip else "tunnel IP: pod on another node"
    )
    return f"{dnat}; MASQUERADE to {snat} ({device}, K1, N3)"


def gateway_rewrite(gw: Any, peer_ip: str) -> str:
    """What the gateway made of the connection (PROXY, DRA, XFF), for its hop."""
    parts = []
    if gw.header is not None:
        parts.append(f"proxy_protocol filter: {gw.header.command.name} header (E1, E3)")
    parts.append(f"DRA = {gw.client_ip}:{gw.client_port}, direct peer = {peer_ip} (E7)")
    parts.append(f"XFF appended (E8), x-envoy-external-address = {gw.external_address} (E10)")
    return "; ".join(parts)
