"""The scenario's failure events applied to the cluster: power, ``kubectl delete``, moves.

One SimPy process per :class:`~sim.NodeDown`, :class:`~sim.DeletePod` and :class:`~sim.MovePod`
of :attr:`sim.Scenario.failures`. What a power change sets off is wired here, in one place:

* power off: the node drops everything; connections in flight through it (as entry node, which
  holds their conntrack state, or as their pod's node) fail (K14); its pods stop but stay Ready
  (K15); its speaker stops answering memberlist probes (M8); the node lifecycle controller's
  timers start (K15);
* power on: the pods restart (not Ready until ``pod_start_s``), the speaker rejoins memberlist
  ``pod_start_s`` later;
* a pod deletion or move: :meth:`sim.net.deployment.GatewayDeployment.delete`.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import simpy

from sim.net.deployment import GatewayDeployment
from sim.net.memberlist import Memberlist
from sim.net.node_lifecycle import NodeLifecycleController
from sim.results import Recorder
from sim.scenario import DeletePod, MovePod, NodeDown

__all__ = ["FailureInjector"]


class FailureInjector:
    """Applies failure events and power changes to the elements that react to them.

    Args:
        env: the SimPy environment.
        recorder: where ``node_down``/``node_up`` events go, and whose in-flight connections
            break.
        deployment: the gateway pods; its ``nodes`` and ``live`` (indices of the powered nodes,
            sorted, kept up to date here in place) are the cluster's.
        memberlist: the speakers' failure detector.
        lifecycle: the node lifecycle controller.
        pod_start_s: how long a restarting speaker takes to rejoin.
    """

    def __init__(
        self,
        env: simpy.Environment,
        *,
        recorder: Recorder,
        deployment: GatewayDeployment,
        memberlist: Memberlist,
        lifecycle: NodeLifecycleController,
        pod_start_s: float,
    ) -> None:
        self.env = env
        self.nodes = deployment.nodes
        self.live = deployment.live
        self._recorder = recorder
        self.deployment = deployment
        self.memberlist = memberlist
        self.lifecycle = lifecycle
        self.pod_start_s = pod_start_s
        self._index = {n.name: n.index for n in self.nodes}

    def start(self, events: Sequence[NodeDown | DeletePod | MovePod]) -> None:
        """One process per event, in the scenario's order."""
        for event in events:
            self.env.process(self._apply(event))

    def _apply(self, event: NodeDown | DeletePod | MovePod) -> Generator[Any, Any, None]:
        yield self.env.timeout(event.at_s)
        if isinstance(event, NodeDown):
            self.power_off(self._index[event.node])
            if event.up_at_s is not None:
                yield self.env.timeout(event.up_at_s - event.at_s)
                self.power_on(self._index[event.node])
        elif isinstance(event, MovePod):
            self.deployment.delete(event.pod, self._index[event.to_node], "pod_moved")
        else:
            self.deployment.delete(event.pod, None, "pod_deleted")

    def power_off(self, node: int) -> None:
        """Power ``node`` off (K14, K15, M8)."""
        host = self.nodes[node]
        if not host.up:
            return
        host.up = False
        host.power_gen += 1
        self.live.remove(node)
        self._recorder.event(self.env.now, "node_down", host.name, "powered off")
        name = host.name
        self._recorder.break_in_flight(
            self.env.now,
            lambda r: r.entry_node == name or r.gateway_node == name,
            "timeout",
            "node_down_in_flight",
            why=(name, "powered off while in flight: the conntrack entry (K14) is gone"),
        )
        self.deployment.node_stopped(node)
        self.memberlist.speaker_died(node)
        self.lifecycle.node_down(node)

    def power_on(self, node: int) -> None:
        """Power ``node`` on: pods restart, the speaker rejoins after ``pod_start_s``."""
        host = self.nodes[node]
        if host.up:
            return
        host.up = True
        host.power_gen += 1
        self.live.append(node)
        self.live.sort()
        self._recorder.event(self.env.now, "node_up", host.name, "powered on")
        self.deployment.node_started(node)
        self.env.process(self._speaker_start(node, host.power_gen))

    def _speaker_start(self, node: int, gen: int) -> Generator[Any, Any, None]:
        yield self.env.timeout(self.pod_start_s)
        if self.nodes[node].power_gen == gen:
            self.memberlist.speaker_started(node)
