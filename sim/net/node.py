"""A Kubernetes node (its two source addresses, whether it has power) and a gateway pod on it.

Models a worker node of the cluster as far as source addresses are concerned: the primary NIC
address (``node_ip``, on the clients' L2 segment) and the address Calico gives the node's tunnel
device (``tunnel_ip``, N2). Which of the two a masqueraded packet leaves with depends on the egress
device of the route to the chosen pod (N1, N3): :meth:`Node.masquerade_ip`, used by
:mod:`sim.net.kube_proxy`.

A node is either up or powered off (:class:`sim.NodeDown`); a powered-off node drops every
packet, which the clients see as a timeout (no RST comes back): :meth:`Node.handle`. A gateway
pod answers only while it runs on a live node: :meth:`GatewayPod.handle`, which hands the
packet to the pod's Envoy (:class:`sim.net.gateway.IngressGateway`).

Left out: graceful shutdown (which would make memberlist detection near-instant, M12), partial
failures (a dead kubelet with a live network), NIC or link failures, and IPv6.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.addresses import node_ip, node_name, tunnel_ip
from sim.path import Action, Flow, Packet, Step, Verdict

if TYPE_CHECKING:
    from sim.net.gateway import IngressGateway


class Node:
    """One node: name, 0-based index, ``node_ip``, ``tunnel_ip`` and power state ``up``.

    ``power_gen`` counts power changes; timers started at one change (the node lifecycle
    controller's, a speaker's start) check it to know they are stale.
    """

    __slots__ = ("index", "name", "node_ip", "power_gen", "tunnel_ip", "up")

    def __init__(self, index: int) -> None:
        self.index = index
        self.name = node_name(index)
        self.node_ip = node_ip(index)
        self.tunnel_ip = tunnel_ip(index)
        self.up = True
        self.power_gen = 0

    def masquerade_ip(self, endpoint_node: int) -> str:
        """The source address MASQUERADE picks on this node for a pod on ``endpoint_node``.

        The egress device decides (N1): the route to a pod on this node goes through a ``cali*``
        veth without an IPv4 address, so the kernel falls back to the node's primary address;
        the route to a pod on another node goes through the Calico tunnel device (N3).
        """
        return self.node_ip if endpoint_node == self.index else self.tunnel_ip

    def handle(self, packet: Packet, flow: Flow) -> Packet | Verdict:
        """The node receives ``packet`` (it is the entry node): dropped if it has no power."""
        flow.entry_node = self.name
        if self.up:
            return packet
        detail = f"{self.name} is powered off: no answer, the client times out"
        if flow.hops is not None:
            flow.hop(self.name, packet, Step(Action.NO_ANSWER, detail))
        return Verdict("timeout", "dead_node", True, Action.NO_ANSWER, detail)

    def __repr__(self) -> str:
        state = "up" if self.up else "down"
        return f"Node({self.name}, {self.node_ip}, tunnel {self.tunnel_ip}, {state})"


class GatewayPod:
    """One incarnation of an ingress gateway pod (a replacement pod is a new incarnation).

    ``state`` is ``"starting"``, ``"running"``, ``"stopped"`` (its node lost power; it restarts
    when the node comes back) or ``"deleted"``. ``ready`` is the Ready condition the control
    plane reports (what the EndpointSlice will say after propagation), which lags the truth: a
    dead node's pods stay Ready for the node-monitor grace period (K15).
    """

    __slots__ = (
        "gateway",
        "host",
        "index",
        "ip",
        "name",
        "node",
        "ready",
        "running",
        "start_gen",
        "state",
    )

    def __init__(self, index: int, name: str, host: Node, ip: str, gateway: IngressGateway) -> None:
        self.index = index
        self.name = name
        self.host = host
        self.node = host.index
        self.ip = ip
        self.gateway = gateway
        self.state = "starting"
        self.running = False
        self.ready = False
        self.start_gen = 0

    @property
    def answers(self) -> bool:
        """Whether a packet to this pod gets an answer: it runs and its node has power."""
        return self.running and self.host.up

    def handle(self, packet: Packet, flow: Flow) -> Packet | Verdict:
        """kube-proxy DNATed ``packet`` to this pod: its Envoy takes it, if the pod answers."""
        if not (self.running and self.host.up):
            reason = "dead_node" if not self.host.up else "pod_gone"
            detail = f"no answer ({reason}): the client times out"
            if flow.hops is not None:
                flow.hop(f"{self.name} on {self.host.name}", packet, Step(Action.NO_ANSWER, detail))
            return Verdict("timeout", reason, True, Action.NO_ANSWER, detail)
        flow.gateway_direct_ip = packet.src_ip
        return self.gateway.forward(packet, flow)

    def __repr__(self) -> str:
        return f"GatewayPod({self.name}, node index {self.node}, {self.ip}, {self.state})"
