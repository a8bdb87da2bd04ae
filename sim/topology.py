"""The one place where the elements are wired together, and :func:`simulate`.

Data plane (here the first half of a path; delivery to the gateway and the app, and in-cluster
callers, are in :mod:`sim.data_plane`, a base class of :class:`Topology`): a connection's path
is decided in full when it starts, from the state tables the
control plane keeps (ARP caches, node power, the EndpointSlice view, HAProxy's server state),
because nothing on the path changes during the few milliseconds it takes. So there is no SimPy
process per connection: one arrival process walks the pre-drawn Poisson start times and handles
every connection that starts before the next control-plane event in a plain loop
(:meth:`Topology._arrivals`). The L7 elements (HAProxy, the gateway's Envoy, the sidecar) are
called with real bytes, so every PROXY header is encoded and decoded by :mod:`sim.proxy_protocol`.
A connection still in flight when its ingress node (the one holding its conntrack entry, K14),
its gateway pod's node, or its gateway pod dies is rewritten as failed at that moment.

Control plane (:mod:`sim.control_plane`, a base class of :class:`Topology`): SimPy processes
for the failures (:class:`~sim.NodeDown`, :class:`~sim.DeletePod`,
:class:`~sim.MovePod`), memberlist detection (:mod:`sim.net.memberlist`), MetalLB's election and
gratuitous ARPs (:mod:`sim.net.metallb`), EndpointSlice propagation to kube-proxy and the speakers
(``endpoint_update_delay_s``), the node lifecycle controller (NotReady after
``node_monitor_grace_period_s``, eviction ``pod_eviction_timeout_s`` later, K15) and HAProxy's
health checks (H4, H5).

Randomness: ``numpy.random.SeedSequence(seed).spawn`` gives each element its own stream
(:data:`STREAMS`), and all per-connection draws are made in vectorised batches up front.
"""

from __future__ import annotations

import gc
import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from sim.addresses import (
    APP_POD_IP,
    HAPROXY_IP,
    HAPROXY_PORT,
    NODE_PORT,
    VIP,
    VIP_PORT,
)
from sim.control_plane import ControlPlane
from sim.data_plane import DataPlane
from sim.net.clients import ArpCache, Clients
from sim.net.haproxy import HAProxy
from sim.net.kube_proxy import DROP, FORWARD, KubeProxy
from sim.net.memberlist import Memberlist
from sim.net.metallb import L2Speaker
from sim.net.node import GatewayPod, Node
from sim.net.sidecar import Sidecar, SidecarResult
from sim.results import Recorder, Result
from sim.scenario import Scenario
from sim.trace import (
    HopList,
    haproxy_rewrite,
    hop,
    kube_proxy_rewrite,
)

__all__ = ["STREAMS", "Topology", "simulate"]

STREAMS = (
    "arrivals",
    "clients",
    "endpoints",
    "service",
    "in_cluster",
    "ports",
    "memberlist",
    "haproxy_checks",
    "nodeport",
)
"""The named random streams, spawned in this order from ``SeedSequence(seed)``."""


def simulate(scenario: Scenario, *, progress: bool = False) -> Result:
    """Run ``scenario`` and return its :class:`~sim.Result`.

    The same scenario (seed included) always gives identical DataFrames. ``progress=True``
    shows a progress bar over simulated time on stderr (tqdm); it does not change the result.
    """
    if not isinstance(scenario, Scenario):
        raise ValueError(f"simulate: expected a sim.Scenario, got {type(scenario).__name__}")
    return Topology(scenario).run(progress=progress)


