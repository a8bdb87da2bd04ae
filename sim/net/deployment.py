"""The ingress gateway's Deployment: its pods, where they run, and their lifecycle.

Models the ReplicaSet controller, the scheduler and the kubelet as far as the gateway pods go:

* one pod per entry of ``Scenario.gateway_nodes``, named ``gw-1`` ..., Ready at time 0;
* a pod that is deleted (:class:`sim.DeletePod`, :class:`sim.MovePod`, an eviction after K15)
  is replaced at once by a pod of the same name: on the same node, on ``to_node`` for a move,
  or, if that node is down, on the live node with the fewest gateway pods; the replacement
  gets the next address of its node's block and becomes Ready ``pod_start_s`` later;
* a pod whose node loses power stops (it keeps its Ready condition until the node lifecycle
  controller marks it, K15) and starts again ``pod_start_s`` after the node is back.

Every pod incarnation is one :class:`~sim.net.node.GatewayPod` with its own Envoy
(:class:`~sim.net.gateway.IngressGateway`) and one row of :attr:`sim.Result.pods`.

Left out: graceful termination (the ``Terminating`` state, K18), rollout surge, readiness
probes failing on a live pod, resource limits and scheduling constraints other than the node.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

import simpy

from sim.addresses import pod_ip
from sim.net.endpoints import EndpointSlices
from sim.net.gateway import IngressGateway
from sim.net.node import GatewayPod, Node
from sim.results import Recorder
from sim.scenario import Scenario

__all__ = ["GatewayDeployment"]


class GatewayDeployment:
    """The gateway pods of one scenario, every incarnation ever and the current one per name.

    Args:
        env: the SimPy environment.
        scenario: pod placement, the gateway's listener settings and ``pod_start_s``.
        nodes: every node, index order.
        live: the indices of the nodes with power, sorted (shared with the failure injector).
        endpoints: where Ready changes are published.
        recorder: where pod events go.
        on_deleted: called with a pod's name when a running pod is deleted (its connections in
            flight are reset).
    """

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        *,
        nodes: Sequence[Node],
        live: list[int],
        endpoints: EndpointSlices,
        recorder: Recorder,
        on_deleted: Callable[[str], None],
    ) -> None:
        self.env = env
        self.scenario = scenario
        self.nodes = nodes
        self.live = live
        self.endpoints = endpoints
        self._recorder = recorder
        self._on_deleted = on_deleted
        self.pods: list[GatewayPod] = []
        self.current: dict[str, GatewayPod] = {}
        self.rows: list[tuple[str, str, str, float]] = []
        """One ``(pod, node, pod_ip, from_s)`` per incarnation: :attr:`sim.Result.pods`."""
        self._serial = [0] * len(nodes)
        names = [n.name for n in nodes]
        for name, node_name in zip(scenario.pod_names, scenario.gateway_nodes, strict=True):
            pod = self._new_pod(name, names.index(node_name))
            pod.state, pod.running, pod.ready = "running", True, True
        endpoints.settle(self.pods)

    def on_node(self, node: int) -> list[GatewayPod]:
        """The current (not deleted) pods of ``node``."""
        return [p for p in self.current.values() if p.node == node and p.state != "deleted"]

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
        pod = GatewayPod(len(self.pods), name, self.nodes[node], ip, gateway)
        self.pods.append(pod)
        self.current[name] = pod
        self.rows.append((name, self.nodes[node].name, ip, float(self.env.now)))
        return pod

    def start(self, pod: GatewayPod) -> None:
        """The kubelet starts ``pod``'s containers; it is Ready ``pod_start_s`` later."""
        pod.state = "starting"
        pod.start_gen += 1
        self.env.process(self._starting(pod, pod.start_gen))

    def _starting(self, pod: GatewayPod, gen: int) -> Generator[Any, Any, None]:
        yield self.env.timeout(self.scenario.pod_start_s)
        if pod.state != "starting" or pod.start_gen != gen or not pod.host.up:
            return
        pod.state, pod.running = "running", True
        self._recorder.event(self.env.now, "pod_ready", pod.host.name, f"{pod.name} ({pod.ip})")
        self.endpoints.publish(pod, True)

    def _place(self, preferred: int) -> int:
        """The node for a replacement pod: ``preferred`` if up, else the least-loaded live one."""
        if self.nodes[preferred].up or not self.live:
            return preferred
        load = [0] * len(self.nodes)
        for pod in self.current.values():
            if pod.state != "deleted":
                load[pod.node] += 1
        return min(self.live, key=lambda n: (load[n], n))

    def delete(self, name: str, to_node: int | None, cause: str) -> None:
        """Delete pod ``name`` now (a forced delete) and create its replacement (``cause`` is the
        event kind: ``pod_deleted``, ``pod_moved`` or ``pod_evicted``)."""
        old = self.current[name]
        if old.state == "deleted":
            return
        was_running = old.running
        old.state, old.running = "deleted", False
        self.endpoints.publish(old, False)
        self._recorder.event(self.env.now, cause, old.host.name, f"{name} ({old.ip})")
        if was_running:
            self._on_deleted(name)
        target = self._place(old.node if to_node is None else to_node)
        new = self._new_pod(name, target)
        self._recorder.event(
            self.env.now, "pod_created", self.nodes[target].name, f"{name} ({new.ip})"
        )
        if self.nodes[target].up:
            self.start(new)
        else:
            new.state = "stopped"

    def node_stopped(self, node: int) -> None:
        """``node`` lost power: its pods stop; their Ready condition stays (K15)."""
        for pod in self.current.values():
            if pod.node == node and pod.state in ("starting", "running"):
                pod.state, pod.running = "stopped", False

    def node_started(self, node: int) -> None:
        """``node`` has power again: the kubelet reports its pods not Ready and restarts them."""
        for pod in self.current.values():
            if pod.node == node and pod.state == "stopped":
                self.endpoints.publish(pod, False)
                self.start(pod)
