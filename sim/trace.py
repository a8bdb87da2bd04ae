"""Follow one connection hop by hop: who sent it where, and who rewrote what.

:func:`trace` runs the scenario once more with recording switched on for one connection: the
same walk (:meth:`sim.topology.Topology.walk`) that decides every connection, whose elements
also append the :class:`~sim.path.Hop` they made (the same seed gives the same connections, so
the hops belong to the row of the same ``conn_id`` in :attr:`sim.Result.connections`). Hop 1 is
the client's own leg; every later hop is the leg an element sends on after its steps (a hop where
the connection ended shows the leg that element received): source and destination ``ip:port``,
what the element did (its steps' details, with the fact IDs), the hop's decisive action, the PROXY
protocol header on that leg in hex, and the ``X-Forwarded-For`` header on that leg. The source
ports of the gateway's and the sidecar's own upstream connections are not modelled; traces show
them from Linux's ephemeral range (:func:`sim.addresses.ephemeral_port`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from sim.path import Hop

if TYPE_CHECKING:
    from sim.scenario import Scenario

__all__ = ["HOP_COLUMNS", "hop_row", "trace", "trace_hops"]

HOP_COLUMNS = ("hop", "element", "src", "dst", "rewrite", "proxy_header_hex", "xff", "action")
"""Columns of the DataFrame :func:`trace` returns."""

_V1 = b"PROXY "
_V2 = b"\r\n\r\n\x00\r\nQUIT\n"


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


def hop_row(number: int, hop: Hop) -> tuple[object, ...]:
    """One row of :data:`HOP_COLUMNS` for ``hop`` (number ``number``, from 1)."""
    packet = hop.packet
    data = packet.data
    header_hex = _proxy_hex(data) if data else ""
    xff = _xff(data[len(header_hex) // 2 :]) if data else ""
    rewrite = "; ".join(step.detail for step in hop.steps if step.detail)
    return (number, hop.element, packet.src, packet.dst, rewrite, header_hex, xff, hop.action.value)


def trace_hops(scenario: Scenario, conn_id: int | None = None) -> tuple[int, list[Hop]]:
    """``(conn_id, hops)`` of one connection: the structured form of :func:`trace`.

    Each :class:`~sim.path.Hop` holds the element, the leg it sends on (or received, where the
    connection ended) and its :class:`~sim.path.Step` list. Arguments and errors as
    :func:`trace`.
    """
    conn, hops, _row = _traced(scenario, conn_id)
    return conn, hops


def _traced(scenario: Scenario, conn_id: int | None) -> tuple[int, list[Hop], pd.Series]:
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
    traced = int(topo.hops_conn_id)
    return traced, topo.hops, result.connections.iloc[traced]


def trace(scenario: Scenario, conn_id: int | None = None) -> pd.DataFrame:
    """The hop-by-hop path of one connection of ``scenario``.

    Args:
        scenario: the scenario to run.
        conn_id: the connection to follow; ``None`` follows the first successful one, or the
            first connection of the run when none succeeded (its last hop shows where and why
            it failed).

    Returns:
        One row per hop with the columns of :data:`HOP_COLUMNS`; ``frame.attrs`` holds the
        traced connection's ``conn_id``, ``outcome`` and ``reason`` (its row in
        :attr:`sim.Result.connections`).

    Raises:
        ValueError: ``conn_id`` is not a connection of the run, or (with ``None``) the run has
            no connection at all.
    """
    traced, hops, row = _traced(scenario, conn_id)
    rows = [hop_row(i + 1, h) for i, h in enumerate(hops)]
    frame = pd.DataFrame(rows, columns=list(HOP_COLUMNS))
    # Which connection this is and how it ended, for callers that print a heading.
    frame.attrs.update(conn_id=traced, outcome=str(row["outcome"]), reason=str(row["reason"]))
    return frame