class Topology(DataPlane, ControlPlane):
    """Every element of one scenario, wired together; :meth:`run` simulates it once.

    Args:
        scenario: what to simulate.
        trace_conn: ``None`` to record no hops; ``-1`` to record the hops of the first
            successful connection; a connection id to record that connection's hops
            (:attr:`hops` afterwards, used by :func:`sim.trace`).
    """

    def __init__(self, scenario: Scenario, *, trace_conn: int | None = None) -> None:
        sc = scenario
        self.scenario = sc
        self.env = simpy.Environment()
        self.rec = Recorder()
        seqs = np.random.SeedSequence(sc.seed).spawn(len(STREAMS))
        self.rng = {name: np.random.default_rng(s) for name, s in zip(STREAMS, seqs, strict=True)}
        self.trace_conn = trace_conn
        self.hops: HopList | None = None
        self.hops_conn_id = -1  # the connection whose hops are in ``hops``

        self.nodes = [Node(i) for i in range(sc.nodes)]
        self.names = [n.name for n in self.nodes]
        self._live = list(range(sc.nodes))
        self._gen = [0] * sc.nodes  # bumped on every power change, cancels stale timers
        self.kube_proxy = KubeProxy(
            nodes=sc.nodes, local_policy=sc.external_traffic_policy == "Local"
        )
        self.clients = Clients(sc.clients, client_xff=sc.client_xff, rng=self.rng["ports"])
        self.arp = ArpCache(sc.clients + 1)  # the last entry is HAProxy's
        # backend "nodeports": server i is node i's NodePort (FACTS section E); else the VIP.
        self._nodeports = sc.haproxy is not None and sc.haproxy.backend == "nodeports"
        self.haproxy = (
            HAProxy(
                sc.haproxy,
                ip=HAPROXY_IP,
                frontend_ip=HAPROXY_IP,
                frontend_port=HAPROXY_PORT,
                servers=sc.nodes if self._nodeports else 1,
            )
            if sc.haproxy is not None
            else None
        )
        self.check_payloads = Counter()  # what HAProxy's checks sent first (H4), by bytes
        self.sidecar = Sidecar(pod="app-1", pod_ip=APP_POD_IP)
        self._sidecar_memo: dict[tuple[bytes, str], SidecarResult] = {}

        # Gateway pods: every incarnation ever, and the current one per name.
        self.pods: list[GatewayPod] = []
        self.current: dict[str, GatewayPod] = {}
        self.pod_rows: list[tuple[str, str, str, float]] = []
        self._serial = [0] * sc.nodes
        self._seen: dict[int, int] = {}  # Ready incarnation -> node, as the watchers see it
        for name, node_name in zip(sc.pod_names, sc.gateway_nodes, strict=True):
            pod = self._new_pod(name, self.names.index(node_name))
            pod.state, pod.running, pod.ready = "running", True, True
            self._seen[pod.index] = pod.node
        self.kube_proxy.set_endpoints(self._seen.items())

        self.memberlist = Memberlist(
            self.env,
            nodes=sc.nodes,
            timing=(sc.probe_interval_s, sc.suspicion_mult, sc.suspicion_max_timeout_mult),
            rng=self.rng["memberlist"],
            recorder=self.rec,
            node_names=self.names,
            on_change=self._resync,
        )
        self.speaker = L2Speaker(
            self.env,
            mode=sc.announcer,
            local_policy=sc.external_traffic_policy == "Local",
            vip=VIP,
            node_names=self.names,
            memberlist=self.memberlist,
            local_endpoints=lambda n: len(self.kube_proxy.local_ready(n)),
            arp=self.arp,
            garp=(sc.garp_interval_s, sc.garp_duration_s),
            recorder=self.rec,
            node_up=lambda n: self.nodes[n].up,
        )
        self.speaker.start()
        self._draw_connections()
        for event in sc.failures:
            self.env.process(self._failure(event))
        if self.haproxy is not None and self.haproxy.config.check:
            if self._nodeports:
                for server in range(sc.nodes):
                    self.env.process(self._nodeport_checks(server))
            else:
                self.env.process(self._health_checks())

    def _draw_connections(self) -> None:
        # All per-connection randomness, in vectorised batches, one stream per purpose.
        sc = self.scenario
        times = Clients.arrival_times(self.rng["arrivals"], sc.rate_per_s, sc.duration_s)
        n = len(times)
        self._times: list[float] = times.tolist()
        self._client_of: list[int] = self.rng["clients"].integers(0, sc.clients, n).tolist()
        self._u_endpoint: list[float] = self.rng["endpoints"].random(n).tolist()
        service = self.rng["service"].exponential(sc.request_time_s, n)
        self._max_service = float(service.max()) if n else 0.0
        self._service: list[float] = service.tolist()
        draws = self.rng["in_cluster"].random((2, n))
        self._in_cluster: list[bool] = (draws[0] < sc.in_cluster_share).tolist()
        self._u_caller: list[float] = draws[1].tolist()
        self._caller_ports = [40000] * sc.nodes
        # client_target "nodeport": each connection goes to a node chosen uniformly at random
        # (a DNS name with every node's address, K7). Its own stream, appended last to STREAMS,
        # so the other streams draw the same numbers as before.
        self._nodeport_node: list[int] = (
            self.rng["nodeport"].integers(0, sc.nodes, n).tolist()
            if sc.client_target == "nodeport"
            else []
        )

    # ------------------------------------------------------------------ run

    def run(self, *, progress: bool = False) -> Result:
        """Simulate ``[0, duration_s]`` and return the :class:`~sim.Result`.

        ``progress=True`` adds a process that advances a tqdm bar every 1 % of the simulated
        time. Its wake-ups only split the arrival loop's batches (every arrival still sees the
        same state), so the result is the same with or without it.
        """
        # Pause the cyclic garbage collector for the run: the records are plain tuples without
        # reference cycles, but each full collection walks every one of them, so with the GC on
        # a run of 1M connections costs 10-25 % more and grows faster than linearly (measured:
        # benchmarks/bench_sim.py). Restored afterwards; a collector another thread paused stays
        # paused.
        gc_was_on = gc.isenabled()
        gc.disable()
        try:
            return self._run(progress)
        finally:
            if gc_was_on:
                gc.enable()

    def _run(self, progress: bool) -> Result:
        sc = self.scenario
        self.env.process(self._arrivals())
        if progress:
            from tqdm.auto import tqdm

            with tqdm(total=100, unit="%", desc=f"{sc.name} (simulated time)", leave=False) as bar:
                self.env.process(self._tick(bar))
                self.env.run(until=sc.duration_s)
        else:
            self.env.run(until=sc.duration_s)
        nodes = [(n.name, n.node_ip, n.tunnel_ip) for n in self.nodes]
        return Result.from_records(sc, self.rec, nodes, self.pod_rows)

    def _tick(self, bar: Any) -> Generator[Any, Any, None]:
        step = self.scenario.duration_s / 100
        for _ in range(99):  # the 100th step is the end of the run
            yield self.env.timeout(step)
            bar.update(1)

    def _arrivals(self) -> Generator[Any, Any, None]:
        n = len(self._times)
        env = self.env
        connect = self._connect
        append = self.rec.connections.append
        times_list = self._times
        i = 0
        while i < n:
            # Every arrival before the next control-plane event sees the same state.
            horizon = env.peek()
            j = bisect_left(times_list, horizon, i) if horizon < math.inf else n
            if self.trace_conn is None:
                for k in range(i, j):
                    append(connect(k, None))
            else:
                for k in range(i, j):
                    append(self._connect_traced(k))
            i = j
            if i < n:
                yield env.timeout(max(0.0, min(horizon, times_list[i]) - env.now))

    def _connect_traced(self, k: int) -> tuple[Any, ...]:
        target = self.trace_conn
        if target is None or self.hops is not None or (target >= 0 and k != target):
            return self._connect(k, None)
        hops: HopList = []
        row = self._connect(k, hops)
        if target >= 0 or row[5] == "ok":
            self.hops = hops
            self.hops_conn_id = k
        return row

    # ------------------------------------------------------------- data plane

    def _connect(self, k: int, hops: HopList | None) -> tuple[Any, ...]:
        """Decide connection ``k`` from start to end and return its record tuple."""
        t = self._times[k]
        if self._in_cluster[k]:
            return self._connect_in_cluster(k, t, hops)
        c = self._client_of[k]
        clients = self.clients
        cip = clients.ips[c]
        cport = clients.next_port(c)
        hap = self.haproxy
        timeout_end = t + self.scenario.client_timeout_s
        http_mode = False
        dst_ip, dst_port = VIP, VIP_PORT
        server = -1  # backend "nodeports": the server (= node index) HAProxy picked
        if self._nodeport_node:
            target = self.nodes[self._nodeport_node[k]]
            dst_ip, dst_port = target.node_ip, NODE_PORT
        if hap is None:
            src_ip, src_port, slot, path = cip, cport, c, "direct"
            if hops is not None:
                hops.append(hop("client", cip, cport, dst_ip, dst_port, "", clients.request))
        else:
            path = "haproxy"
            http_mode = hap.config.mode == "http"
            if hops is not None:
                hops.append(
                    hop("client", cip, cport, HAPROXY_IP, HAPROXY_PORT, "", clients.request)
                )
            if not hap.server_up:
                if hops is not None:
                    what = "every server DOWN (H5)" if self._nodeports else "server DOWN (H5)"
                    hops.append(hop("haproxy", HAPROXY_IP, HAPROXY_PORT, "", 0, what))
                return self._fail(
                    k,
                    cip,
                    cport,
                    t,
                    t,
                    "http_503" if http_mode else "reset",
                    "haproxy_no_server",
                    path,
                    "",
                )
            src_ip, src_port, slot = HAPROXY_IP, clients.next_port(clients.count), clients.count
            if self._nodeports:
                # roundrobin over the servers HAProxy's checks hold UP (section E, H5).
                server = hap.pick()
                target = self.nodes[server]
                dst_ip, dst_port = target.node_ip, NODE_PORT

        # ARP (M9, M10): the sender's entry for the VIP decides the ingress node; a NodePort
        # is the node's own address, so MetalLB plays no part (K7).
        if self._nodeport_node:
            entry = self._nodeport_node[k]
        else:
            entry = server if server >= 0 else self.arp.entries[slot]
        if entry < 0:
            owner = self.speaker.announcer
            if owner is None or not self.nodes[owner].up:
                return self._fail(
                    k, cip, cport, t, timeout_end, "timeout", "no_arp_answer", path, ""
                )
            self.arp.entries[slot] = entry = owner
        node = self.nodes[entry]
        if not node.up:
            return self._fail(
                k, cip, cport, t, timeout_end, "timeout", "dead_node", path, node.name
            )

        data = clients.request
        if hap is not None:
            data = hap.upstream_bytes(
                client_ip=cip,
                client_port=cport,
                request=data,
                src_port=src_port,
                server_ip=dst_ip,
                server_port=dst_port,
            )
            if hops is not None:
                rewrite = haproxy_rewrite(hap)
                if server >= 0:
                    rewrite += (
                        f"; server {node.name} ({dst_ip}:{dst_port}) by roundrobin over the UP "
                        "servers, MetalLB bypassed (section E)"
                    )
                hops.append(
                    hop(
                        f"haproxy ({hap.config.mode})",
                        src_ip,
                        src_port,
                        dst_ip,
                        dst_port,
                        rewrite,
                        data,
                    )
                )

        verdict, pod_index = self.kube_proxy.route_external(entry, self._u_endpoint[k])
        if verdict != FORWARD:
            if verdict == DROP:  # K6: DROP -> the client's SYNs go unanswered
                if hops is not None:
                    hops.append(
                        hop(
                            f"{node.name} kube-proxy",
                            src_ip,
                            src_port,
                            dst_ip,
                            dst_port,
                            "DROP: Local and no local endpoint (K6, K7)",
                        )
                    )
                return self._fail(
                    k,
                    cip,
                    cport,
                    t,
                    timeout_end,
                    "timeout",
                    "drop_no_local_endpoint",
                    path,
                    node.name,
                )
            outcome = "refused" if hap is None else ("http_503" if http_mode else "reset")
            if hops is not None:
                hops.append(
                    hop(
                        f"{node.name} kube-proxy",
                        src_ip,
                        src_port,
                        dst_ip,
                        dst_port,
                        "REJECT: the Service has no endpoints (K6)",
                    )
                )
            return self._fail(k, cip, cport, t, t, outcome, "reject_no_endpoints", path, node.name)
        pod = self.pods[pod_index]
        if self.kube_proxy.local_policy:
            snat = ""
            peer_ip = src_ip
        else:
            peer_ip = snat = node.masquerade_ip(pod.node)  # K1, N1-N3
        if hops is not None:
            hops.append(
                hop(
                    f"{node.name} kube-proxy",
                    peer_ip,
                    src_port,
                    pod.ip,
                    8080,
                    kube_proxy_rewrite(
                        node,
                        pod,
                        self.names,
                        snat,
                        "NodePort" if self._nodeport_node or server >= 0 else "VIP",
                    ),
                    data,
                )
            )
        return self._deliver(
            k, t, cip, cport, path, node.name, pod, peer_ip, src_port, snat, data, hops
        )
