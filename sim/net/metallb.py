"""MetalLB's layer-2 speaker for one VIP: who answers ARP, and the gratuitous ARPs on takeover.

Models the ``speaker`` DaemonSet in L2 mode (MetalLB >= 0.14) for the ingress gateway's single
LoadBalancer IP, and, as ``announcer="naive"``, an endpoint-blind lease-based announcer:

* ``metallb``: every speaker computes the same answer (M5): the candidates, sorted by
  ``sha256(node + "#" + VIP)``, first wins (M3). Candidates are the live speakers (the
  memberlist view, :mod:`sim.net.memberlist`); with ``Local`` only those on a node with a usable
  (Ready) local endpoint (M3, M4); nothing is announced while the Service has no usable endpoint
  anywhere (M3, M7). The election re-runs on every membership change (ForceSync, M8) and on every
  EndpointSlice change the speakers see. Removing a non-announcing node never moves the VIP;
  a node coming back may take it back (M5).
* ``naive``: a single lease holder announces the VIP regardless of endpoints, like MetalLB <= 0.6
  (one cluster-wide leader, M1) or Cilium's per-service lease before its local-backend gate
  (M16). The first speaker to start (node-1) holds the lease while it is a member; when it is
  declared dead the lowest-numbered live speaker takes it. Its failure detection uses the same
  memberlist timing as ``metallb`` (a simplification: a lease would expire after its duration,
  10 s in M1), so that the two announcers differ only in endpoint awareness and placement.
* The new announcer sends a gratuitous ARP at once, then every ``garp_interval_s`` until
  ``garp_duration_s`` after the takeover (M9); each one updates the ARP caches of the clients and
  HAProxy on the segment (:class:`sim.net.clients.ArpCache`, M10). The announcement before the run
  starts is taken as settled (everyone has resolved the VIP).

Left out: several VIPs and address pools, L2Advertisement node selectors, the
``exclude-from-external-load-balancers`` label and ``NetworkUnavailable`` (M4), preferred-node
weights, split brain (M5), IPv6 NDP, the optional periodic re-announcement (M9) and clients that
ignore gratuitous ARP (M10); BGP mode (M15).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any

import simpy

from sim.net.memberlist import Memberlist
from sim.results import Recorder

if TYPE_CHECKING:
    from sim.net.node import Node
    from sim.net.segment import Segment
    from sim.scenario import Scenario


def hash_order(node_names: Sequence[str], vip: str) -> list[int]:
    """Node indices sorted by ``sha256(name + "#" + vip)`` (MetalLB ``sortL2Candidates``, M3)."""
    digests = [hashlib.sha256(f"{name}#{vip}".encode()).digest() for name in node_names]
    return sorted(range(len(node_names)), key=lambda i: digests[i])


class L2Speaker:
    """The speakers of all nodes, as one object: they compute the same election (M5).

    Args:
        env: the SimPy environment.
        scenario: ``announcer`` (``"metallb"`` or ``"naive"``), the traffic policy and the
            gratuitous-ARP schedule (``garp_interval_s``, ``garp_duration_s``, M9).
        segment: the L2 segment: the VIP to announce, and the ARP caches gratuitous ARPs update.
        nodes: every node, index order (names, and whether it has power: a dead node sends no
            GARP).
        memberlist: the membership view (who runs a live speaker).
        local_endpoints: ``node -> number of usable local endpoints`` as the speakers see them;
            :meth:`elect` calls it, so it always reflects the latest EndpointSlice view.
        recorder: where ``elected``/``withdrawn``/``garp`` events go.
    """

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        *,
        segment: Segment,
        nodes: Sequence[Node],
        memberlist: Memberlist,
        local_endpoints: Callable[[int], int],
        recorder: Recorder,
    ) -> None:
        self.env = env
        self.mode = scenario.announcer
        self.local_policy = scenario.external_traffic_policy == "Local"
        self.vip = vip = segment.vip
        self._nodes = nodes
        self._names = node_names = [n.name for n in nodes]
        self._members = memberlist
        self._local_endpoints = local_endpoints
        self._segment = segment
        self._arp = segment.arp
        self._garp_interval_s = scenario.garp_interval_s
        self._garp_duration_s = scenario.garp_duration_s
        self._recorder = recorder
        self.order = hash_order(node_names, vip)
        self.announcer: int | None = None
        self._takeovers = 0

    def winner(self) -> int | None:
        """The node that should announce the VIP now, or ``None``."""
        members = self._members.members
        if self.mode == "naive":
            # Lease semantics: the holder keeps it while it is a member (M1, M16).
            if self.announcer is not None and self.announcer in members:
                return self.announcer
            return min(members) if members else None
        has_endpoint = [self._local_endpoints(n) > 0 for n in range(len(self._names))]
        if not any(has_endpoint):
            return None  # M3: nothing is announced without a usable endpoint anywhere
        for node in self.order:
            if node in members and (has_endpoint[node] or not self.local_policy):
                return node
        return None

    def start(self) -> None:
        """Settle the initial announcement (time 0): the caches already point at the winner."""
        self.announcer = self.winner()
        if self.announcer is None:
            self._recorder.event(self.env.now, "withdrawn", "", f"nobody announces {self.vip}")
            return
        self._arp.resolve_all(self.announcer)
        if self.mode == "naive":
            why = "initial; the lease holder is the first speaker to start, M1, M16"
        else:
            why = "initial; candidates in hash order: " + ", ".join(
                self._names[n] for n in self.order
            )
        self._recorder.event(
            self.env.now, "elected", self._names[self.announcer], f"announces {self.vip} ({why})"
        )

    def elect(self) -> None:
        """Re-run the election (ForceSync on membership or endpoint changes, M3, M8)."""
        new = self.winner()
        old = self.announcer
        if new == old:
            return
        self.announcer = new
        if new is None:
            assert old is not None
            self._recorder.event(
                self.env.now, "withdrawn", self._names[old], f"stops announcing {self.vip}"
            )
            return
        source = "nobody" if old is None else self._names[old]
        self._recorder.event(
            self.env.now, "elected", self._names[new], f"takes over {self.vip} from {source}"
        )
        self._takeovers += 1
        self.env.process(self._garp_spam(new, self._takeovers))

    def _garp_spam(self, node: int, takeover: int) -> Generator[Any, Any, None]:
        # M9: immediately, then every 1.1 s until 5 s after the announcement.
        sent = 0
        elapsed = 0.0
        while elapsed < self._garp_duration_s:
            if self.announcer != node or self._takeovers != takeover or not self._nodes[node].up:
                return
            sent += 1
            self._segment.gratuitous(node)
            self._recorder.event(
                self.env.now,
                "garp",
                self._names[node],
                f"{self.vip} is-at {self._names[node]} #{sent}",
            )
            yield self.env.timeout(self._garp_interval_s)
            elapsed += self._garp_interval_s
