"""The L2 segment the clients, HAProxy and the nodes share: which node receives a packet.

Real component modelled: one Ethernet broadcast domain (MetalLB L2 requires the clients on the
nodes' segment, M13). A host sends a packet for an address on the segment to the MAC address its
neighbour (ARP) cache holds for it:

* the VIP: the sender's cached entry (:class:`sim.net.clients.ArpCache`), which gratuitous ARPs
  from a new announcer update (M9, M10); a sender without an entry asks, and the current
  announcer answers if its node is up, else nobody does (the sender times out);
* a node's own address (a NodePort, K7; HAProxy's ``nodeports`` backend, section E): that node,
  which always answers for its own address.

The packet then goes to that node whether or not it still announces the VIP: any live node's
kube-proxy handles the VIP (K14), a dead node drops it (:meth:`sim.net.node.Node.handle`).

Left out: neighbour-entry ageing and re-probing, routers between the clients and the nodes
(M10, M11), IPv6 neighbour discovery.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sim.net.clients import ArpCache
from sim.net.node import Node
from sim.path import Action, Flow, Packet, Step, Verdict

__all__ = ["Segment"]


class Segment:
    """Resolves the node a packet goes to, from the sender's ARP cache or the node's address.

    Args:
        vip: the announced address.
        arp: every host's entry for the VIP.
        hosts: host address -> its slot in ``arp`` (the clients, then HAProxy).
        announcer: who answers ARP for the VIP now (``None``: nobody).
        nodes: every node, index order; the resolved node receives the packet.
    """

    def __init__(
        self,
        *,
        vip: str,
        arp: ArpCache,
        hosts: dict[str, int],
        announcer: Callable[[], int | None],
        nodes: Sequence[Node],
    ) -> None:
        self.vip = vip
        self.arp = arp
        self._hosts = hosts
        self._announcer = announcer
        self._nodes = nodes
        self._node_ips = {n.node_ip: n.index for n in nodes}

    def handle(self, packet: Packet, flow: Flow) -> Packet | Verdict:
        """Deliver ``packet`` to the node its sender resolves (M9), which handles it.

        Sets ``flow.node``; the node's own answer (:meth:`sim.net.node.Node.handle`) is the
        result, so a powered-off node drops what its stale ARP entries still send it.
        """
        if packet.dst_ip != self.vip:
            flow.node = node = self._node_ips[packet.dst_ip]
            return self._nodes[node].handle(packet, flow)
        entries = self.arp.entries
        sender = self._hosts[packet.src_ip]
        entry = entries[sender]
        if entry < 0:
            owner = self._announcer()
            if owner is None or not self._nodes[owner].up:
                detail = (
                    f"no answer to ARP for {self.vip}: no node announces it, or its node is "
                    "down (M3, M7, M9)"
                )
                if flow.hops is not None:
                    flow.hop("L2 segment (ARP)", packet, Step(Action.NO_ANSWER, detail))
                return Verdict("timeout", "no_arp_answer", True, Action.NO_ANSWER, detail)
            entries[sender] = entry = owner
        flow.node = entry
        return self._nodes[entry].handle(packet, flow)
