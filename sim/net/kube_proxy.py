"""kube-proxy in iptables mode, for the one LoadBalancer Service of the ingress gateway.

Models what every node's kube-proxy does with a packet to the MetalLB VIP (all nodes watch the
same EndpointSlices, so one object stands for all of them; the node the packet arrived on is an
argument):

* ``externalTrafficPolicy: Cluster``: mark for masquerade before choosing an endpoint (K1, K4),
  so the source is rewritten even when the endpoint is local; the new source is the address of the
  egress device, the node IP for a local pod and the ingress node's tunnel IP for a remote one
  (N1-N3, :meth:`sim.net.node.Node.masquerade_ip`).
* ``Local``: keep the client address and use only endpoints on this node (K2, K3); with endpoints
  elsewhere but none here the packet is DROPped (the client times out), with no endpoints at all
  it is REJECTed (the client sees "connection refused") (K6, K7).
* Endpoint choice: uniform at random among the usable endpoints, once per new connection
  (``-m statistic --mode random``, K14); the caller passes the uniform number so that every
  random draw comes from a seeded stream.
* "Usable" means Ready in the EndpointSlice as kube-proxy last saw it: a dead node's pods stay
  Ready until the node lifecycle controller marks them, so for ``node_monitor_grace_period_s``
  some new connections still go to a dead pod (K15). The topology feeds updates after
  ``endpoint_update_delay_s``.
* In-cluster callers (a pod sending to the VIP) are short-circuited on the caller's own node
  (K8) and always use all Ready endpoints, whatever the policy (K3). The LB IP rule jumps to the
  Service's EXT chain, so with ``Cluster`` the caller is masqueraded like external traffic (the
  mark comes first, K1; the source is the caller node's egress device, N1-N3), while with
  ``Local`` pod sources skip the mark (K2a).

* NodePort (``client_target="nodeport"``): a client connecting to a node's own address and the
  NodePort meets the same rules (K1, K6): under ``Local`` a node without a local endpoint drops
  it (K7), under ``Cluster`` any node forwards and masquerades.

* healthCheckNodePort (``Local`` only, K10): kube-proxy's own HTTP server answers any path with
  200 while the node has Ready local endpoints, else 503 (K11, :meth:`KubeProxy.health_check`).

* Terminating endpoints (K12, K18): a gracefully deleted pod stays in the EndpointSlice as
  ``serving`` while it drains; kube-proxy uses such endpoints only when no Ready one is left,
  separately for the Cluster set and for each node's Local set. The healthCheckNodePort counts
  Ready endpoints only, so it answers 503 once only terminating ones remain (K11).
* MASQUERADE ``--random-fully`` (K17): a masqueraded connection gets a random source port from
  1024-65535 (the kernel's default NAT range, N5), drawn from the scenario's seeded stream; its
  address is the egress device's (N1-N3, C1).
* Conntrack (K14): the DNAT of a connection's first SYN is its conntrack entry on the entry node,
  so a retransmitted SYN that reaches the same node goes to the same pod, even a dead one (T1);
  one that reaches another node (after a gratuitous ARP) is a new flow there.

Left out: IPVS and nftables modes (K5, K16), the health server's JSON body and
``X-Load-Balancing-Endpoint-Weight`` header (K11), an unhealthy kube-proxy
(``serviceProxyHealthy: false``), host-network callers (K2b), session affinity, conntrack
timeouts (a flow lives exactly as long as its connection, K14), ``ctstate INVALID`` drops (M17:
the model resets mid-stream packets, ``nf_conntrack_tcp_loose=1``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from sim.addresses import GATEWAY_PORT, NODE_PORT
from sim.net.node import NIC, Node
from sim.path import Action, Flow, Packet, Step, Verdict, new_packet

if TYPE_CHECKING:
    from sim.net.node import GatewayPod

FORWARD = 0
"""Route verdict: DNAT to the returned endpoint."""
DROP = 1
"""Route verdict: ``Local`` and no local endpoint: the packet is silently dropped (K6)."""
REJECT = 2
"""Route verdict: the Service has no endpoints at all: ICMP port unreachable (K6)."""


_DROP_DETAIL = "DROP: Local and no local endpoint (K6, K7)"
_REJECT_DETAIL = "REJECT: the Service has no endpoints (K6)"


class KubeProxy:
    """The Service rules of every node, built from the EndpointSlices kube-proxy last saw.

    Args:
        nodes: number of nodes.
        local_policy: ``True`` for ``externalTrafficPolicy: Local``.
        hosts: the :class:`~sim.net.node.Node` objects (index order), for the data path
            (:meth:`handle`); the routing tables alone need only the count.
        pods: every gateway pod incarnation, by index (the endpoint table holds indices).
    """

    __slots__ = (
        "_hosts",
        "_local",
        "_local_term",
        "_pods",
        "_ready",
        "_term",
        "local_policy",
        "nodes",
    )

    def __init__(
        self,
        *,
        nodes: int,
        local_policy: bool,
        hosts: Sequence[Node] = (),
        pods: Sequence[GatewayPod] = (),
    ) -> None:
        self.nodes = nodes
        self.local_policy = local_policy
        self._hosts = hosts
        self._pods = pods
        self._ready: list[int] = []
        self._local: list[list[int]] = [[] for _ in range(nodes)]
        self._term: list[int] = []
        self._local_term: list[list[int]] = [[] for _ in range(nodes)]

    def set_endpoints(
        self, ready: Iterable[tuple[int, int]], terminating: Iterable[tuple[int, int]] = ()
    ) -> None:
        """Replace the endpoint table: ``(pod_index, node_index)`` pairs of Ready pods, and of
        serving-terminating pods (the fallback, K12)."""
        self._ready, self._local = self._table(ready)
        self._term, self._local_term = self._table(terminating)

    def _table(self, pairs: Iterable[tuple[int, int]]) -> tuple[list[int], list[list[int]]]:
        ordered = sorted(pairs)
        local: list[list[int]] = [[] for _ in range(self.nodes)]
        for pod, node in ordered:
            local[node].append(pod)
        return [pod for pod, _ in ordered], local

    @property
    def ready(self) -> Sequence[int]:
        """Indices of the Ready gateway pods, in pod order."""
        return self._ready

    def local_ready(self, node: int) -> Sequence[int]:
        """Indices of the Ready gateway pods on ``node``."""
        return self._local[node]

    def local_usable(self, node: int) -> int:
        """How many endpoints on ``node`` can serve: Ready or serving-terminating (M4)."""
        return len(self._local[node]) + len(self._local_term[node])

    def health_check(self, node: int) -> tuple[int, int]:
        """``(status, localEndpoints)`` of ``node``'s healthCheckNodePort answer (K10, K11).

        200 when kube-proxy's view holds at least one Ready endpoint on ``node``, else 503:
        terminating endpoints do not count (K11); kube-proxy itself is always healthy here. The
        caller checks that the node is up.
        """
        count = len(self._local[node])
        return (200 if count else 503), count

    def route_external(self, node: int, u: float) -> tuple[int, int]:
        """Verdict for a new external connection to the VIP (or NodePort) arriving on ``node``.

        Args:
            node: index of the node the packet arrived on (the VIP's ARP owner for the sender).
            u: a uniform number in [0, 1) that picks the endpoint (K14).

        Returns:
            ``(FORWARD, pod_index)``, ``(DROP, -1)`` or ``(REJECT, -1)``. Ready endpoints first,
            serving-terminating ones only when none is Ready (K12). Whether the source is
            masqueraded follows from the policy alone (K1, K2).
        """
        if not self._ready and not self._term:
            return REJECT, -1
        if self.local_policy:
            local = self._local[node] or self._local_term[node]
            if not local:
                return DROP, -1
            return FORWARD, local[int(u * len(local))]
        pool = self._ready or self._term
        return FORWARD, pool[int(u * len(pool))]

    def route_in_cluster(self, u: float) -> tuple[int, int]:
        """Verdict for a pod on any node sending to the VIP: short-circuited, Cluster semantics.

        kube-proxy matches the VIP in ``KUBE-SERVICES`` on the caller's node and DNATs it straight
        to an endpoint (K8); the endpoint set does not depend on the policy (K3). Whether the
        source is masqueraded does: with ``Cluster`` yes (K1), with ``Local`` not for a pod
        source (K2a); the caller decides that from :attr:`local_policy`.
        """
        pool = self._ready or self._term
        if not pool:
            return REJECT, -1
        return FORWARD, pool[int(u * len(pool))]

    def handle(self, packet: Packet, flow: Flow) -> Packet | Verdict:
        """A new external connection on node ``flow.node``: DNAT (and SNAT), DROP or REJECT.

        The destination is the VIP or the node's NodePort (the same rules, K7). ``Cluster``
        masquerades to the egress device's address with a random port (K1, K17, N1-N3, C1);
        ``Local`` keeps the source and uses only local endpoints (K2). A retransmitted SYN on the
        node that DNATed the first one follows that conntrack entry (K14, T1). Sets ``flow.pod``,
        ``gateway_pod``, ``gateway_node`` and ``snat_ip``.
        """
        host = self._hosts[flow.node]
        pinned = flow.pinned_node == flow.node and flow.pod is not None
        if pinned:
            pod = flow.pod
            assert pod is not None
        else:
            verdict, index = self.route_external(flow.node, flow.u_endpoint)
            if verdict != FORWARD:
                return _deny(verdict, f"{host.name} kube-proxy", packet, flow)
            pod = self._pods[index]
        out = self._dnat(packet, flow, pod)
        if flow.hops is not None:
            target = "NodePort" if packet.dst_port == NODE_PORT else "VIP"
            dnat = f"DNAT {target} -> {pod.name} on {pod.host.name} (K14)"
            if pinned:
                dnat += ", the first SYN's conntrack entry (K14, T1)"
            keep = "no SNAT, client address kept (Local, K2)"
            snat = self._snat_step(host, pod, flow, ("K1, K17, N3", keep))
            flow.hop(f"{host.name} kube-proxy", out, Step(Action.TRANSFORMED, dnat), snat)
        return out

    def handle_in_cluster(self, packet: Packet, flow: Flow) -> Packet | Verdict:
        """A pod on node ``flow.node`` sends to the VIP: short-circuited on its own node (K8).

        The endpoint set is the same for both policies (K3); ``Cluster`` masquerades pod sources
        too (the mark comes first, K1), ``Local`` does not for a pod source (K2a).
        """
        host = self._hosts[flow.node]
        flow.entry_node = host.name
        pinned = flow.pinned_node == flow.node and flow.pod is not None
        if pinned:
            pod = flow.pod
            assert pod is not None
        else:
            verdict, index = self.route_in_cluster(flow.u_endpoint)
            if verdict != FORWARD:
                return _deny(verdict, f"{host.name} kube-proxy", packet, flow)
            pod = self._pods[index]
        out = self._dnat(packet, flow, pod)
        if flow.hops is not None:
            dnat = f"DNAT VIP -> {pod.name} (short-circuit on the caller's node, K8)"
            keep = "no SNAT for a pod source under Local (K2a, K3)"
            facts = ("Cluster marks pod sources too, K1, K17, N3", keep)
            snat = self._snat_step(host, pod, flow, facts)
            flow.hop(f"{host.name} kube-proxy", out, Step(Action.TRANSFORMED, dnat), snat)
        return out

    def _dnat(self, packet: Packet, flow: Flow, pod: GatewayPod) -> Packet:
        """DNAT to ``pod`` and, under ``Cluster``, MASQUERADE (K1, K4, K17, N1-N3)."""
        flow.pod = pod
        flow.pinned_node = flow.node
        flow.gateway_pod, flow.gateway_node = pod.name, pod.host.name
        if self.local_policy:
            return new_packet((packet.src_ip, packet.src_port, pod.ip, GATEWAY_PORT, packet.data))
        src = flow.snat_ip = self._hosts[flow.node].masquerade_ip(pod.node)
        return new_packet((src, flow.snat_port, pod.ip, GATEWAY_PORT, packet.data))

    @staticmethod
    def _snat_step(host: Node, pod: GatewayPod, flow: Flow, facts: tuple[str, str]) -> Step:
        """The trace step for the source address: MASQUERADE through which device, or kept.

        ``facts`` = (the facts of a MASQUERADE, the text of keeping the address).
        """
        if not flow.snat_ip:
            return Step(Action.FORWARDED, facts[1])
        ip, device = host.egress(pod.node)
        if device.startswith("cali"):
            why = "node IP: pod on this node, its veth has no IPv4 address"
        elif device == NIC:
            why = f"node IP: pod on another node, routed natively ({host.encapsulation}, C1)"
        else:
            why = f"tunnel IP: pod on another node ({host.encapsulation}, C1)"
        where = f"{ip}:{flow.snat_port} via {device}"
        return Step(Action.TRANSFORMED, f"MASQUERADE to {where} ({why}; random port; {facts[0]})")


def _deny(verdict: int, element: str, packet: Packet, flow: Flow) -> Verdict:
    # K6: DROP -> the client's SYNs go unanswered; REJECT -> refused at once.
    if verdict == DROP:
        result = Verdict("timeout", "drop_no_local_endpoint", True, Action.DROPPED, _DROP_DETAIL)
    else:
        result = Verdict("refused", "reject_no_endpoints", False, Action.REFUSED, _REJECT_DETAIL)
    if flow.hops is not None:
        flow.hop(element, packet, Step(result.action, result.detail))
    return result
