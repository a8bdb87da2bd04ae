"""One connection's path read from its trace: the legs, the rewrites and who learns what.

:func:`path_view` turns :func:`sim.trace_hops` into what :func:`sim.viz.paths.draw_paths`
draws: one :class:`Leg` per arrow (the ``src -> dst`` its sender wrote, the PROXY header and
``X-Forwarded-For`` it carries), the badges each element earned from its steps (``DNAT``,
``SNAT``, ``+PROXY v2``, ``+XFF``, ``reads PROXY``, a drop), the gateway's DRA (E7) and the
address the application learns (the sidecar's DRA, E9, I1). It reads the trace's own words and
adds nothing: a step the trace does not record gets no badge.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.addresses import HAPROXY_IP, SIDECAR_INBOUND_IP, node_ip, tunnel_ip
from sim.path import Action, Hop
from sim.trace import hop_row, trace_hops

if TYPE_CHECKING:
    from sim.scenario import Scenario

__all__ = ["SLOTS", "Leg", "PathView", "address_role", "describe_address", "path_view"]

SLOTS = ("client", "HAProxy", "entry node", "gateway pod", "app pod")
"""The columns of a path, left to right; a :class:`Leg`'s ``slot`` indexes them."""

# (pattern on a step's detail, badge): what an element did, in the trace's own words.
_BADGES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^DNAT "), "DNAT"),
    (re.compile(r"^MASQUERADE "), "SNAT"),
    (re.compile(r"^no SNAT"), "no SNAT"),
    (re.compile(r"PROXY v1 header carries"), "+PROXY v1"),
    (re.compile(r"PROXY v2 header carries"), "+PROXY v2"),
    (re.compile(r"^proxy_protocol filter: PROXY header"), "reads PROXY"),
    (re.compile(r"appends x-forwarded-for|XFF appended"), "+XFF"),
)
_END_BADGES = {
    Action.DROPPED: "DROP",
    Action.NO_ANSWER: "no answer",
    Action.REFUSED: "refused",
    Action.RESET: "reset",
}
_DRA = re.compile(r"DRA = (\d+\.\d+\.\d+\.\d+)")


@dataclass(frozen=True)
class Leg:
    """One arrow: the leg an element sent on, as :func:`sim.trace_hops` recorded it."""

    sender: str
    """The element that sent it (the trace's ``element``)."""
    slot: int
    """Its column in :data:`SLOTS`."""
    src: str
    dst: str
    src_changed: bool
    """The source address differs from the previous leg's: this element rewrote it."""
    dst_changed: bool
    proxy_src: str
    """``ip:port`` a PROXY header on this leg carries (``"LOCAL"``: none; ``""``: no header)."""
    xff: str
    """The ``X-Forwarded-For`` on this leg, entries comma-separated (``""``: none)."""


@dataclass(frozen=True)
class PathView:
    """One connection's path as :func:`sim.viz.paths.draw_paths` draws it."""

    conn_id: int
    client_ip: str
    elements: dict[int, str]
    """Per slot of :data:`SLOTS` that the connection reached, the trace's element name."""
    badges: dict[int, tuple[str, ...]]
    legs: tuple[Leg, ...]
    """The legs between the elements, in order (the sidecar's own leg to the app is not one:
    it stays inside the app pod)."""
    ended: str
    """``""`` for a delivered connection, else its last action and where (``"DROPPED at
    node-1 kube-proxy"``)."""
    gateway_ip: str
    """The gateway's DRA, the client address it uses (E7); ``""`` if it never decided one."""
    app_ip: str
    """The client address the application learns (the sidecar's DRA, E9, I1); ``""`` if the
    request never reached it."""
    retransmitted: bool
    """The SYN was sent more than once (T1); the path is its last attempt."""


def address_role(ip: str, scenario: Scenario) -> str:
    """Whose address ``ip`` is in ``scenario``: ``client``, ``SNAT``, ``HAProxy`` or ``pod``.

    Node and tunnel addresses are ``SNAT``: a node's address becomes a connection's source
    only through MASQUERADE (K1, N3). Clients use ``10.0.1.0`` upwards (:mod:`sim.addresses`).
    """
    if ip == HAPROXY_IP:
        return "HAProxy"
    nodes = range(scenario.nodes)
    if ip in {node_ip(i) for i in nodes} | {tunnel_ip(i) for i in nodes}:
        return "SNAT"
    if ip.startswith("10.") and ip.count(".") == 3 and ip.split(".")[2] != "0":
        return "client"
    return "pod"


