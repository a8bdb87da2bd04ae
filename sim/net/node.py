"""A Kubernetes node (its two source addresses, whether it has power) and a gateway pod on it.

Models a worker node of the cluster as far as source addresses are concerned: the primary NIC
address (``node_ip``, on the clients' L2 segment) and the address Calico gives the node's tunnel
device (``tunnel_ip``, N2). Which of the two a masqueraded packet leaves with depends on the egress
device of the route to the chosen pod (N1, N3), and that depends on Calico's encapsulation (C1):
:meth:`Node.egress`, used by :mod:`sim.net.kube_proxy`.

* ``VXLAN`` / ``IPIP`` (Always modes): a pod on another node is reached through
  ``vxlan.calico`` / ``tunl0``, whose address is the tunnel IP: the story's 172.x;
* ``VXLANCrossSubnet`` / ``IPIPCrossSubnet``: the nodes share the clients' L2 subnet here, so
  pod traffic between them is routed natively through the NIC: the node IP;
* ``None`` (no encapsulation, BGP-routed pods): the NIC, the node IP; there is no tunnel device;
* a pod on this node is reached through its ``cali*`` veth, which has no IPv4 address, so the
  kernel falls back to the node's primary address (N3).

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


_TUNNEL_DEVICE = {"VXLAN": "vxlan.calico", "IPIP": "tunl0"}
NIC = "eth0"
"""The name the model gives every node's NIC (on the clients' L2 segment)."""


class Node:
    """One node: name, 0-based index, ``node_ip``, ``tunnel_ip`` and power state ``up``.

    ``encapsulation`` is Calico's IPPool mode (:attr:`sim.Scenario.encapsulation`, C1);
    ``tunnel_ip`` is ``""`` when there is no tunnel device (``"None"``). ``power_gen`` counts
    power changes; timers started at one change (the node lifecycle controller's, a speaker's
    start) check it to know they are stale.
    """

    __slots__ = (
        "_remote",
        "encapsulation",
        "index",
        "name",
        "node_ip",
        "power_gen",
        "tunnel_ip",
        "up",
    )

    def __init__(self, index: int, encapsulation: str = "VXLAN") -> None:
        self.index = index
        self.name = node_name(index)
        self.node_ip = node_ip(index)
        self.encapsulation = encapsulation
        self.tunnel_ip = "" if encapsulation == "None" else tunnel_ip(index)
        device = _TUNNEL_DEVICE.get(encapsulation)
        # C1: Always modes route pod traffic to other nodes through the tunnel device; CrossSubnet
        # (every node is on the clients' subnet here) and None through the NIC.
        self._remote = (self.tunnel_ip, device) if device else (self.node_ip, NIC)
        self.up = True
        self.power_gen = 0

    def egress(self, endpoint_node: int) -> tuple[str, str]:
        """``(address, device)`` MASQUERADE uses on this node for a pod on ``endpoint_node``.

        The egress device of the route to the pod decides (N1): for a pod on this node its
        ``cali*`` veth, which has no IPv4 address, so the kernel falls back to the node's primary
        address; for a pod on another node the tunnel device in an Always mode, else the NIC
        (N3, C1).
        """
        if endpoint_node == self.index:
            return self.node_ip, "cali* veth"
        return self._remote

    def masquerade_ip(self, endpoint_node: int) -> str:
        """The source address MASQUERADE picks on this node for a pod on ``endpoint_node``."""
        return self.egress(endpoint_node)[0]

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

    ``state`` is ``"starting"``, ``"running"``, ``"terminating"`` (gracefully deleted: not
    Ready, still serving while it drains, K18), ``"stopped"`` (its node lost power; it restarts
    when the node comes back) or ``"deleted"``. ``running`` is whether it serves. ``ready`` and
    ``terminating`` are the conditions the control plane reports (what the EndpointSlice will say
    after propagation), which lag the truth: a dead node's pods stay Ready for the node-monitor
    grace period (K15).
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
        "terminating",
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
        self.terminating = False
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
        # The SYN got its answer: the connection is established with this pod (T1).
        flow.t_connected = flow.t_syn
        flow.gateway_direct_ip, flow.gateway_direct_port = packet.src_ip, packet.src_port
        return self.gateway.forward(packet, flow)

    def __repr__(self) -> str:
        return f"GatewayPod({self.name}, node index {self.node}, {self.ip}, {self.state})"
