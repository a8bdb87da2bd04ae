"""The one place where the elements are wired together: :class:`Topology` and :func:`simulate`.

Data plane: a connection is a :class:`~sim.path.Flow` whose first packet walks the elements
(:meth:`Topology.walk`). Each element decides its own hop and returns the packet it sends on or a
:class:`~sim.path.Verdict` (:mod:`sim.path`):

* external clients: client → [HAProxy] → L2 segment (ARP, or a node's own address) → the entry
  node → its kube-proxy (DNAT, SNAT, DROP, REJECT) → the gateway pod → its Envoy → the app's
  sidecar;
* in-cluster callers (K8): caller pod → kube-proxy on its own node → the gateway pod → ...

A path is decided in full when the connection starts, from the state tables the control plane
keeps (ARP caches, node power, the EndpointSlice view, HAProxy's server state), because nothing on
the path changes during the few milliseconds it takes. So there is no SimPy process per
connection: one arrival process walks the pre-drawn Poisson start times and handles every
connection that starts before the next control-plane event in a plain loop
(:meth:`Topology._arrivals`). The L7 elements (HAProxy, the gateway's Envoy, the sidecar) get real
bytes, so every PROXY header is encoded and decoded by :mod:`sim.proxy_protocol`. A connection
still in flight when its ingress node (the one holding its conntrack entry, K14), its gateway
pod's node, or its gateway pod dies is rewritten as failed at that moment.

Control plane: objects that own their SimPy processes and state: the speakers' failure detector
(:class:`~sim.net.memberlist.Memberlist`) and election with gratuitous ARPs
(:class:`~sim.net.metallb.L2Speaker`), the EndpointSlice view
(:class:`~sim.net.endpoints.EndpointSlices`), the gateway Deployment
(:class:`~sim.net.deployment.GatewayDeployment`), the node lifecycle controller
(:class:`~sim.net.node_lifecycle.NodeLifecycleController`), HAProxy's health checker
(:class:`~sim.net.haproxy_checks.HealthChecker`) and the failure events
(:class:`~sim.failures.FailureInjector`).

Randomness: ``numpy.random.SeedSequence(seed).spawn`` gives each element its own stream
(:data:`STREAMS`), and all per-connection draws are made in vectorised batches up front.
"""

from __future__ import annotations

import gc
import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Generator
from functools import partial
from heapq import heappop, heappush
from typing import Any

import numpy as np
import simpy

from sim.addresses import (
    APP_POD_IP,
    HAPROXY_IP,
    HAPROXY_PORT,
    HEALTH_CHECK_NODE_PORT,
    NODE_PORT,
    VIP,
    VIP_PORT,
    caller_pod_ip,
)
from sim.failures import FailureInjector
from sim.net.clients import ArpCache, Clients
from sim.net.deployment import GatewayDeployment
from sim.net.endpoints import EndpointSlices
from sim.net.haproxy import HTTPCHK_REQUEST, HAProxy
from sim.net.haproxy_checks import CheckResult, HealthChecker
from sim.net.kube_proxy import KubeProxy
from sim.net.memberlist import Memberlist
from sim.net.metallb import L2Speaker
from sim.net.node import GatewayPod, Node
from sim.net.node_lifecycle import NodeLifecycleController
from sim.net.segment import Segment
from sim.net.sidecar import Sidecar
from sim.net.tcp import syn_retransmissions
from sim.path import Action, Flow, Hop, Packet, Step, Verdict
from sim.results import Connection, Recorder, Result
from sim.scenario import Scenario

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
    "snat_ports",
    "syn_retries",
)
"""The named random streams, spawned in this order from ``SeedSequence(seed)``."""

Stage = Callable[[Packet, Flow], "Packet | Verdict"]
"""One hop of a walk: an element's ``handle`` (or a dispatcher to the right element)."""


def simulate(scenario: Scenario, *, progress: bool = False) -> Result:
    """Run ``scenario`` and return its :class:`~sim.Result`.

    The same scenario (seed included) always gives identical DataFrames. ``progress=True``
    shows a progress bar over simulated time on stderr (tqdm); it does not change the result.
    """
    if not isinstance(scenario, Scenario):
        raise ValueError(f"simulate: expected a sim.Scenario, got {type(scenario).__name__}")
    return Topology(scenario).run(progress=progress)


