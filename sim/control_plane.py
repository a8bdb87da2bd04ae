"""The control plane of a simulated cluster: failures, pods, nodes, elections, health checks.

:class:`ControlPlane` is the half of :class:`sim.topology.Topology` that changes the state
tables the data plane reads: SimPy processes for the failures (:class:`~sim.NodeDown`,
:class:`~sim.DeletePod`, :class:`~sim.MovePod`), EndpointSlice propagation to kube-proxy and the
speakers (``endpoint_update_delay_s``), the node lifecycle controller (NotReady after
``node_monitor_grace_period_s``, eviction ``pod_eviction_timeout_s`` later, K15), pod restarts
and HAProxy's health checks through the real path (H4, H5): of the VIP, or of every node's
NodePort (TCP, ``Cluster``) or healthCheckNodePort (``option httpchk GET /healthz``, ``Local``,
K10, K11) with ``backend="nodeports"``. A connection in flight when its
ingress node (which holds its conntrack entry, K14), its pod's node or its pod dies is rewritten
as failed at that moment.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy

from sim.addresses import (
    HAPROXY_IP,
    HEALTH_CHECK_NODE_PORT,
    NODE_PORT,
    VIP,
    VIP_PORT,
    pod_ip,
)
from sim.net.clients import ArpCache, Clients
from sim.net.gateway import IngressGateway
from sim.net.haproxy import HTTPCHK_REQUEST, HAProxy
from sim.net.kube_proxy import DROP, FORWARD, KubeProxy
from sim.net.memberlist import Memberlist
from sim.net.metallb import L2Speaker
from sim.net.node import GatewayPod, Node
from sim.results import CONNECTION_COLUMNS, Recorder
from sim.scenario import DeletePod, MovePod, NodeDown, Scenario

__all__ = ["ControlPlane"]

_POD = CONNECTION_COLUMNS.index("gateway_pod")
_ENTRY = CONNECTION_COLUMNS.index("entry_node")
_POD_NODE = CONNECTION_COLUMNS.index("gateway_node")
_PATH = CONNECTION_COLUMNS.index("path")


class ControlPlane:
    """State changes over time; :class:`~sim.topology.Topology` sets these attributes up."""

    scenario: Scenario
    env: simpy.Environment
    rec: Recorder
    rng: dict[str, np.random.Generator]
    nodes: list[Node]
    names: list[str]
    _live: list[int]
    _gen: list[int]
    _max_service: float
    kube_proxy: KubeProxy
    clients: Clients
    arp: ArpCache
    haproxy: HAProxy | None
    check_payloads: Counter[bytes]
    pods: list[GatewayPod]
    current: dict[str, GatewayPod]
    pod_rows: list[tuple[str, str, str, float]]
    _serial: list[int]
    _seen: dict[int, int]
    memberlist: Memberlist
    speaker: L2Speaker

    def _break_in_flight(
        self, match: Callable[[tuple[Any, ...]], bool], outcome: str, reason: str
    ) -> None:
        """Rewrite connections that are in flight now and ``match`` as failed (K14).

        A reset behind HAProxy in ``mode http`` reaches the client as HAProxy's ``502`` (H7:
        HAProxy, not the gateway, is the client's HTTP peer), as in the data plane.
        """
        now = self.env.now
        rows = self.rec.connections
        horizon = now - self._max_service
        http_mode = self.haproxy is not None and self.haproxy.config.mode == "http"
        i = len(rows) - 1
        while i >= 0 and rows[i][3] >= horizon:
            row = rows[i]
            if row[5] == "ok" and row[4] > now and match(row):
                t_end = (
                    now if outcome == "reset" else max(now, row[3] + self.scenario.client_timeout_s)
                )
                seen = outcome
                if outcome == "reset" and http_mode and row[_PATH] == "haproxy":
                    seen = "http_502"
                rows[i] = (*row[:4], t_end, seen, reason, *row[7:])
            i -= 1

    def _resync(self) -> None:
        self.speaker.elect()

    def _new_pod(self, name: str, node: int) -> GatewayPod:
        sc = self.scenario
        ip = pod_ip(node, self._serial[node])
        self._serial[node] += 1
        gateway = IngressGateway(
            pod=name,
            pod_ip=ip,
            proxy_protocol=sc.gateway_proxy_protocol,
            num_trusted_proxies=sc.num_trusted_proxies,
        )
        pod = GatewayPod(len(self.pods), name, node, ip, gateway)
        self.pods.append(pod)
        self.current[name] = pod
        self.pod_rows.append((name, self.names[node], ip, float(self.env.now)))
        return pod

    def _publish(self, pod: GatewayPod, ready: bool) -> None:
        """The control plane changes ``pod``'s Ready condition; watchers see it after a delay."""
        if pod.ready == ready:
            return
        pod.ready = ready
        self.env.process(self._propagate(pod, ready))

    def _propagate(self, pod: GatewayPod, ready: bool) -> Generator[Any, Any, None]:
        yield self.env.timeout(self.scenario.endpoint_update_delay_s)
        if ready:
            self._seen[pod.index] = pod.node
        else:
            self._seen.pop(pod.index, None)
        self.kube_proxy.set_endpoints(self._seen.items())
        state = "Ready" if ready else "not Ready"
        self.rec.event(
            self.env.now,
            "endpoints",
            self.names[pod.node],
            f"{pod.name} ({pod.ip}) {state}; {len(self._seen)} Ready endpoint(s)",
        )
        self.speaker.elect()

    def _start_pod(self, pod: GatewayPod) -> None:
        pod.state = "starting"
        pod.start_gen += 1
        self.env.process(self._pod_starting(pod, pod.start_gen))

    def _pod_starting(self, pod: GatewayPod, gen: int) -> Generator[Any, Any, None]:
        yield self.env.timeout(self.scenario.pod_start_s)
        if pod.state != "starting" or pod.start_gen != gen or not self.nodes[pod.node].up:
            return
        pod.state, pod.running = "running", True
        self.rec.event(self.env.now, "pod_ready", self.names[pod.node], f"{pod.name} ({pod.ip})")
        self._publish(pod, True)

    def _place(self, preferred: int) -> int:
        """The node for a replacement pod: ``preferred`` if up, else the least-loaded live one."""
        if self.nodes[preferred].up or not self._live:
            return preferred
        load = [0] * len(self.nodes)
        for pod in self.current.values():
            if pod.state != "deleted":
                load[pod.node] += 1
        return min(self._live, key=lambda n: (load[n], n))

    def _delete_pod(self, name: str, to_node: int | None, cause: str) -> None:
        old = self.current[name]
        if old.state == "deleted":
            return
        was_running = old.running
        old.state, old.running = "deleted", False
        self._publish(old, False)
        self.rec.event(self.env.now, cause, self.names[old.node], f"{name} ({old.ip})")
        if was_running:
            self._break_in_flight(lambda r: r[_POD] == name, "reset", "pod_deleted_in_flight")
        target = self._place(old.node if to_node is None else to_node)
        new = self._new_pod(name, target)
        self.rec.event(self.env.now, "pod_created", self.names[target], f"{name} ({new.ip})")
        if self.nodes[target].up:
            self._start_pod(new)
        else:
            new.state = "stopped"

    def _failure(self, event: NodeDown | DeletePod | MovePod) -> Generator[Any, Any, None]:
        yield self.env.timeout(event.at_s)
        if isinstance(event, NodeDown):
            self._node_down(self.names.index(event.node))
            if event.up_at_s is not None:
                yield self.env.timeout(event.up_at_s - event.at_s)
                self._node_up(self.names.index(event.node))
        elif isinstance(event, MovePod):
            self._delete_pod(event.pod, self.names.index(event.to_node), "pod_moved")
        else:
            self._delete_pod(event.pod, None, "pod_deleted")

    def _node_down(self, node: int) -> None:
        n = self.nodes[node]
        if not n.up:
            return
        n.up = False
        self._gen[node] += 1
        self._live.remove(node)
        self.rec.event(self.env.now, "node_down", n.name, "powered off")
        name = n.name
        self._break_in_flight(
            lambda r: r[_ENTRY] == name or r[_POD_NODE] == name, "timeout", "node_down_in_flight"
        )
        for pod in self.current.values():
            if pod.node == node and pod.state in ("starting", "running"):
                pod.state, pod.running = "stopped", False  # Ready stays (K15)
        self.memberlist.speaker_died(node)
        self.env.process(self._node_lifecycle(node, self._gen[node]))

    def _node_lifecycle(self, node: int, gen: int) -> Generator[Any, Any, None]:
        # K15: NotReady after the grace period, then the unreachable toleration runs out.
        sc = self.scenario
        yield self.env.timeout(sc.node_monitor_grace_period_s)
        if self._gen[node] != gen:
            return
        self.rec.event(
            self.env.now,
            "node_not_ready",
            self.names[node],
            "node lifecycle controller marks the node and its pods not Ready (K15)",
        )
        for pod in self.current.values():
            if pod.node == node and pod.state != "deleted":
                self._publish(pod, False)
        yield self.env.timeout(sc.pod_eviction_timeout_s)
        if self._gen[node] != gen:
            return
        for name in [p.name for p in self.current.values() if p.node == node]:
            self._delete_pod(name, None, "pod_evicted")

    def _node_up(self, node: int) -> None:
        n = self.nodes[node]
        if n.up:
            return
        n.up = True
        self._gen[node] += 1
        self._live = sorted([*self._live, node])
        self.rec.event(self.env.now, "node_up", n.name, "powered on")
        for pod in self.current.values():
            if pod.node == node and pod.state == "stopped":
                self._publish(pod, False)  # the kubelet reports the restarting containers
                self._start_pod(pod)
        self.env.process(self._speaker_start(node, self._gen[node]))

    def _speaker_start(self, node: int, gen: int) -> Generator[Any, Any, None]:
        yield self.env.timeout(self.scenario.pod_start_s)
        if self._gen[node] == gen:
            self.memberlist.speaker_started(node)

    def _health_checks(self) -> Generator[Any, Any, None]:
        """HAProxy's ``check`` of its one server, the VIP, through the real path (H4, H5)."""
        hap = self.haproxy
        assert hap is not None
        rng = self.rng["haproxy_checks"]
        inter = hap.config.inter_s
        yield self.env.timeout(float(rng.uniform(0.0, inter)))
        while True:
            ok, detail = self._check_once(float(rng.random()))
            change = hap.record_check(ok)
            if change is not None:
                self.rec.event(
                    self.env.now,
                    "haproxy_check",
                    "",
                    f"server {VIP}:{VIP_PORT} is {change}: {detail}",
                )
            yield self.env.timeout(inter)

    def _check_once(self, u: float) -> tuple[bool, str]:
        hap = self.haproxy
        assert hap is not None
        slot = self.clients.count
        entry = self.arp.entries[slot]
        if entry < 0:
            owner = self.speaker.announcer
            if owner is None or not self.nodes[owner].up:
                return False, "no ARP answer for the VIP"
            self.arp.entries[slot] = entry = owner
        node = self.nodes[entry]
        if not node.up:
            return False, f"connect timeout ({node.name} is down)"
        verdict, pod_index = self.kube_proxy.route_external(entry, u)
        if verdict != FORWARD:
            what = "dropped" if verdict == DROP else "refused"
            return False, f"connect {what} by kube-proxy on {node.name}"
        return self._tcp_check(slot, node, pod_index, VIP, VIP_PORT)

    def _tcp_check(
        self, slot: int, node: Node, pod_index: int, server_ip: str, server_port: int
    ) -> tuple[bool, str]:
        # The check connection reached a pod through kube-proxy: a TCP connect (H5) that sends
        # the PROXY bytes first when send_proxy is set and there is no explicit port (H4).
        hap = self.haproxy
        assert hap is not None
        pod = self.pods[pod_index]
        if not self.nodes[pod.node].up or not pod.running:
            return False, f"connect timeout ({pod.name} does not answer)"
        port = self.clients.next_port(slot)
        data = hap.check_bytes(src_port=port, server_ip=server_ip, server_port=server_port)
        self.check_payloads[data] += 1
        peer = HAPROXY_IP if self.kube_proxy.local_policy else node.masquerade_ip(pod.node)
        ok = pod.gateway.accepts_check(data, peer_ip=peer, peer_port=port)
        kind = f"{len(data)}-byte PROXY header" if data else "plain TCP connect"
        return ok, f"TCP connect to {pod.name} succeeded ({kind}, H5)"

    def _nodeport_checks(self, server: int) -> Generator[Any, Any, None]:
        """HAProxy's ``check`` of server ``server`` = node ``server``'s NodePort (section E, H5).

        Each server has its own timer and health counter; the first check comes at a random
        offset within ``inter`` (HAProxy spreads the first checks of its servers).
        """
        hap = self.haproxy
        assert hap is not None
        rng = self.rng["haproxy_checks"]
        inter = hap.config.inter_s
        node = self.nodes[server]
        port = HEALTH_CHECK_NODE_PORT if self.kube_proxy.local_policy else NODE_PORT
        where = f"server {node.name} ({node.node_ip}:{NODE_PORT}, check port {port})"
        yield self.env.timeout(float(rng.uniform(0.0, inter)))
        while True:
            ok, detail = self._check_nodeport(server, float(rng.random()))
            change = hap.record_check(ok, server)
            if change is not None:
                self.rec.event(
                    self.env.now, "haproxy_check", node.name, f"{where} is {change}: {detail}"
                )
            yield self.env.timeout(inter)

    def _check_nodeport(self, server: int, u: float) -> tuple[bool, str]:
        hap = self.haproxy
        assert hap is not None
        node = self.nodes[server]
        if not node.up:
            return False, f"connect timeout ({node.name} is down)"
        if self.kube_proxy.local_policy:
            # K10, K11: kube-proxy's own health server on the healthCheckNodePort (kube-proxy
            # ACCEPTs that port, no DNAT); the explicit check port means no PROXY header (H4).
            data = hap.check_bytes(explicit_port=True) + HTTPCHK_REQUEST
            self.check_payloads[data] += 1
            status, local = self.kube_proxy.health_check(server)
            return status == 200, (
                f"GET /healthz on {node.node_ip}:{HEALTH_CHECK_NODE_PORT} -> {status} "
                f"({local} local Ready endpoint(s), K11; no PROXY header: explicit check port, H4)"
            )
        # Cluster: a TCP check to the NodePort meets kube-proxy's random endpoint choice (K14).
        verdict, pod_index = self.kube_proxy.route_external(server, u)
        if verdict != FORWARD:
            what = "dropped" if verdict == DROP else "refused"
            return False, f"connect {what} by kube-proxy on {node.name}"
        return self._tcp_check(self.clients.count, node, pod_index, node.node_ip, NODE_PORT)
