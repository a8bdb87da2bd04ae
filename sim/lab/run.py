"""One lab run: deploy the scenario in namespaces, send the requests, apply the failures,
collect what every hop saw, destroy it all.

:func:`run_lab` is the entry point. The lab is deployed and destroyed as one thing
(containerlab style); cleanup runs in a ``finally`` (normal exit, exceptions, Ctrl-C) and on
SIGTERM, and ``srcip-lab lab down`` repeats it from the state file after a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.addresses import HAPROXY_IP, HAPROXY_PORT, NODE_PORT, VIP, VIP_PORT, client_ip, node_ip
from sim.lab.announcer import L2Announcer, detection_delay_s
from sim.lab.capture import Captures
from sim.lab.clients import Attempt, long_connection, request
from sim.lab.haproxy import RealHAProxy
from sim.lab.kube_proxy import HealthCheckServer, KubeProxy, config_module
from sim.lab.netns import LabState, existing_namespaces, missing_requirements
from sim.lab.observe import conntrack_entries, observed_frame
from sim.lab.servers import App, IngressGateway, Sidecar
from sim.lab.topology import HAPROXY_NS, LabTopology, PodSpec, app_pod

__all__ = ["LabBusy", "LabOptions", "LabRun", "LabUnavailable", "run_lab"]

MAX_CONNECTIONS = 2000
MAX_DURATION_S = 120.0
MAX_NODES = 8
MAX_PODS = 8
MAX_CLIENTS = 1000


class LabUnavailable(RuntimeError):
    """This machine lacks something the lab needs (the message says what)."""


class LabBusy(RuntimeError):
    """A lab (or its leftovers) already exists: ``srcip-lab lab down`` removes it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LabOptions:
    """How to run: ``connections`` requests (spread evenly over ``duration_s`` when the scenario
    has failures, else every ``spacing_s``), ``long_connections`` keep-alive connections opened
    at the start (M17), captures into ``pcap_dir``."""

    connections: int = 20
    spacing_s: float = 0.02
    long_connections: int = 0
    long_every_s: float = 0.5
    pcap_dir: Path | None = None


@dataclass
class LabRun:
    """What a run observed: one row per connection, the events, the files, HAProxy's log."""

    scenario: Any
    observed: Any
    events: list[dict[str, Any]]
    long: list[Attempt]
    pcaps: list[str]
    haproxy_changes: list[tuple[float, str, str]]
    haproxy_config: str
    rules: dict[str, str]
    notes: list[str] = field(default_factory=list)


def _check(scenario: Any, options: LabOptions) -> None:
    problems = []
    if scenario.nodes > MAX_NODES:
        problems.append(f"nodes={scenario.nodes} (the lab builds at most {MAX_NODES})")
    if len(scenario.gateway_nodes) > MAX_PODS:
        problems.append(f"{len(scenario.gateway_nodes)} gateway pods (at most {MAX_PODS})")
    if scenario.clients > MAX_CLIENTS:
        problems.append(f"clients={scenario.clients} (at most {MAX_CLIENTS} addresses)")
    if not 1 <= options.connections <= MAX_CONNECTIONS:
        problems.append(f"connections={options.connections} (1 to {MAX_CONNECTIONS})")
    if scenario.failures and scenario.duration_s > MAX_DURATION_S:
        problems.append(f"duration_s={scenario.duration_s} with failures (at most 120 s)")
    for event in scenario.failures:
        if type(event).__name__ != "NodeDown":
            problems.append(f"{type(event).__name__} (the lab models NodeDown only)")
    if scenario.in_cluster_share:
        problems.append("in_cluster_share > 0 (the lab has no in-cluster callers)")
    if problems:
        raise ValueError("lab: cannot run this scenario: " + "; ".join(problems))


def run_lab(scenario: Any, options: LabOptions | None = None) -> LabRun:
    """Deploy ``scenario`` in network namespaces, run it, tear it down; return what was seen.

    Raises :class:`LabUnavailable` (missing root/tools), :class:`LabBusy` (a lab exists) or
    :class:`ValueError` (a scenario the lab cannot build).
    """
    options = options or LabOptions()
    missing = missing_requirements()
    if missing:
        raise LabUnavailable("the lab needs: " + "; ".join(missing))
    _check(scenario, options)
    leftovers = existing_namespaces()
    if leftovers:
        raise LabBusy(
            f"lab namespaces exist already ({', '.join(leftovers)}): another lab is running, "
            "or a crashed one left them; remove them with `srcip-lab lab down`"
        )
    state = LabState()
    state.save()
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, on_term)
    try:
        with tempfile.TemporaryDirectory(prefix="srcip-lab-") as work:
            lab = _Lab(scenario, options, state, Path(work))
            lab.build()
            asyncio.run(lab.run())
            return lab.collect()
    finally:
        state.teardown()
        signal.signal(signal.SIGTERM, previous)


