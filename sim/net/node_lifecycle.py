"""The node lifecycle controller: when a dead node's pods stop counting as endpoints.

Models kube-controller-manager's node lifecycle controller for a node that lost power (K15):

* nothing happens for ``--node-monitor-grace-period`` (``node_monitor_grace_period_s``, 40 s
  historically, 50 s in recent releases): the node's pods stay Ready, so kube-proxy on other
  nodes still sends them a share of new connections (``Cluster``);
* then the node is NotReady and its pods are marked not Ready (the EndpointSlices follow after
  ``endpoint_update_delay_s``, :mod:`sim.net.endpoints`);
* ``pod_eviction_timeout_s`` later (the default ``node.kubernetes.io/unreachable`` toleration,
  300 s) the pods are evicted and the Deployment recreates them elsewhere
  (:mod:`sim.net.deployment`).

A node that comes back before a timer fires cancels it (its power generation changed).

Left out: taint-based eviction rate limits, zones, partial disruption modes, the kubelet's own
status updates of a live node.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import simpy

from sim.net.deployment import GatewayDeployment
from sim.net.node import Node
from sim.results import Recorder

__all__ = ["NodeLifecycleController"]


class NodeLifecycleController:
    """Marks a powered-off node's pods not Ready after the grace period, then evicts them.

    Args:
        env: the SimPy environment.
        nodes: every node, index order.
        deployment: the gateway pods.
        recorder: where ``node_not_ready`` events go.
        timers: ``(node_monitor_grace_period_s, pod_eviction_timeout_s)`` (K15).
    """

    def __init__(
        self,
        env: simpy.Environment,
        *,
        nodes: Sequence[Node],
        deployment: GatewayDeployment,
        recorder: Recorder,
        timers: tuple[float, float],
    ) -> None:
        self.env = env
        self.nodes = nodes
        self.deployment = deployment
        self._recorder = recorder
        self.grace_s, self.eviction_s = timers

    def node_down(self, node: int) -> None:
        """``node`` lost power: start its grace-period and eviction timers."""
        self.env.process(self._watch(node, self.nodes[node].power_gen))

    def _watch(self, node: int, gen: int) -> Generator[Any, Any, None]:
        host = self.nodes[node]
        yield self.env.timeout(self.grace_s)
        if host.power_gen != gen:
            return
        self._recorder.event(
            self.env.now,
            "node_not_ready",
            host.name,
            "node lifecycle controller marks the node and its pods not Ready (K15)",
        )
        for pod in self.deployment.on_node(node):
            self.deployment.endpoints.publish(pod, False)
        yield self.env.timeout(self.eviction_s)
        if host.power_gen != gen:
            return
        for name in [p.name for p in self.deployment.current.values() if p.node == node]:
            self.deployment.delete(name, None, "pod_evicted")
