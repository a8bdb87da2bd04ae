"""The ingress gateway's Deployment: its pods, where they run, and their lifecycle.

Models the ReplicaSet controller, the scheduler and the kubelet as far as the gateway pods go:

* one pod per entry of ``Scenario.gateway_nodes``, named ``gw-1`` ..., Ready at time 0;
* a graceful delete (:class:`sim.DeletePod`, K18) makes the pod Terminating: not Ready, still
  serving, published as such (:mod:`sim.net.endpoints`); it drains for
  ``termination_drain_s`` (Istio's ``terminationDrainDuration``), then exits, and whatever is
  still open to it is reset. A forced delete (``force=True``, and an eviction from a dead node,
  K15) removes it at once;
* either way the ReplicaSet replaces it at once by a pod of the same name: on the same node or,
  if that node is down, on the live node with the fewest gateway pods; the replacement gets the
  next address of its node's block and becomes Ready ``pod_start_s`` later;
* a move (:class:`sim.MovePod`) is a rollout with surge: the new pod starts on ``to_node``
  first, and the old one turns Terminating only once the new one is Ready (K18);
* a pod whose node loses power stops (it keeps its Ready condition until the node lifecycle
  controller marks it, K15) and starts again ``pod_start_s`` after the node is back.

Every pod incarnation is one :class:`~sim.net.node.GatewayPod` with its own Envoy
(:class:`~sim.net.gateway.IngressGateway`) and one row of :attr:`sim.Result.pods`.

Left out: ``terminationGracePeriodSeconds`` (30 s; the drain ends first here), preStop hooks,
readiness probes failing on a live pod, resource limits and scheduling constraints other than
the node.
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
        on_deleted: called with a pod when it stops serving for good (forced delete, or the end of
            its drain): its connections in flight are reset.
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
        on_deleted: Callable[[GatewayPod], None],
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
        self._surge: dict[int, GatewayPod] = {}  # new pod's index -> the pod it replaces (MovePod)
        names = [n.name for n in nodes]
        for name, node_name in zip(scenario.pod_names, scenario.gateway_nodes, strict=True):
            pod = self._new_pod(name, names.index(node_name))
            pod.state, pod.running, pod.ready = "running", True, True
        endpoints.settle(self.pods)

    def on_node(self, node: int) -> list[GatewayPod]:
        """The pods of ``node`` that are not deleted (a draining one included)."""
        return [p for p in self.pods if p.node == node and p.state != "deleted"]

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
        old = self._surge.pop(pod.index, None)
        if old is not None:  # the rollout's new pod is Ready: the old one terminates (K18)
            self._terminate(old, "pod_terminating")

    def _place(self, preferred: int) -> int:
        """The node for a replacement pod: ``preferred`` if up, else the least-loaded live one."""
        if self.nodes[preferred].up or not self.live:
            return preferred
        load = [0] * len(self.nodes)
        for pod in self.current.values():
            if pod.state != "deleted":
                load[pod.node] += 1
        return min(self.live, key=lambda n: (load[n], n))

    def delete(self, name: str, cause: str, *, force: bool) -> None:
        """Delete pod ``name`` now, gracefully or forced, and create its replacement.

        ``cause`` is the event kind: ``pod_deleted`` or ``pod_evicted``.
        """
        old = self.current[name]
        if old.state in ("deleted", "terminating"):
            return
        if force:
            self._kill(old, cause)
        else:
            self._terminate(old, cause)
        self._replace(old, old.node)

    def move(self, name: str, to_node: int) -> None:
        """A rollout with surge: a new ``name`` starts on ``to_node``; the old one terminates
        once it is Ready (K18)."""
        old = self.current[name]
        if old.state in ("deleted", "terminating"):
            return
        self._recorder.event(
            self.env.now,
            "pod_moved",
            old.host.name,
            f"{name} ({old.ip}): rollout to {self.nodes[to_node].name}, the new pod starts "
            "first, the old one terminates once it is Ready (maxSurge, K18)",
        )
        new = self._replace(old, to_node)
        self._surge[new.index] = old

    def _replace(self, old: GatewayPod, node: int) -> GatewayPod:
        target = self._place(node)
        new = self._new_pod(old.name, target)
        self._recorder.event(
            self.env.now, "pod_created", self.nodes[target].name, f"{old.name} ({new.ip})"
        )
        if self.nodes[target].up:
            self.start(new)
        else:
            new.state = "stopped"
        return new

    def _kill(self, pod: GatewayPod, cause: str) -> None:
        """Gone at once (a forced delete, an eviction): its connections in flight are reset."""
        was_running = pod.running
        pod.state, pod.running = "deleted", False
        self.endpoints.publish(pod, False)
        self._recorder.event(
            self.env.now, cause, pod.host.name, f"{pod.name} ({pod.ip}) gone at once"
        )
        if was_running:
            self._on_deleted(pod)

    def _terminate(self, pod: GatewayPod, cause: str) -> None:
        """Terminating: not Ready, still serving for the drain, then gone (K18)."""
        drain = self.scenario.termination_drain_s
        pod.state = "terminating"
        self.endpoints.publish(pod, False, terminating=pod.running)
        self._recorder.event(
            self.env.now,
            cause,
            pod.host.name,
            f"{pod.name} ({pod.ip}) Terminating: serves while it drains for {drain:g} s (K18)",
        )
        self.env.process(self._drain(pod, drain))

    def _drain(self, pod: GatewayPod, drain_s: float) -> Generator[Any, Any, None]:
        yield self.env.timeout(drain_s)
        if pod.state != "terminating":
            return
        was_running = pod.running
        pod.state, pod.running = "deleted", False
        self.endpoints.publish(pod, False)
        self._recorder.event(
            self.env.now, "pod_exited", pod.host.name, f"{pod.name} ({pod.ip}) drained"
        )
        if was_running:
            self._on_deleted(pod)

    def node_stopped(self, node: int) -> None:
        """``node`` lost power: its pods stop; their Ready condition stays (K15)."""
        for pod in self.pods:
            if pod.node == node and pod.state in ("starting", "running"):
                pod.state, pod.running = "stopped", False
            elif pod.node == node and pod.state == "terminating":
                pod.running = False  # it was draining; it exits when its drain ends

    def node_started(self, node: int) -> None:
        """``node`` has power again: the kubelet reports its pods not Ready and restarts them."""
        for pod in self.current.values():
            if pod.node == node and pod.state == "stopped":
                self.endpoints.publish(pod, False)
                self.start(pod)
