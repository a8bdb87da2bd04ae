"""The clients on the L2 segment: when they connect, from which port, and their ARP caches.

Models the external HTTP clients of the seed story (hosts on the same L2 segment as the nodes
and the VIP, M13) and the neighbour caches of every host on that segment (clients and HAProxy):

* arrivals form a Poisson process of rate ``rate_per_s`` (all clients together); each connection
  comes from a client chosen uniformly; every client (and HAProxy) takes ephemeral source ports
  in turn from Linux's default ``ip_local_port_range`` 32768-60999, starting at a random one;
* every client sends one HTTP/1.1 ``GET`` per connection, with an ``X-Forwarded-For`` line of
  its own when ``client_xff`` is set (a spoofing or proxied client, I5);
* a client that gets no answer gives up after ``client_timeout_s`` (SYN retransmits, K6);
* ARP: each host keeps one entry for the VIP. A gratuitous ARP from the new announcer updates
  existing entries (M9, M10; like Linux with ``arp_accept=0`` it does not create entries); a host
  without an entry asks and gets the answer of the current announcer if that node is up. Packets
  then go to the cached node's MAC, whether or not it still announces: any live node's kube-proxy
  handles the VIP, a dead node drops them.

Left out: neighbour-entry ageing and unicast re-probing (a stale entry to a dead node is only
fixed by the next gratuitous ARP), clients that ignore gratuitous ARP or sit behind a router
(M10, M11), connection reuse (keep-alive) and retries.
"""

from __future__ import annotations

import numpy as np

from sim.addresses import EPHEMERAL_HIGH, EPHEMERAL_LOW, HOST, client_ip
from sim.net.http import build_request
from sim.path import Action, Flow, Packet, Step, new_packet


class ArpCache:
    """The VIP's neighbour entry on every host of the segment: a node index, or -1 (none).

    ``entries[i]`` belongs to client ``i``; the last entry is HAProxy's.
    """

    __slots__ = ("entries",)

    def __init__(self, hosts: int) -> None:
        self.entries: list[int] = [-1] * hosts

    def resolve_all(self, node: int) -> None:
        """Every host has resolved the VIP to ``node`` (the settled state before a run)."""
        self.entries = [node] * len(self.entries)

    def gratuitous(self, node: int) -> None:
        """A gratuitous ARP from ``node``: update every existing entry (M9, M10)."""
        entries = self.entries
        for i, current in enumerate(entries):
            if current >= 0:
                entries[i] = node


class Clients:
    """The client population: addresses, request bytes, source ports and arrival draws.

    Args:
        count: number of client hosts.
        client_xff: an ``X-Forwarded-For`` value every client sends itself, or ``None``.
        rng: the stream that picks each client's first ephemeral port.
    """

    def __init__(self, count: int, *, client_xff: str | None, rng: np.random.Generator) -> None:
        self.count = count
        self.ips = [client_ip(i) for i in range(count)]
        # Every client sends the same request: build the bytes once.
        self.request = build_request(host=HOST, path="/", xff=client_xff)
        span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1
        self._ports = [EPHEMERAL_LOW + int(p) for p in rng.integers(0, span, count + 1)]

    def connect(self, client: int, dst_ip: str, dst_port: int, flow: Flow) -> Packet:
        """Client ``client`` opens a connection to ``dst_ip:dst_port``: its first packet.

        Takes the client's next ephemeral port; the packet carries the whole request (one
        ``GET``, with the client's own ``X-Forwarded-For`` if ``client_xff`` is set).
        """
        packet = new_packet(
            (self.ips[client], self.next_port(client), dst_ip, dst_port, self.request)
        )
        flow.client_ip, flow.client_port = packet.src_ip, packet.src_port
        if flow.hops is not None:
            flow.hop("client", packet, Step(Action.ORIGINATED, ""))
        return packet

    def next_port(self, host: int) -> int:
        """The next ephemeral source port of ``host`` (``count`` = HAProxy's own connections)."""
        port = self._ports[host]
        self._ports[host] = port + 1 if port < EPHEMERAL_HIGH else EPHEMERAL_LOW
        return port

    @staticmethod
    def arrival_times(rng: np.random.Generator, rate_per_s: float, duration_s: float) -> np.ndarray:
        """Start times of a Poisson process on ``[0, duration_s)``, sorted.

        Drawn as a Poisson count and sorted uniform times, which has the same law as summing
        exponential gaps and needs two vectorised draws.
        """
        n = int(rng.poisson(rate_per_s * duration_s))
        return np.sort(rng.uniform(0.0, duration_s, n))
