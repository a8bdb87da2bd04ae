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

Left out: terminating-endpoint fallback (K12), IPVS and nftables modes (K5, K16), the health
server's JSON body and ``X-Load-Balancing-Endpoint-Weight`` header (K11), an unhealthy
kube-proxy (``serviceProxyHealthy: false``), host-network callers (K2b), session affinity,
conntrack timeouts (a flow lives exactly as long as its connection, K14).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from sim.addresses import GATEWAY_PORT, NODE_PORT
from sim.path import Action, Flow, Packet, Step, Verdict, new_packet

if TYPE_CHECKING:
    from sim.net.node import GatewayPod, Node

FORWARD = 0
"""Route verdict: DNAT to the returned endpoint."""
DROP = 1
"""Route verdict: ``Local`` and no local endpoint: the packet is silently dropped (K6)."""
REJECT = 2
"""Route verdict: the Service has no endpoints at all: ICMP port unreachable (K6)."""


_DROP_DETAIL = "DROP: Local and no local endpoint (K6, K7)"
_REJECT_DETAIL = "REJECT: the Service has no endpoints (K6)"


class KubeProxy:
    """The Service rules of every node, built from the Ready endpoints kube-proxy last saw.

    Args:
        nodes: number of nodes.
        local_policy: ``True`` for ``externalTrafficPolicy: Local``.
        hosts: the :class:`~sim.net.node.Node` objects (index order), for the data path
            (:meth:`handle`); the routing tables alone need only the count.
        pods: every gateway pod incarnation, by index (the endpoint table holds indices).
    """

    __slots__ = ("_hosts", "_local", "_pods", "_ready", "local_policy", "nodes")

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

    def set_endpoints(self, ready: Iterable[tuple[int, int]]) -> None:
        """Replace the endpoint table with ``(pod_index, node_index)`` pairs of Ready pods."""
        pairs = sorted(ready)
        self._ready = [pod for pod, _ in pairs]
        self._local = [[] for _ in range(self.nodes)]
        for pod, node in pairs:
            self._local[node].append(pod)

    @property
    def ready(self) -> Sequence[int]:
        """Indices of the Ready gateway pods, in pod order."""
        return self._ready

    def local_ready(self, node: int) -> Sequence[int]:
        """Indices of the Ready gateway pods on ``node``."""
        return self._local[node]

    def health_check(self, node: int) -> tuple[int, int]:
        """``(status, localEndpoints)`` of ``node``'s healthCheckNodePort answer (K10, K11).

        200 when kube-proxy's view holds at least one Ready endpoint on ``node``, else 503
        (kube-proxy itself is always healthy here). The caller checks that the node is up.
        """
        count = len(self._local[node])
        return (200 if count else 503), count

    def route_external(self, node: int, u: float) -> tuple[int, int]:
        """Verdict for a new external connection to the VIP arriving on ``node``.

        Args:
            node: index of the node the packet arrived on (the VIP's ARP owner for the sender).
            u: a uniform number in [0, 1) that picks the endpoint (K14).

        Returns:
            ``(FORWARD, pod_index)``, ``(DROP, -1)`` or ``(REJECT, -1)``. Whether the source is
            masqueraded follows from the policy alone (K1, K2).
        """
        ready = self._ready
        if not ready:
            return REJECT, -1
        if self.local_policy:
            local = self._local[node]
            if not local:
                return DROP, -1
            return FORWARD, local[int(u * len(local))]
        return FORWARD, ready[int(u * len(ready))]

    def route_in_cluster(self, u: float) -> tuple[int, int]:
        """Verdict for a pod on any node sending to the VIP: short-circuited, Cluster semantics.

        kube-proxy matches the VIP in ``KUBE-SERVICES`` on the caller's node and DNATs it straight
        to an endpoint (K8); the endpoint set does not depend on the policy (K3). Whether the
        source is masqueraded does: with ``Cluster`` yes (K1), with ``Local`` not for a pod
        source (K2a); the caller decides that from :attr:`local_policy`.
        """
        ready = self._ready
        if not ready:
            return REJECT, -1
        return FORWARD, ready[int(u * len(ready))]

    def handle(self, packet: Packet, flow: Flow) -> Packet | Verdict:
        """A new external connection on node ``flow.node``: DNAT (and SNAT), DROP or REJECT.

        The destination is the VIP or the node's NodePort (the same rules, K7). ``Cluster``
        masquerades to the egress device's address (K1, N1-N3); ``Local`` keeps the source and
        uses only local endpoints (K2). Sets ``flow.pod``, ``gateway_pod``, ``gateway_node`` and
        ``snat_ip``.
        """
        host = self._hosts[flow.node]
        verdict, index = self.route_external(flow.node, flow.u_endpoint)
        if verdict != FORWARD:
            return _deny(verdict, f"{host.name} kube-proxy", packet, flow)
        pod = self._pods[index]
        out = self._dnat(packet, flow, pod)
        if flow.hops is not None:
            target = "NodePort" if packet.dst_port == NODE_PORT else "VIP"
            dnat = f"DNAT {target} -> {pod.name} on {pod.host.name} (K14)"
            if flow.snat_ip:
                mine = flow.snat_ip == host.node_ip
                device = "node IP: pod on this node" if mine else "tunnel IP: pod on another node"
                snat = Step(Action.TRANSFORMED, f"MASQUERADE to {flow.snat_ip} ({device}, K1, N3)")
            else:
                snat = Step(Action.FORWARDED, "no SNAT, client address kept (Local, K2)")
            flow.hop(f"{host.name} kube-proxy", out, Step(Action.TRANSFORMED, dnat), snat)
        return out

    def handle_in_cluster(self, packet: Packet, flow: Flow) -> Packet | Verdict:
        """A pod on node ``flow.node`` sends to the VIP: short-circuited on its own node (K8).

        The endpoint set is the same for both policies (K3); ``Cluster`` masquerades pod sources
        too (the mark comes first, K1), ``Local`` does not for a pod source (K2a).
        """
        host = self._hosts[flow.node]
        flow.entry_node = host.name
        verdict, index = self.route_in_cluster(flow.u_endpoint)
        if verdict != FORWARD:
            return _deny(verdict, f"{host.name} kube-proxy", packet, flow)
        pod = self._pods[index]
        out = self._dnat(packet, flow, pod)
        if flow.hops is not None:
            dnat = f"DNAT VIP -> {pod.name} (short-circuit on the caller's node, K8)"
            if flow.snat_ip:
                what = f"MASQUERADE to {flow.snat_ip} (Cluster marks pod sources too, K1, N3)"
                snat = Step(Action.TRANSFORMED, what)
            else:
                snat = Step(Action.FORWARDED, "no SNAT for a pod source under Local (K2a, K3)")
            flow.hop(f"{host.name} kube-proxy", out, Step(Action.TRANSFORMED, dnat), snat)
        return out

    def _dnat(self, packet: Packet, flow: Flow, pod: GatewayPod) -> Packet:
        """DNAT to ``pod`` and, under ``Cluster``, MASQUERADE (K1, K4, N1-N3)."""
        flow.pod = pod
        flow.gateway_pod, flow.gateway_node = pod.name, pod.host.name
        src = packet.src_ip
        if not self.local_policy:
            src = flow.snat_ip = self._hosts[flow.node].masquerade_ip(pod.node)
        return new_packet((src, packet.src_port, pod.ip, GATEWAY_PORT, packet.data))


def _deny(verdict: int, element: str, packet: Packet, flow: Flow) -> Verdict:
    # K6: DROP -> the client's SYNs go unanswered; REJECT -> refused at once.
    if verdict == DROP:
        result = Verdict("timeout", "drop_no_local_endpoint", True, Action.DROPPED, _DROP_DETAIL)
    else:
        result = Verdict("refused", "reject_no_endpoints", False, Action.REFUSED, _REJECT_DETAIL)
    if flow.hops is not None:
        flow.hop(element, packet, Step(result.action, result.detail))
    return result