def describe_address(ip: str, scenario: Scenario) -> str:
    """``ip`` in words: ``"the client"``, ``"node-3's tunnel IP"``, ``"HAProxy"``, ``"a pod"``."""
    for i in range(scenario.nodes):
        if ip == node_ip(i):
            return f"{scenario.node_names[i]}'s node IP"
        if ip == tunnel_ip(i):
            return f"{scenario.node_names[i]}'s tunnel IP"
    role = address_role(ip, scenario)
    if role == "pod":
        return "the sidecar (I8)" if ip == SIDECAR_INBOUND_IP else "a pod"
    return "the client" if role == "client" else role


def _slot(element: str) -> int:
    if element == "client" or element.startswith("caller pod"):
        return 0
    if element.startswith("haproxy"):
        return 1
    if " on node-" in element or "istio-ingressgateway" in element:
        return 3
    if element.endswith("kube-proxy") or element.startswith(("node-", "L2 segment")):
        return 2
    return 4


def _badges(hop: Hop) -> list[str]:
    found: list[str] = []
    for step in hop.steps:
        for pattern, badge in _BADGES:
            if pattern.search(step.detail) and badge not in found:
                found.append(badge)
        if step.action in _END_BADGES:
            found.append(_END_BADGES[step.action])
        elif step.action is Action.ANSWERED:
            status = re.search(r"\b([45]\d\d)\b", step.detail)
            found.append(status.group(1) if status else "error")
    return found


def _proxy_src(header_hex: str) -> str:
    if not header_hex:
        return ""
    from sim.proxy_protocol import decode

    decoded = decode(bytes.fromhex(header_hex))
    header = decoded[0] if decoded is not None else None
    if header is None or header.src_addr is None:
        return "LOCAL"
    return f"{header.src_addr}:{header.src_port}"


def _last_attempt(hops: Sequence[Hop]) -> tuple[dict[int, Hop], dict[int, list[str]], bool]:
    """Per slot, the hop of the last attempt, and the badges each element earned on it."""
    chosen: dict[int, Hop] = {}
    badges: dict[int, list[str]] = {}
    retransmitted = False
    for hop in hops:
        slot = _slot(hop.element)
        if chosen and slot <= max(chosen):
            # A retransmitted SYN (T1) starts over from its sender: forget what came after it.
            retransmitted = True
            for later in [s for s in chosen if s > slot]:
                del chosen[later]
                badges.pop(later, None)
        chosen[slot] = hop
        mine = badges.setdefault(slot, [])
        mine.extend(b for b in _badges(hop) if b not in mine)
    return chosen, badges, retransmitted


def _dra(hop: Hop | None) -> str:
    for step in hop.steps if hop is not None else ():
        match = _DRA.search(step.detail)
        if match:
            return match.group(1)
    return ""


def _legs(chosen: dict[int, Hop], first: Hop) -> list[Leg]:
    slots = sorted(chosen)
    last = chosen[slots[-1]]
    if last.action is not Action.DELIVERED:
        slots = slots[:-1]  # where it ended: that element sent nothing on
    legs: list[Leg] = []
    prev = first.packet
    for slot in (s for s in slots if s < 4):
        hop = chosen[slot]
        row = hop_row(0, hop)
        packet = hop.packet
        legs.append(
            Leg(
                sender=hop.element,
                slot=slot,
                src=packet.src,
                dst=packet.dst,
                src_changed=slot > 0 and packet.src_ip != prev.src_ip,
                dst_changed=slot > 0 and packet.dst_ip != prev.dst_ip,
                proxy_src=_proxy_src(str(row[5])),
                xff=str(row[6]),
            )
        )
        prev = packet
    return legs


def path_view(scenario: Scenario, conn_id: int | None = None) -> PathView:
    """The path of one connection of ``scenario``, read from :func:`sim.trace_hops`.

    Args:
        scenario: the scenario to trace.
        conn_id: the connection; ``None`` as in :func:`sim.trace` (the first successful one).

    Raises:
        ValueError: as :func:`sim.trace`.
    """
    traced, hops = trace_hops(scenario, conn_id)
    chosen, badges, retransmitted = _last_attempt(hops)
    last = chosen[max(chosen)]
    delivered = last.action is Action.DELIVERED
    return PathView(
        conn_id=traced,
        client_ip=hops[0].packet.src_ip,
        elements={s: chosen[s].element for s in sorted(chosen)},
        badges={s: tuple(b) for s, b in badges.items() if b},
        legs=tuple(_legs(chosen, hops[0])),
        ended="" if delivered else f"{last.action.value} at {last.element}",
        gateway_ip=_dra(chosen.get(3)),
        app_ip=_dra(chosen.get(4)) if delivered else "",
        retransmitted=retransmitted,
    )
