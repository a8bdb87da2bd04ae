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
from sim.net.haproxy_checks import HealthChecker
from sim.net.kube_proxy import KubeProxy
from sim.net.memberlist import Memberlist
from sim.net.metallb import L2Speaker
from sim.net.node import Node
from sim.net.node_lifecycle import NodeLifecycleController
from sim.net.segment import Segment
from sim.net.sidecar import Sidecar
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
        trace_conn: ``None`` to record no hops; ``-1`` to record the hops of the first
            successful connection; a connection id to record that connection's hops
            (:attr:`hops` afterwards, used by :func:`sim.trace`).
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
        self.nodes = [Node(i) for i in range(sc.nodes)]
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
        local = sc.external_traffic_policy == "Local"
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
        self.kube_proxy = KubeProxy(
            nodes=sc.nodes, local_policy=local, hosts=self.nodes, pods=self.pods
        )
        self.kube_proxy.set_endpoints(self.endpoints.seen.items())
        self.memberlist = Memberlist(
            env,
            nodes=sc.nodes,
            timing=(sc.probe_interval_s, sc.suspicion_mult, sc.suspicion_max_timeout_mult),
            rng=self.rng["memberlist"],
            recorder=rec,
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
        self.arp = self.segment.arp
        self.speaker = L2Speaker(
            env,
            sc,
            segment=self.segment,
            nodes=self.nodes,
            memberlist=self.memberlist,
            local_endpoints=lambda n: len(self.kube_proxy.local_ready(n)),
            recorder=rec,
        )
        self.endpoints.watchers += [self.kube_proxy.set_endpoints, lambda _: self.speaker.elect()]
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

    def _wire_data_plane(self) -> None:
        sc = self.scenario
        self.haproxy: HAProxy | None = None
        self.checker: HealthChecker | None = None
        stages: list[Stage] = [self.segment.handle, self.kube_proxy.handle]
        if sc.haproxy is not None:
            self.haproxy = self._haproxy()
            stages.insert(0, self.haproxy.forward)
        rest: list[Stage] = [self._at_pod, self.sidecar.forward]
        self._stages = (*stages, *rest)
        self._path = "direct" if self.haproxy is None else "haproxy"
        self._stages_in_cluster = (self.kube_proxy.handle_in_cluster, *rest)

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
        append = self.rec.connections.append
        times_list = self._times
        i = 0
        while i < n:
            # Every arrival before the next control-plane event sees the same state.
            horizon = env.peek()
            j = bisect_left(times_list, horizon, i) if horizon < math.inf else n
            if self.trace_conn is None:
                for k in range(i, j):
                    append(walk(k, None))
            else:
                for k in range(i, j):
                    append(self._walk_traced(k))
            i = j
            if i < n:
                yield env.timeout(max(0.0, min(horizon, times_list[i]) - env.now))

    def _walk_traced(self, k: int) -> Connection:
        target = self.trace_conn
        if target is None or self.hops is not None or (target >= 0 and k != target):
            return self.walk(k, None)
        hops: list[Hop] = []
        row = self.walk(k, hops)
        if target >= 0 or row.outcome == "ok":
            self.hops = hops
            self.hops_conn_id = k
        return row

    # ------------------------------------------------------------- data plane

    def walk(self, k: int, hops: list[Hop] | None) -> Connection:
        """Walk connection ``k`` from its first packet to its end; return its record.

        ``hops`` is ``None``, or a list the elements append their hops to (``sim.trace``).
        """
        t = self._times[k]
        if self._in_cluster[k]:
            flow = Flow(k, t, self._u_endpoint[k], "in_cluster", hops)
            packet = self._call_from_pod(k, flow)
            stages = self._stages_in_cluster
        else:
            flow = Flow(k, t, self._u_endpoint[k], self._path, hops)
            if self.haproxy is not None:
                dst_ip, dst_port = HAPROXY_IP, HAPROXY_PORT
            elif self._nodeport_node:
                dst_ip, dst_port = self.nodes[self._nodeport_node[k]].node_ip, NODE_PORT
            else:
                dst_ip, dst_port = VIP, VIP_PORT
            packet = self.clients.connect(self._client_of[k], dst_ip, dst_port, flow)
            stages = self._stages
        for stage in stages:
            x = stage(packet, flow)
            if x.__class__ is Verdict:
                return self._failed(flow, x)
            packet = x  # type: ignore[assignment]
        return flow.record("ok", "", t + self._service[k])

    def _failed(self, flow: Flow, verdict: Verdict) -> Connection:
        """The record of a connection that ended with ``verdict``, as its client sees it."""
        if flow.path == "haproxy" and self.haproxy is not None:
            verdict = self.haproxy.relay(verdict, flow)
        t = flow.t_start
        t_end = t + self.scenario.client_timeout_s if verdict.timed_out else t
        return flow.record(verdict.outcome, verdict.reason, t_end)

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

    def _pod_deleted(self, name: str) -> None:
        # A forced delete resets the pod's connections in flight (K14); behind HAProxy in mode
        # http the client sees HAProxy's 502 (H7).
        hap = self.haproxy
        pod = self.deployment.current[name]
        self.rec.break_in_flight(
            self.env.now,
            lambda r: r.gateway_pod == name,
            "reset",
            "pod_deleted_in_flight",
            None
            if hap is None
            else (lambda r, o: hap.relay_outcome(o) if r.path == "haproxy" else o),
            why=(f"{name} on {pod.host.name}", "deleted (forced) while in flight: reset (K14)"),
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

    def _probe(self, server: int, u: float) -> tuple[bool, str]:
        """One HAProxy check connection to ``server`` through the network (H4, H5, K10, K11)."""
        hap = self.haproxy
        assert hap is not None
        _name, server_ip, server_port = hap.server(server)
        flow = Flow(-1, self.env.now, u, "check", None)
        packet = Packet(HAPROXY_IP, 0, server_ip, server_port)
        x = self.segment.handle(packet, flow)
        if isinstance(x, Verdict):
            return False, _check_failure(x, self.names[flow.node] if flow.node >= 0 else "")
        node = self.nodes[flow.node]
        if self.kube_proxy.local_policy and server_port == NODE_PORT:
            # K10, K11: kube-proxy's own health server on the healthCheckNodePort (no DNAT); the
            # explicit check port means no PROXY header (H4).
            data = hap.check_bytes(explicit_port=True) + HTTPCHK_REQUEST
            self.check_payloads[data] += 1
            status, local = self.kube_proxy.health_check(node.index)
            return status == 200, (
                f"GET /healthz on {node.node_ip}:{HEALTH_CHECK_NODE_PORT} -> {status} "
                f"({local} local Ready endpoint(s), K11; no PROXY header: explicit check port, H4)"
            )
        x = self.kube_proxy.handle(packet, flow)
        if isinstance(x, Verdict):
            return False, _check_failure(x, node.name)
        pod = flow.pod
        assert pod is not None
        if not pod.answers:
            return False, f"connect timeout ({pod.name} does not answer)"
        # A TCP connect that sends the PROXY bytes first when send_proxy is set and there is no
        # explicit port (H4); it passes once established (H5).
        port = self.clients.next_port(self.clients.count)
        data = hap.check_bytes(src_port=port, server_ip=server_ip, server_port=server_port)
        self.check_payloads[data] += 1
        ok = pod.gateway.accepts_check(data, peer_ip=x.src_ip, peer_port=port)
        kind = f"{len(data)}-byte PROXY header" if data else "plain TCP connect"
        return ok, f"TCP connect to {pod.name} succeeded ({kind}, H5)"


def _check_failure(verdict: Verdict, node: str) -> str:
    """How HAProxy's check log words a failed check connection."""
    if verdict.reason == "no_arp_answer":
        return "no ARP answer for the VIP"
    if verdict.reason == "dead_node":
        return f"connect timeout ({node} is down)"
    what = "dropped" if verdict.action is Action.DROPPED else "refused"
    return f"connect {what} by kube-proxy on {node}"
