"""EndpointSlices: the Ready gateway endpoints as kube-proxy and the MetalLB speakers see them.

Models the EndpointSlice controller and the watches of its consumers for the gateway's Service:
the control plane changes a pod's conditions (the kubelet's readiness probe, the node lifecycle
controller marking a dead node's pods, a deletion), and every watcher sees the new EndpointSlice
``endpoint_update_delay_s`` later. Then kube-proxy rewrites its rules (K14) and the speakers
re-run their election (M3, M4).

* An endpoint is *usable* while it is Ready, or Terminating and still serving (a gracefully
  deleted pod draining, K18): ``ready: false, serving: true, terminating: true``. kube-proxy
  falls back to such endpoints only when no Ready one is left (K12); MetalLB counts them as
  usable (M4); the healthCheckNodePort does not (K11).

* A dead node's pods stay Ready until the node lifecycle controller marks them (K15,
  :mod:`sim.net.node_lifecycle`), so for that long some new connections still go to them.
* The initial pods are taken as already propagated (the run starts from a settled cluster).

Left out: separate delays per watcher, EndpointSlice sharding, topology hints, a readiness
probe failing on a running pod.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import simpy

from sim.results import Recorder

if TYPE_CHECKING:
    from sim.net.node import GatewayPod

__all__ = ["EndpointSlices"]

Watcher = Callable[["EndpointSlices"], None]
"""A consumer of the slices, called with them after every change it sees."""


class EndpointSlices:
    """The Ready endpoints the watchers last saw, and the delay before they see a change.

    Args:
        env: the SimPy environment.
        delay_s: propagation delay to every watcher (``endpoint_update_delay_s``).
        recorder: where ``endpoints`` events go.
        node_names: node names, index order (for the events).
        watchers: called in order after every change they see (kube-proxy, then the speakers).
    """

    def __init__(
        self,
        env: simpy.Environment,
        *,
        delay_s: float,
        recorder: Recorder,
        node_names: Sequence[str],
        watchers: Sequence[Watcher] = (),
    ) -> None:
        self.env = env
        self.delay_s = delay_s
        self._recorder = recorder
        self._names = node_names
        self.watchers = list(watchers)
        self._notifying = False
        self.seen: dict[int, tuple[int, bool]] = {}
        """``pod_index -> (node_index, ready)`` of the usable endpoints the watchers see now;
        ``ready`` is ``False`` for a serving-terminating one."""

    def settle(self, pods: Iterable[GatewayPod]) -> None:
        """Take ``pods`` as Ready in the slices at time 0 (the caller primes the watchers)."""
        for pod in pods:
            self.seen[pod.index] = (pod.node, True)

    def ready(self) -> list[tuple[int, int]]:
        """``(pod_index, node_index)`` of the Ready endpoints."""
        return [(pod, node) for pod, (node, ready) in self.seen.items() if ready]

    def terminating(self) -> list[tuple[int, int]]:
        """``(pod_index, node_index)`` of the serving-terminating endpoints (K12, K18)."""
        return [(pod, node) for pod, (node, ready) in self.seen.items() if not ready]

    def publish(self, pod: GatewayPod, ready: bool, *, terminating: bool = False) -> None:
        """The control plane sets ``pod``'s conditions; watchers see them after the delay.

        ``terminating=True`` (with ``ready=False``) is a gracefully deleted pod that still
        serves (K18); ``ready=False`` alone takes the endpoint out of use.
        """
        if (pod.ready, pod.terminating) == (ready, terminating):
            return
        pod.ready, pod.terminating = ready, terminating
        self.env.process(self._propagate(pod, ready, terminating))

    def _propagate(
        self, pod: GatewayPod, ready: bool, terminating: bool
    ) -> Generator[Any, Any, None]:
        yield self.env.timeout(self.delay_s)
        if ready or terminating:
            self.seen[pod.index] = (pod.node, ready)
        else:
            self.seen.pop(pod.index, None)
        state = "Ready" if ready else "Terminating, serving (K18)" if terminating else "not Ready"
        count = sum(1 for _node, r in self.seen.values() if r)
        self._recorder.event(
            self.env.now,
            "endpoints",
            self._names[pod.node],
            f"{pod.name} ({pod.ip}) {state}; {count} Ready endpoint(s)",
        )
        if not self._notifying:
            # Changes that land at the same instant reach the watchers as one update, as the
            # EndpointSlice controller batches them: a pod that exits as its replacement turns
            # Ready is never seen as a moment without an endpoint.
            self._notifying = True
            self.env.process(self._notify())

    def _notify(self) -> Generator[Any, Any, None]:
        yield self.env.timeout(0)
        self._notifying = False
        for watcher in self.watchers:
            watcher(self)