class Topology:
    """Every element of one scenario, wired together; :meth:`run` simulates it once.

    Args:
        scenario: what to simulate.
        trace_conn: ``None`` to record no hops, or a connection id to record that connection's
            hops (:attr:`hops` afterwards, used by :func:`sim.trace`).
    """

    def __init__(self, scenario: Scenario, *, trace_conn: int | None = None) -> None:
        sc = self.scenario = scenario
        self.env = simpy.Environment()
        self.rec = Recorder(sc.client_timeout_s)
        seqs = np.random.SeedSequence(sc.seed).spawn(len(STREAMS))
        self.rng = {name: np.random.default_rng(s) for name, s in zip(STREAMS, seqs, strict=True)}
        self.trace_conn = trace_conn
        self.hops: list[Hop] | None = None
        self.hops_conn_id = -1  # the connection whose hops are in ``hops``
        if trace_conn is not None:
            self.rec.on_break = self._broken
        # SYNs waiting to be retransmitted (T1): (when, conn_id, flow), a heap.
        self._pending: list[tuple[float, int, Flow]] = []
        self.nodes = [Node(i, sc.encapsulation) for i in range(sc.nodes)]
        self.names = [n.name for n in self.nodes]
        self.live = list(range(sc.nodes))
        self.clients = Clients(sc.clients, client_xff=sc.client_xff, rng=self.rng["ports"])
        self.check_payloads: Counter[bytes] = Counter()  # what HAProxy's checks sent (H4)
        self.sidecar = Sidecar(pod="app-1", pod_ip=APP_POD_IP)
        self._wire_control_plane()
        self._wire_data_plane()
        self._draw_connections()
        self.failures.start(sc.failures)
        if self.checker is not None:
            self.checker.start()

    def _wire_control_plane(self) -> None:
        sc, env, rec = self.scenario, self.env, self.rec
        self.endpoints = EndpointSlices(
            env, delay_s=sc.endpoint_update_delay_s, recorder=rec, node_names=self.names
        )
        self.deployment = GatewayDeployment(
            env,
            sc,
            nodes=self.nodes,
            live=self.live,
            endpoints=self.endpoints,
            recorder=rec,
            on_deleted=self._pod_deleted,
        )
        self.pods = self.deployment.pods
        local = sc.external_traffic_policy == "Local"
        self.kube_proxy = KubeProxy(
            nodes=sc.nodes, local_policy=local, hosts=self.nodes, pods=self.pods
        )
        self.kube_proxy.set_endpoints(self.endpoints.ready())
        self._wire_l2()
        self.endpoints.watchers += [
            lambda slices: self.kube_proxy.set_endpoints(slices.ready(), slices.terminating()),
            lambda _slices: self.speaker.elect(),
        ]
        self.speaker.start()
        lifecycle = NodeLifecycleController(
            env,
            nodes=self.nodes,
            deployment=self.deployment,
            recorder=rec,
            timers=(sc.node_monitor_grace_period_s, sc.pod_eviction_timeout_s),
        )
        self.failures = FailureInjector(
            env,
            recorder=rec,
            deployment=self.deployment,
            memberlist=self.memberlist,
            lifecycle=lifecycle,
            pod_start_s=sc.pod_start_s,
        )

    def _wire_l2(self) -> None:
        """The segment's ARP caches, memberlist and the speakers' election (M3, M8, M9)."""
        sc = self.scenario
        self.memberlist = Memberlist(
            self.env,
            nodes=sc.nodes,
            timing=(sc.probe_interval_s, sc.suspicion_mult, sc.suspicion_max_timeout_mult),
            rng=self.rng["memberlist"],
            recorder=self.rec,
            node_names=self.names,
            on_change=lambda: self.speaker.elect(),
        )
        self.segment = Segment(
            vip=VIP,
            arp=ArpCache(sc.clients + 1),  # the last entry is HAProxy's
            hosts={
                **{ip: slot for slot, ip in enumerate(self.clients.ips)},
                HAPROXY_IP: sc.clients,
            },
            announcer=lambda: self.speaker.announcer,
            nodes=self.nodes,
        )
        self.segment.on_moved = self._arp_moved
        self.arp = self.segment.arp
        self.speaker = L2Speaker(
            self.env,
            sc,
            segment=self.segment,
            nodes=self.nodes,
            memberlist=self.memberlist,
            # M4: a serving-terminating endpoint keeps its node a candidate.
            local_endpoints=self.kube_proxy.local_usable,
            recorder=self.rec,
        )

    def _wire_data_plane(self) -> None:
        sc = self.scenario
        self.haproxy: HAProxy | None = None
        self.checker: HealthChecker | None = None
        stages: list[Stage] = [self.segment.handle, self.kube_proxy.handle]
        if sc.haproxy is not None:
            self.haproxy = self._haproxy()
        rest: list[Stage] = [self._at_pod, self.sidecar.forward]
        self._stages = (*stages, *rest)
        self._path = "direct" if self.haproxy is None else "haproxy"
        self._stages_in_cluster = (self.kube_proxy.handle_in_cluster, *rest)
        # When the SYNs of a connection that gets no answer leave (T1): the client's kernel, or
        # behind HAProxy its server-side connection with its own timeout and retries (H10).
        deadline = sc.client_timeout_s
        self._syn_offsets = syn_retransmissions(deadline)
        if self.haproxy is not None:
            self._syn_offsets_haproxy = self.haproxy.syn_offsets(deadline)

    def _haproxy(self) -> HAProxy:
        # backend "nodeports": server i is node i's NodePort (FACTS section E); else the VIP.
        sc = self.scenario
        assert sc.haproxy is not None
        nodeports = sc.haproxy.backend == "nodeports"
        if nodeports:
            servers = [(n.name, n.node_ip, NODE_PORT) for n in self.nodes]
        else:
            servers = [("VIP", VIP, VIP_PORT)]
        slot = self.clients.count
        hap = HAProxy(
            sc.haproxy,
            ip=HAPROXY_IP,
            frontend_ip=HAPROXY_IP,
            frontend_port=HAPROXY_PORT,
            servers=servers,
            ports=lambda: self.clients.next_port(slot),
        )
        if sc.haproxy.check:
            port = HEALTH_CHECK_NODE_PORT if self.kube_proxy.local_policy else NODE_PORT
            names = [
                (n.name, f"server {n.name} ({n.node_ip}:{NODE_PORT}, check port {port})")
                for n in self.nodes
            ]
            self.checker = HealthChecker(
                self.env,
                hap,
                probe=self._probe,
                rng=self.rng["haproxy_checks"],
                recorder=self.rec,
                servers=names if nodeports else [("", f"server {VIP}:{VIP_PORT}")],
            )
        return hap

    def _draw_connections(self) -> None:
        # All per-connection randomness, in vectorised batches, one stream per purpose.
        sc = self.scenario
        times = Clients.arrival_times(self.rng["arrivals"], sc.rate_per_s, sc.duration_s)
        n = len(times)
        self._times: list[float] = times.tolist()
        self._client_of: list[int] = self.rng["clients"].integers(0, sc.clients, n).tolist()
        self._u_endpoint: list[float] = self.rng["endpoints"].random(n).tolist()
        self.rec.reserve(n)
        service = self.rng["service"].exponential(sc.request_time_s, n)
        self.rec.max_service_s = float(service.max()) if n else 0.0
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
        # K17: MASQUERADE --random-fully gives each masqueraded connection a random source port
        # from the kernel's default NAT range 1024-65535 (N5). Own stream, appended to STREAMS.
        self._snat_ports: list[int] = (
            self.rng["snat_ports"].integers(1024, 65536, n).tolist()
            if sc.external_traffic_policy == "Cluster"
            else []
        )
        self._u_retry = self.rng["syn_retries"]

    # ------------------------------------------------------------------ run

    def run(self, *, progress: bool = False) -> Result:
        """Simulate ``[0, duration_s]`` and return the :class:`~sim.Result`.

        ``progress=True`` adds a process that advances a tqdm bar every 1 % of the simulated
        time. Its wake-ups only split the arrival loop's batches (every arrival still sees the
        same state), so the result is the same with or without it.
        """
        # Pause the cyclic garbage collector for the run: the records are named tuples without
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
        self._finish()
        nodes = [(n.name, n.node_ip, n.tunnel_ip) for n in self.nodes]
        return Result.from_records(sc, self.rec, nodes, self.deployment.rows)

    def _tick(self, bar: Any) -> Generator[Any, Any, None]:
        step = self.scenario.duration_s / 100
        for _ in range(99):  # the 100th step is the end of the run
            yield self.env.timeout(step)
            bar.update(1)

    def _arrivals(self) -> Generator[Any, Any, None]:
        n = len(self._times)
        env = self.env
        walk = self.walk
        rows = self.rec.connections
        times_list = self._times
        pending = self._pending
        traced = self.trace_conn
        i = 0
        while i < n or pending:
            # Every arrival and every retransmitted SYN before the next control-plane event sees
            # the same state, so they are handled in a plain loop; a retransmission reuses the
            # connection's ports and HAProxy's choice, so its order among arrivals does not matter.
            horizon = env.peek()
            j = bisect_left(times_list, horizon, i) if horizon < math.inf else n
            if traced is None:
                for k in range(i, j):
                    rows[k] = walk(k, None)
            else:
                for k in range(i, j):
                    rows[k] = walk(k, [] if k == traced else None)
            i = self.rec.filled = j
            while pending and pending[0][0] < horizon:
                self._retransmit(heappop(pending))
            nxt = min(times_list[i] if i < n else math.inf, pending[0][0] if pending else math.inf)
            if nxt == math.inf:
                return
            yield env.timeout(max(0.0, min(horizon, nxt) - env.now))

    def _finish(self) -> None:
        """After the run: SYNs still to be retransmitted meet the state the run ended in."""
        pending = self._pending
        while pending:
            self._retransmit(heappop(pending))

    # ------------------------------------------------------------- data plane

    def walk(self, k: int, hops: list[Hop] | None) -> Connection | None:
        """Walk connection ``k`` from its first packet; return its record.

        ``None`` when its SYN got no answer and will be retransmitted (T1): the record comes
        from :meth:`_retransmit`. ``hops`` is ``None``, or a list the elements append their hops
        to (``sim.trace``).
        """
        t = self._times[k]
        if self._in_cluster[k]:
            flow = Flow(k, t, self._u_endpoint[k], "in_cluster", hops)
            packet = self._call_from_pod(k, flow)
            flow.stages = self._stages_in_cluster
        else:
            flow = Flow(k, t, self._u_endpoint[k], self._path, hops)
            if self.haproxy is not None:
                dst_ip, dst_port = HAPROXY_IP, HAPROXY_PORT
            elif self._nodeport_node:
                dst_ip, dst_port = self.nodes[self._nodeport_node[k]].node_ip, NODE_PORT
            else:
                dst_ip, dst_port = VIP, VIP_PORT
            packet = self.clients.connect(self._client_of[k], dst_ip, dst_port, flow)
            flow.stages = self._stages
            if self.haproxy is not None:
                x = self.haproxy.forward(packet, flow)
                if isinstance(x, Verdict):
                    return self._failed(flow, x)
                packet = x
        if self._snat_ports:
            flow.snat_port = self._snat_ports[k]
        flow.syn_packet = packet
        return self._send(flow)

    def _send(self, flow: Flow) -> Connection | None:
        """The flow's SYN (and what follows) walks the network from its sender."""
        packet = flow.syn_packet
        for stage in flow.stages:
            x = stage(packet, flow)
            if x.__class__ is Verdict:
                return self._failed(flow, x)
            packet = x  # type: ignore[assignment]
        k = flow.conn_id
        assert flow.pod is not None
        self.rec.pod_index[k] = flow.pod.index
        if k == self.trace_conn:
            self.hops, self.hops_conn_id = flow.hops, k
        return flow.record("ok", "", flow.t_connected + self._service[k])

    def _failed(self, flow: Flow, verdict: Verdict) -> Connection | None:
        """The record of a connection that ended with ``verdict``, as its client sees it; or
        ``None`` when the SYN got no answer and is retransmitted later (T1)."""
        if verdict.timed_out:
            offsets = self._syn_offsets if flow.path != "haproxy" else self._syn_offsets_haproxy
            if flow.syn_sent < len(offsets):
                due = flow.t_start + offsets[flow.syn_sent]
                heappush(self._pending, (due, flow.conn_id, flow))
                return None
        if flow.path == "haproxy" and self.haproxy is not None:
            verdict = self.haproxy.relay(verdict, flow)
        t_end = flow.t_start + self.scenario.client_timeout_s if verdict.timed_out else flow.t_syn
        if flow.conn_id == self.trace_conn:
            self.hops, self.hops_conn_id = flow.hops, flow.conn_id
        return flow.record(verdict.outcome, verdict.reason, t_end)

    def _retransmit(self, item: tuple[float, int, Flow]) -> None:
        """A SYN that got no answer is sent again (T1); its connection may now get through."""
        t_syn, k, flow = item
        flow.new_attempt(t_syn, float(self._u_retry.random()))
        if flow.hops is not None:
            sender = "haproxy" if flow.path == "haproxy" else "client"
            what = f"SYN #{flow.syn_sent} sent {t_syn - flow.t_start:g} s after the first (T1)"
            flow.hop(sender, flow.syn_packet, Step(Action.ORIGINATED, what))
        row = self._send(flow)
        if row is not None:
            self.rec.connections[k] = row

    def _call_from_pod(self, k: int, flow: Flow) -> Packet:
        # K8: a pod on a live node (uniformly) sends to the VIP; no HAProxy, no ARP.
        live = self.live
        caller = live[int(self._u_caller[k] * len(live))] if live else 0
        port = self._caller_ports[caller]
        self._caller_ports[caller] = port + 1 if port < 60999 else 32768
        packet = Packet(caller_pod_ip(caller), port, VIP, VIP_PORT, self.clients.request)
        flow.client_ip, flow.client_port, flow.node = packet.src_ip, port, caller
        if flow.hops is not None:
            flow.hop(f"caller pod on {self.names[caller]}", packet, Step(Action.ORIGINATED, ""))
        return packet

    def _at_pod(self, packet: Packet, flow: Flow) -> Packet | Verdict:
        """The DNATed packet reaches the pod kube-proxy chose (its conntrack entry)."""
        assert flow.pod is not None
        return flow.pod.handle(packet, flow)

    # ------------------------------------------------------------ control plane

    def _relay(self) -> Callable[[Connection, str], str] | None:
        # Behind HAProxy the client sees HAProxy's answer: in mode http a reset is a 502 (H7).
        hap = self.haproxy
        if hap is None:
            return None
        return lambda row, outcome: hap.relay_outcome(outcome) if row.path == "haproxy" else outcome

    def _pod_deleted(self, pod: GatewayPod) -> None:
        # A pod that stops serving (forced, or at the end of its drain) resets its connections
        # still in flight (K14, K18).
        index = pod.index
        pods = self.rec.pod_index
        what = "gone (forced delete, or the end of its drain) while in flight: reset (K14, K18)"
        self.rec.break_in_flight(
            self.env.now,
            lambda k, _r: pods[k] == index,
            "reset",
            "pod_deleted_in_flight",
            self._relay(),
            why=(f"{pod.name} on {pod.host.name}", what),
        )

    def _arp_moved(self, moved: list[tuple[int, int]], node: int) -> None:
        """M17: hosts whose ARP entry for the VIP moved lose their flows through the old node.

        Their next packet of an established connection reaches ``node``, which has no conntrack
        entry for it; with ``nf_conntrack_tcp_loose=1`` it is DNATed afresh to a pod with no such
        socket, which answers RST. Behind HAProxy, HAProxy is the host: its server-side
        connections through the old node die. That holds for a dead old node too: connections
        stalled by its power-off, whose clients still retransmit, are reset at the takeover
        instead of timing out. (Simplification: the reset comes at the gratuitous ARP, not with
        the client's next retransmission; a fresh DNAT to a dead pod would time out instead.)
        """
        if self.scenario.client_target == "nodeport":
            return  # the clients use the nodes' own addresses, not the VIP
        via_vip = self.haproxy is not None and self.haproxy.config.backend == "vip"
        hosts: dict[str, set[str]] = {}
        for slot, old in moved:
            ip = HAPROXY_IP if slot == self.clients.count else self.clients.ips[slot]
            hosts.setdefault(self.names[old], set()).add(ip)

        def match(_k: int, row: Connection) -> bool:
            host = HAPROXY_IP if row.path == "haproxy" else row.client_ip
            if row.path == "in_cluster" or (row.path == "haproxy" and not via_vip):
                return False
            return host in hosts.get(row.entry_node, ())

        detail = (
            f"the ARP entry for the VIP moved to {self.names[node]}: the next packet meets no "
            "conntrack entry there and is answered with a reset (M17)"
        )
        for old_node in hosts:
            self.rec.break_in_flight(
                self.env.now,
                partial(_through, old_node, match),
                "reset",
                "conntrack_lost",
                self._relay(),
                why=(old_node, detail),
                stalled="node_down_in_flight",
            )

    def _broken(self, row: Connection, element: str, detail: str) -> None:
        """A connection broke in flight: the traced one gets a last hop saying where and why."""
        if self.hops is None or row.conn_id != self.hops_conn_id:
            return
        action = Action.NO_ANSWER if row.outcome == "timeout" else Action.RESET
        if row.outcome.startswith("http_"):
            action = Action.ANSWERED
        packet = Packet(row.client_ip, row.client_port, "", 0)
        self.hops.append(Hop(element, packet, (Step(action, f"{row.outcome}: {detail}"),)))

    def _probe(self, server: int, u: float) -> CheckResult:
        """One HAProxy check connection to ``server`` through the network (H4, H5, K10, K11)."""
        hap = self.haproxy
        assert hap is not None
        _name, server_ip, server_port = hap.server(server)
        flow = Flow(-1, self.env.now, u, "check", None)
        packet = Packet(HAPROXY_IP, 0, server_ip, server_port)
        x = self.segment.handle(packet, flow)
        if isinstance(x, Verdict):
            where = self.names[flow.node] if flow.node >= 0 else ""
            return CheckResult(False, _check_failure(x, where), x.timed_out)
        node = self.nodes[flow.node]
        if self.kube_proxy.local_policy and server_port == NODE_PORT:
            # K10, K11: kube-proxy's own health server on the healthCheckNodePort (no DNAT); the
            # explicit check port means no PROXY header (H4).
            data = hap.check_bytes(explicit_port=True) + HTTPCHK_REQUEST
            self.check_payloads[data] += 1
            status, local = self.kube_proxy.health_check(node.index)
            return CheckResult(
                status == 200,
                f"GET /healthz on {node.node_ip}:{HEALTH_CHECK_NODE_PORT} -> {status} "
                f"({local} local Ready endpoint(s), K11; no PROXY header: explicit check port, H4)",
            )
        x = self.kube_proxy.handle(packet, flow)
        if isinstance(x, Verdict):
            return CheckResult(False, _check_failure(x, node.name), x.timed_out)
        pod = flow.pod
        assert pod is not None
        if not pod.answers:
            return CheckResult(False, f"connect timeout ({pod.name} does not answer)", True)
        # A TCP connect that sends the PROXY bytes first when send_proxy is set and there is no
        # explicit port (H4); it passes once established (H5).
        port = self.clients.next_port(self.clients.count)
        data = hap.check_bytes(src_port=port, server_ip=server_ip, server_port=server_port)
        self.check_payloads[data] += 1
        ok = pod.gateway.accepts_check(data, peer_ip=x.src_ip, peer_port=port)
        kind = f"{len(data)}-byte PROXY header" if data else "plain TCP connect"
        return CheckResult(ok, f"TCP connect to {pod.name} succeeded ({kind}, H5)")


def _through(node: str, match: Callable[[int, Connection], bool], k: int, row: Connection) -> bool:
    """Whether connection ``k`` entered through ``node`` and ``match`` holds for it."""
    return row.entry_node == node and match(k, row)


def _check_failure(verdict: Verdict, node: str) -> str:
    """How HAProxy's check log words a failed check connection."""
    if verdict.reason == "no_arp_answer":
        return "no ARP answer for the VIP"
    if verdict.reason == "dead_node":
        return f"connect timeout ({node} is down)"
    what = "dropped" if verdict.action is Action.DROPPED else "refused"
    return f"connect {what} by kube-proxy on {node}"