class _Lab:
    """The run itself (one asyncio loop; every server and client socket lives in a lab
    namespace)."""

    def __init__(self, scenario: Any, options: LabOptions, state: LabState, work: Path) -> None:
        self.sc = scenario
        self.opt = options
        self.state = state
        self.work = work
        self.log: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.down: set[int] = set()
        self.kube_proxy: KubeProxy | None = None
        self.haproxy: RealHAProxy | None = None
        self.servers: list[Any] = []
        self.rng = np.random.default_rng(scenario.seed)

    def _pods(self, endpoints: list[Any]) -> list[PodSpec]:
        names = list(self.sc.node_names)
        pods = [PodSpec(e.pod, names.index(e.node), e.ip) for e in endpoints]
        return [*pods, app_pod(self.sc.nodes)]

    def build(self) -> None:
        """Namespaces, links, rules and the initial VIP (netlink calls: before the loop)."""
        sc = self.sc
        self.config = config_module()
        self.pods = self._pods(list(self.config.initial_endpoints(sc)))
        self.topology = topo = LabTopology(
            self.state, sc.nodes, self.pods, sc.clients, sc.encapsulation, sc.haproxy is not None
        )
        topo.build()
        self.kube_proxy = KubeProxy(sc, [topo.node_ns(i) for i in range(sc.nodes)])
        self.kube_proxy.sync()
        self.announcer = L2Announcer(sc, topo, self.state, self.kube_proxy.local_ready, self.events)
        self.announcer.start()

    async def run(self) -> None:
        """Servers, captures, HAProxy, the traffic and the failures; everything stopped after."""
        sc = self.sc
        captures = Captures(self.state, self.opt.pcap_dir) if self.opt.pcap_dir else None
        self.pcaps: list[str] = []
        try:
            await self._start_servers(self.pods)
            if captures is not None:
                captures.start(self.topology.devices())
            if sc.haproxy is not None:
                await self._start_haproxy(self.config.haproxy_cfg(sc))
            self.attempts, self.long = await self._traffic()
        finally:
            await self._stop_servers()
            if self.haproxy is not None:
                self.haproxy.stop()
            if captures is not None:
                self.pcaps = captures.stop()
                self.topology.notes.extend(captures.notes())

    def collect(self) -> LabRun:
        """Read every node's conntrack table and join it with the clients' and servers' logs."""
        sc = self.sc
        topo = self.topology
        assert self.kube_proxy is not None
        conntrack = {sc.node_names[i]: conntrack_entries(topo.node_ns(i)) for i in range(sc.nodes)}
        t0 = self.t0
        observed = observed_frame(sc, self.attempts, self.log, conntrack, t0)
        changes = self.haproxy.changes() if self.haproxy else []
        for a in self.long:
            a.t_start -= t0
            a.t_end -= t0
        return LabRun(
            scenario=sc,
            observed=observed,
            events=[{**e, "t": round(e["t"] - t0, 4)} for e in self.events],
            long=self.long,
            pcaps=self.pcaps,
            haproxy_changes=[(round(t - t0, 4), s, what) for t, s, what in changes],
            haproxy_config=self.haproxy.config_text if self.haproxy else "",
            rules=dict(self.kube_proxy.rendered),
            notes=list(topo.notes),
        )

    async def _start_servers(self, pods: list[PodSpec]) -> None:
        sc = self.sc
        assert self.kube_proxy is not None
        for pod in pods[:-1]:
            gw = IngressGateway(
                (pod.name, pod.ip, pod.namespace, sc.node_names[pod.node]),
                proxy_protocol=sc.gateway_proxy_protocol,
                num_trusted_proxies=sc.num_trusted_proxies,
                log=self.log,
                listener_timeout_s=sc.listener_filters_timeout_s,
            )
            self.servers.append(gw)
        app = pods[-1]
        self.servers += [
            Sidecar(namespace=app.namespace, log=self.log),
            App(namespace=app.namespace, log=self.log),
        ]
        if sc.external_traffic_policy == "Local":
            for i, name in enumerate(sc.node_names):
                ns = self.topology.node_ns(i)
                self.servers.append(HealthCheckServer(self.kube_proxy, name, ns))
        for server in self.servers:
            await server.start()

    async def _stop_servers(self) -> None:
        for server in self.servers:
            with contextlib.suppress(Exception):
                await server.stop()
        await self.announcer.stop()

    async def _start_haproxy(self, config: str) -> None:
        sc = self.sc
        self.haproxy = RealHAProxy(self.state, HAPROXY_NS, config, self.work)
        self.haproxy.start()
        hap = sc.haproxy
        if hap.backend != "nodeports" or not hap.check:
            return
        # Wait (bounded) until HAProxy's checks have marked the nodes without a Ready local
        # endpoint DOWN (Local: /healthz 503, K11), so traffic starts on the settled state.
        assert self.kube_proxy is not None
        expect = {n for n in sc.node_names if not self.kube_proxy.local_ready(n)}
        if sc.external_traffic_policy != "Local":
            expect = set()
        deadline = time.monotonic() + hap.inter_s * (hap.fall + 2) + 3.0
        while time.monotonic() < deadline:
            down = {s for _, s, what in self.haproxy.changes() if what == "DOWN"}
            if expect <= down:
                break
            await asyncio.sleep(0.05)

    def _target(self, k: int) -> tuple[str, int]:
        sc = self.sc
        if sc.haproxy is not None:
            return HAPROXY_IP, HAPROXY_PORT
        if sc.client_target == "nodeport":
            return node_ip(k % sc.nodes), NODE_PORT
        return VIP, VIP_PORT

    async def _traffic(self) -> tuple[list[Attempt], list[Attempt]]:
        sc = self.sc
        opt = self.opt
        n = opt.connections
        spacing = sc.duration_s / n if sc.failures else opt.spacing_s
        end = max(n * spacing, max((f.up_at_s or f.at_s for f in sc.failures), default=0.0))
        self.t0 = t0 = time.monotonic() + 0.05
        tasks: list[asyncio.Task[Any]] = [
            asyncio.create_task(self._failure(f, t0)) for f in sc.failures
        ]
        long = []
        for j in range(opt.long_connections):
            ip = client_ip(j % sc.clients)
            attempt = Attempt(conn_id=100_000 + j, client_ip=ip)
            long.append(attempt)
            coro = long_connection(
                attempt,
                self.topology.client_of[ip],
                self._target(j),
                every_s=opt.long_every_s,
                until=t0 + end,
                timeout_s=max(10.0, end),
            )
            tasks.append(asyncio.create_task(coro))
        attempts = []
        for k in range(n):
            delay = t0 + k * spacing - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            ip = client_ip(k % sc.clients)
            attempt = Attempt(conn_id=k, client_ip=ip)
            attempts.append(attempt)
            coro = request(
                attempt,
                self.topology.client_of[ip],
                self._target(k),
                sc.client_xff,
                sc.client_timeout_s,
            )
            tasks.append(asyncio.create_task(coro))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=end + sc.client_timeout_s + 30)
        await asyncio.sleep(0.1)  # the last log lines
        return attempts, long

    async def _failure(self, event: Any, t0: float) -> None:
        """NodeDown: links down at ``at_s`` (no RST), detection, K15, links up at ``up_at_s``."""
        sc = self.sc
        assert self.kube_proxy is not None
        node = list(sc.node_names).index(event.node)
        await asyncio.sleep(max(0.0, t0 + event.at_s - time.monotonic()))
        await asyncio.to_thread(self.topology.set_node_links, node, False)
        self.down.add(node)
        self.events.append(
            {
                "t": time.monotonic(),
                "kind": "node_down",
                "node": event.node,
                "detail": "links down (powered off)",
            }
        )
        self.announcer.node_down(node)
        alive = sc.nodes - len(self.down)
        detect = detection_delay_s(sc, alive, self.rng)
        grace = sc.node_monitor_grace_period_s + sc.endpoint_update_delay_s
        up = event.up_at_s - event.at_s if event.up_at_s is not None else float("inf")
        steps = sorted([(detect, "detected"), (grace, "not_ready"), (up, "up")])
        start = time.monotonic()
        for after, what in steps:
            if after == float("inf") or t0 + after + event.at_s > t0 + sc.duration_s + 1:
                continue
            await asyncio.sleep(max(0.0, start + after - time.monotonic()))
            if what == "detected" and node in self.down:
                await self.announcer.detected(node)
            elif what == "not_ready":
                await asyncio.to_thread(self.kube_proxy.set_ready, event.node, False, self.down)
                await self.announcer.elect()
            elif what == "up":
                await self._node_up(node)

    async def _node_up(self, node: int) -> None:
        """Power on: a reboot forgets the VIP and conntrack; links up; the speaker rejoins."""
        from sim.addresses import VIP as vip

        await asyncio.to_thread(self.topology.set_vip, node, vip, False)
        await asyncio.to_thread(self.topology.set_node_links, node, True)
        self.down.discard(node)
        self.events.append(
            {
                "t": time.monotonic(),
                "kind": "node_up",
                "node": self.sc.node_names[node],
                "detail": "links up",
            }
        )
        await asyncio.sleep(self.sc.pod_start_s)
        assert self.kube_proxy is not None
        await asyncio.to_thread(
            self.kube_proxy.set_ready, self.sc.node_names[node], True, self.down
        )
        await self.announcer.joined(node)
