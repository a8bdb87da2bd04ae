"""hashicorp/memberlist as MetalLB's speakers use it: how long until a dead node is noticed.

Models the failure detector of memberlist's SWIM protocol with ``DefaultLANConfig`` (M8), as a
timing model rather than message by message:

* every live member probes one other member per ``probe_interval_s``, walking a shuffled list,
  so a given member is probed by each other member once every ``N - 1`` intervals; the phases are
  independent and uniform;
* a probe of a dead node gets no ack within ``probe_timeout_s``; memberlist then sends indirect
  probes and waits for them until the end of the probe interval, so the prober marks the node
  *suspect* ``probe_interval_s`` after the probe started;
* the suspicion timer (memberlist ``suspicionTimeout``/``remainingSuspicionTime``):
  ``min = suspicion_mult * max(1, log10 N) * probe_interval_s``, ``max = suspicion_max_timeout_mult
  * min``; it starts at ``max`` and decays towards ``min`` as ``k = suspicion_mult - 2``
  independent confirmations (other members' own failed probes) arrive; when ``N - 2 < k``
  (three nodes or fewer) ``k = 0`` and ``min`` applies flat, 4 s by default (M8, M12);
* when the timer fires the node is declared dead; MetalLB's speakers see the NodeLeave event and
  force-resync every service (M8), i.e. re-run the L2 election (:mod:`sim.net.metallb`).

A speaker that starts (again) joins at once: its push/pull with a live member makes it alive in
everyone's view.

Left out: gossip latency (the dead and alive messages reach everyone within a few 200 ms gossip
rounds, M8), Lifeguard's awareness scaling of probe timeouts, packet loss and false suspicion of
live nodes, graceful leave (a deleted speaker pod leaves at once, M12), network partitions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy

from sim.results import Recorder


def suspicion_timeouts(
    members: int, *, probe_interval_s: float, suspicion_mult: int, max_timeout_mult: int
) -> tuple[float, float, int]:
    """``(min_s, max_s, k)`` of memberlist's suspicion timer in a cluster of ``members`` (M8).

    ``k`` is the number of independent confirmations that shrink the timer from ``max_s`` to
    ``min_s``; it is 0 (and the timer is ``min_s`` flat) when ``members - 2 < suspicion_mult - 2``.
    """
    node_scale = max(1.0, math.log10(max(1, members)))
    min_s = suspicion_mult * node_scale * probe_interval_s
    max_s = max_timeout_mult * min_s
    k = suspicion_mult - 2
    if members - 2 < k or k < 1:
        k = 0
    return min_s, max_s, k


def remaining_suspicion_s(confirmations: int, k: int, min_s: float, max_s: float) -> float:
    """Total suspicion timeout after ``confirmations`` of ``k`` (memberlist's formula, M8)."""
    if k < 1:
        return min_s
    frac = math.log(confirmations + 1.0) / math.log(k + 1.0)
    return max(min_s, max_s - frac * (max_s - min_s))


def dead_after_s(suspect_times: list[float], k: int, min_s: float, max_s: float) -> float:
    """When the first suspecter declares the node dead, relative to the failure.

    ``suspect_times`` are the moments (sorted) at which members' own probes failed; the first
    one starts the timer, each later one is a confirmation, and the timer fires as soon as the
    time since the first suspicion exceeds the remaining timeout for the confirmations so far.
    """
    start = suspect_times[0]
    confirmations = 0
    while True:
        deadline = start + remaining_suspicion_s(confirmations, k, min_s, max_s)
        nxt = 1 + confirmations
        if confirmations >= k or nxt >= len(suspect_times) or suspect_times[nxt] >= deadline:
            return deadline
        confirmations += 1
        # A confirmation that arrives after the shrunken deadline fires the timer at once.
        shrunk = start + remaining_suspicion_s(confirmations, k, min_s, max_s)
        if shrunk <= suspect_times[nxt]:
            return suspect_times[nxt]


class Memberlist:
    """The speakers' shared membership view: which nodes run a live speaker.

    Args:
        env: the SimPy environment.
        nodes: number of nodes; all start as members.
        timing: ``(probe_interval_s, suspicion_mult, suspicion_max_timeout_mult)``.
        rng: this element's random stream (probe phases).
        recorder: where ``memberlist_suspect``/``memberlist_dead``/``memberlist_join`` go.
        node_names: names for the events.
        on_change: called after every membership change (MetalLB's ForceSync, M8).
    """

    def __init__(
        self,
        env: simpy.Environment,
        *,
        nodes: int,
        timing: tuple[float, int, int],
        rng: np.random.Generator,
        recorder: Recorder,
        node_names: list[str],
        on_change: Callable[[], None],
    ) -> None:
        self.env = env
        self.members: set[int] = set(range(nodes))
        self._interval_s, self._mult, self._max_mult = timing
        self._rng = rng
        self._recorder = recorder
        self._names = node_names
        self._on_change = on_change
        # Bumped whenever a node's speaker starts, so a detection that began before cancels.
        self._incarnation = [0] * nodes
        # Speakers that died and have not restarted: still members until detected, but they
        # probe nobody (M8), so they are no probers of another dead node.
        self._silent: set[int] = set()

    def speaker_died(self, node: int) -> None:
        """The speaker on ``node`` stopped answering (power off); start detecting it."""
        self._silent.add(node)
        if node in self.members:
            self.env.process(self._detect(node, self._incarnation[node]))

    def speaker_started(self, node: int) -> None:
        """The speaker on ``node`` started and joined; it is a member again at once."""
        self._incarnation[node] += 1
        self._silent.discard(node)
        if node not in self.members:
            self.members.add(node)
            self._recorder.event(self.env.now, "memberlist_join", self._names[node], "alive")
            self._on_change()

    def detection_delays(self, node: int) -> tuple[float, float]:
        """Draw ``(suspect_after_s, dead_after_s)`` for a failure of ``node`` now."""
        n = len(self.members)
        # Only members whose speaker runs probe (M8); the dead node is among the silent ones.
        probers = len(self.members - self._silent)
        if probers < 1:
            return math.inf, math.inf
        # Each other member reaches the dead node in its round-robin within N-1 intervals.
        cycle_s = max(1, n - 1) * self._interval_s
        phases = np.sort(self._rng.uniform(0.0, cycle_s, probers))
        suspects = [float(p) + self._interval_s for p in phases]
        min_s, max_s, k = suspicion_timeouts(
            n,
            probe_interval_s=self._interval_s,
            suspicion_mult=self._mult,
            max_timeout_mult=self._max_mult,
        )
        return suspects[0], dead_after_s(suspects, k, min_s, max_s)

    def _detect(self, node: int, incarnation: int) -> Generator[Any, Any, None]:
        suspect_s, dead_s = self.detection_delays(node)
        if math.isinf(dead_s):
            return  # nobody left to notice
        yield self.env.timeout(suspect_s)
        if self._incarnation[node] != incarnation:
            return
        self._recorder.event(
            self.env.now,
            "memberlist_suspect",
            self._names[node],
            "probe and indirect probes failed",
        )
        yield self.env.timeout(dead_s - suspect_s)
        if self._incarnation[node] != incarnation or node not in self.members:
            return
        self.members.discard(node)
        self._recorder.event(
            self.env.now,
            "memberlist_dead",
            self._names[node],
            f"suspicion timeout expired after {dead_s - suspect_s:.2f} s",
        )
        self._on_change()
