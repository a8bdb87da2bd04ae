"""EndpointSlices: the Ready gateway endpoints as kube-proxy and the MetalLB speakers see them.

Models the EndpointSlice controller and the watches of its consumers for the gateway's Service:
the control plane changes a pod's Ready condition (the kubelet's readiness probe, the node
lifecycle controller marking a dead node's pods, a deletion), and every watcher sees the new
EndpointSlice ``endpoint_update_delay_s`` later. Then kube-proxy rewrites its rules (K14) and
the speakers re-run their election (M3, M4).

* A dead node's pods stay Ready until the node lifecycle controller marks them (K15,
  :mod:`sim.net.node_lifecycle`), so for that long some new connections still go to them.
* The initial pods are taken as already propagated (the run starts from a settled cluster).

Left out: separate delays per watcher, EndpointSlice sharding, the ``serving`` and
``terminating`` conditions (K12, K18), topology hints.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import simpy

from sim.results import Recorder

if TYPE_CHECKING:
    from sim.net.node import GatewayPod

__all__ = ["EndpointSlices"]

Watcher = Callable[[Iterable[tuple[int, int]]], None]
"""A consumer of the slices: called with ``(pod_index, node_index)`` of every Ready endpoint."""


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
        self.seen: dict[int, int] = {}
        """``pod_index -> node_index`` of the Ready endpoints the watchers see now."""

    def settle(self, pods: Iterable[GatewayPod]) -> None:
        """Take ``pods`` as Ready in the slices at time 0 (the caller primes the watchers)."""
        for pod in pods:
            self.seen[pod.index] = pod.node

    def publish(self, pod: GatewayPod, ready: bool) -> None:
        """The control plane sets ``pod``'s Ready condition; watchers see it after the delay."""
        if pod.ready == ready:
            return
        pod.ready = ready
        self.env.process(self._propagate(pod, ready))

    def _propagate(self, pod: GatewayPod, ready: bool) -> Generator[Any, Any, None]:
        yield self.env.timeout(self.delay_s)
        if ready:
            self.seen[pod.index] = pod.node
        else:
            self.seen.pop(pod.index, None)
        state = "Ready" if ready else "not Ready"
        self._recorder.event(
            self.env.now,
            "endpoints",
            self._names[pod.node],
            f"{pod.name} ({pod.ip}) {state}; {len(self.seen)} Ready endpoint(s)",
        )
        self._notify()

    def _notify(self) -> None:
        for watcher in self.watchers:
            watcher(self.seen.items())
