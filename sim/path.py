"""The path as data: a packet walks the elements, each hop decided by the element it reaches.

Modelled on Batfish's traceroute answers and Google Cloud's Connectivity Tests: a connection is a
*flow* that walks *hops*; at each hop the element takes *steps*, each an :class:`Action` with the
detail that explains it (which rule, which fact), and the walk ends in one final state with its
reason (delivered, or a :class:`Verdict`: dropped, refused, reset, an HTTP error).

Every element that a packet can reach has a method ``handle(packet, flow)`` (or a few named
variants) that returns one of two things:

* the :class:`Packet` it sends on, rewritten where it rewrites (DNAT, SNAT, a PROXY header
  prepended, an ``X-Forwarded-For`` appended), or
* a :class:`Verdict`: the connection ends there, with the outcome the client sees, the reason and
  the fact it follows.

The walk itself is :meth:`sim.topology.Topology.walk`. Its :class:`Flow` carries what one
connection needs on the way (its random draws, where it is) and what the elements observed (the
entry node, the SNAT address, the gateway's view); the per-connection record
(:class:`sim.results.Connection`) is built from it in one place, :meth:`Flow.record`. With
recording on (``flow.hops`` is a list, as :func:`sim.trace` asks), each element also appends the
:class:`Hop` it made, with its steps, so the answer and its explanation come from the same walk.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

from sim.results import Connection

if TYPE_CHECKING:
    from sim.net.node import GatewayPod

__all__ = ["Action", "Flow", "Hop", "Packet", "Step", "Verdict", "new_packet"]


class Action(StrEnum):
    """What an element did with a packet at one step (Batfish's ``StepAction``, our names)."""

    ORIGINATED = "ORIGINATED"
    """A client (or a pod) opened the connection and sent the first bytes."""
    FORWARDED = "FORWARDED"
    """Sent on unchanged (a decision that rewrote nothing, e.g. Local keeps the client address)."""
    TRANSFORMED = "TRANSFORMED"
    """Sent on rewritten: DNAT, SNAT, a new connection from a proxy, a header added."""
    ACCEPTED = "ACCEPTED"
    """Read and accepted (a PROXY header, an HTTP request)."""
    DELIVERED = "DELIVERED"
    """The application received the request: the final state of a successful connection."""
    DROPPED = "DROPPED"
    """Silently dropped: the sender's SYNs go unanswered and it times out."""
    NO_ANSWER = "NO_ANSWER"
    """Nobody answers (a powered-off node, no ARP answer, a pod that is gone): a time-out."""
    REFUSED = "REFUSED"
    """Refused at once (ICMP port unreachable, a RST to the SYN)."""
    RESET = "RESET"
    """Closed by a reset after the connection was established."""
    ANSWERED = "ANSWERED"
    """Answered with an HTTP error status instead of being passed on."""


class Packet(NamedTuple):
    """The first bytes of one leg of a connection, with their L3/L4 envelope.

    ``data`` is everything the sender writes first: an optional PROXY header and the HTTP
    request head. A port of 0 means "no port" (an address learnt from ``X-Forwarded-For``).
    """

    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    data: bytes = b""

    @property
    def src(self) -> str:
        """``ip:port`` of the source (the bare address for port 0)."""
        return f"{self.src_ip}:{self.src_port}" if self.src_port else self.src_ip

    @property
    def dst(self) -> str:
        """``ip:port`` of the destination (the bare address for port 0)."""
        return f"{self.dst_ip}:{self.dst_port}" if self.dst_port else self.dst_ip


class Step(NamedTuple):
    """One thing an element did at its hop, and the detail (with fact IDs) that explains it."""

    action: Action
    detail: str


class Hop(NamedTuple):
    """One element's part of the path.

    ``packet`` is the leg the element sends on after its steps; at the hop where the connection
    ended it is the leg the element received. ``steps`` are in the order the element took them.
    """

    element: str
    packet: Packet
    steps: tuple[Step, ...]

    @property
    def action(self) -> Action:
        """The hop's decisive action: its last step's."""
        return self.steps[-1].action


class Verdict(NamedTuple):
    """How a connection ended before reaching the application.

    ``outcome`` is what the client sees (a value of :data:`sim.results.OUTCOMES`), ``reason`` the
    failure reason (a ``failed_<reason>`` key of the summary), ``timed_out`` whether the client
    only learns it when its connect timeout expires (else at once), ``action`` and ``detail``
    what the trace shows at the hop where it ended.
    """

    outcome: str
    reason: str
    timed_out: bool
    action: Action
    detail: str


class Flow:
    """One connection on its walk: its draws, where it is, and what the elements observed.

    The walk (:meth:`sim.topology.Topology.walk`) creates it; elements read ``node`` (the node
    the packet is on) and ``u_endpoint`` (kube-proxy's uniform draw, K14), and set the fields they
    are authoritative for. ``hops`` is ``None`` unless the walk records (``sim.trace``).

    The observations default to ``""`` (not observed) at class level, so a walk pays only for
    what its elements set: one is made per connection.
    """

    client_ip = ""
    client_port = 0
    node = -1
    """Index of the node the packet is on (``-1``: not on a node yet)."""
    server = -1
    """HAProxy's server for this connection (``-1``: no HAProxy)."""
    pod: GatewayPod | None = None
    """The gateway pod kube-proxy DNATed the connection to (its conntrack entry, K14)."""
    entry_node = ""
    gateway_pod = ""
    gateway_node = ""
    snat_ip = ""
    gateway_direct_ip = ""
    gateway_client_ip = ""
    x_envoy_external_address = ""
    xff_at_app = ""
    app_remote_ip = ""

    def __init__(
        self, conn_id: int, t_start: float, u_endpoint: float, path: str, hops: list[Hop] | None
    ) -> None:
        self.conn_id = conn_id
        self.t_start = t_start
        self.u_endpoint = u_endpoint
        self.path = path
        self.hops = hops

    def hop(self, element: str, packet: Packet, *steps: Step) -> None:
        """Record one hop (only while recording; callers check ``flow.hops is not None``)."""
        assert self.hops is not None
        self.hops.append(Hop(element, packet, steps))

    def record(self, outcome: str, reason: str, t_end: float) -> Connection:
        """The per-connection record: the one place a :class:`~sim.results.Connection` is built."""
        return _new_connection(
            (
                self.conn_id,
                self.client_ip,
                self.client_port,
                self.t_start,
                t_end,
                outcome,
                reason,
                self.path,
                self.entry_node,
                self.gateway_pod,
                self.gateway_node,
                self.snat_ip,
                self.gateway_direct_ip,
                self.gateway_client_ip,
                self.x_envoy_external_address,
                self.xff_at_app,
                self.app_remote_ip,
            )
        )


# Named tuples built from a ready tuple, skipping the generated __new__'s keyword handling: the
# walk makes several packets and one record per connection (benchmarks/bench_sim.py).
new_packet: Callable[[tuple[str, int, str, int, bytes]], Packet] = partial(tuple.__new__, Packet)
"""``new_packet((src_ip, src_port, dst_ip, dst_port, data))``: a :class:`Packet`, fast."""
_new_connection: Callable[[tuple[Any, ...]], Connection] = partial(tuple.__new__, Connection)
