"""The L2 announcer of the lab: MetalLB's election, the VIP on the winner, gratuitous ARPs.

Real: ARP. The winner gets the VIP as a /32 on its NIC, so the winner's kernel, and only its
kernel, answers ARP for it; on a takeover the new winner sends gratuitous ARPs with Debian's
``arping -U`` immediately, then every ``garp_interval_s`` until ``garp_duration_s`` (M9), and
the clients' and HAProxy's real ARP caches follow them (M10; Linux ignores a second update
within its 1 s ``locktime``, which is why MetalLB repeats them).

Stand-in: the election and the failure detection. The election is MetalLB's (M3, M5): the
candidates sorted by ``sha256(node + "#" + VIP)`` (:func:`sim.net.metallb.hash_order`), only
nodes with a Ready local endpoint under ``Local``; or the naive lease holder (M1, M16). There
is no memberlist: after a node fails the announcer waits the detection time memberlist would
take with the scenario's timers, drawn as the simulator draws it (probe phases uniform over a
probe cycle, then the suspicion timeout, :func:`sim.net.memberlist.suspicion_timeouts` and
:func:`~sim.net.memberlist.dead_after_s`, M8, M12).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from sim.addresses import VIP
from sim.lab.netns import LabState, which
from sim.lab.topology import NIC, LabTopology
from sim.net.memberlist import dead_after_s, suspicion_timeouts
from sim.net.metallb import hash_order

__all__ = ["L2Announcer", "detection_delay_s"]

_ARPING_S = 0.1


def detection_delay_s(scenario: Any, alive_after: int, rng: np.random.Generator) -> float:
    """How long memberlist takes to declare a powered-off node dead (M8, M12).

    ``alive_after`` is the number of live speakers that probe it. Same model as
    :meth:`sim.net.memberlist.Memberlist.detection_delays`.
    """
    members = scenario.nodes
    if alive_after < 1:
        return float("inf")
    interval = scenario.probe_interval_s
    cycle_s = max(1, members - 1) * interval
    suspects = [float(p) + interval for p in np.sort(rng.uniform(0.0, cycle_s, alive_after))]
    min_s, max_s, k = suspicion_timeouts(
        members,
        probe_interval_s=interval,
        suspicion_mult=scenario.suspicion_mult,
        max_timeout_mult=scenario.suspicion_max_timeout_mult,
    )
    return dead_after_s(suspects, k, min_s, max_s)


class L2Announcer:
    """Who holds the VIP, and the gratuitous ARPs on every change."""

    def __init__(
        self,
        scenario: Any,
        topology: LabTopology,
        state: LabState,
        local_ready: Callable[[str], int],
        events: list[dict[str, Any]],
    ) -> None:
        self.scenario = scenario
        self.topology = topology
        self.state = state
        self.local_ready = local_ready
        self.events = events
        self.names = list(scenario.node_names)
        self.order = hash_order(self.names, VIP)
        self.members = set(range(scenario.nodes))
        self.holder: int | None = None
        self._spam: asyncio.Task[None] | None = None

    def winner(self) -> int | None:
        """The node that should announce now (same rules as :class:`sim.net.metallb.L2Speaker`)."""
        if self.scenario.announcer == "naive":
            if self.holder is not None and self.holder in self.members:
                return self.holder
            return min(self.members) if self.members else None
        has = [self.local_ready(n) > 0 for n in self.names]
        if not any(has):
            return None  # M3: nothing announced without a usable endpoint
        local = self.scenario.external_traffic_policy == "Local"
        for node in self.order:
            if node in self.members and (has[node] or not local):
                return node
        return None

    def start(self) -> None:
        """The initial announcement (settled: no GARP needed, the caches resolve on demand)."""
        self.holder = self.winner()
        if self.holder is not None:
            self.topology.set_vip(self.holder, VIP, True)
        self._event("elected", self.holder, "initial")

    async def elect(self) -> None:
        """Re-run the election; move the VIP and start the GARP schedule on a change."""
        new = self.winner()
        old = self.holder
        if new == old:
            return
        if old is not None and old in self.members:
            await asyncio.to_thread(self.topology.set_vip, old, VIP, False)
        self.holder = new
        if new is None:
            self._event("withdrawn", old, "nobody announces the VIP")
            return
        await asyncio.to_thread(self.topology.set_vip, new, VIP, True)
        self._event("elected", new, f"takes over from {self._name(old)}")
        if self._spam is not None:
            self._spam.cancel()
        self._spam = asyncio.get_running_loop().create_task(self._garp(new))

    async def _garp(self, node: int) -> None:
        # M9: at once, then every garp_interval_s until garp_duration_s after the takeover.
        sc = self.scenario
        count = int(sc.garp_duration_s // sc.garp_interval_s) + 1
        for n in range(min(count, 50)):
            if self.holder != node:
                return
            self._event("garp", node, f"#{n + 1}")
            await self._arping(node)
            await asyncio.sleep(max(0.0, sc.garp_interval_s - _ARPING_S))

    async def _arping(self, node: int) -> None:
        argv = [which("arping") or "arping", "-q", "-U", "-c", "1", "-I", NIC, "-s", VIP, VIP]
        proc = self.state.spawn(self.topology.node_ns(node), argv)
        # arping sends at once, then waits a second for replies nobody sends to a GARP: give
        # it _ARPING_S to send, then stop it by its PID.
        await asyncio.sleep(_ARPING_S)
        self.state.stop(proc)

    def node_down(self, node: int) -> None:
        """A node lost power: its speaker is silent (detection follows in :meth:`detected`)."""
        if self.holder == node and self._spam is not None:
            self._spam.cancel()

    async def detected(self, node: int) -> None:
        """memberlist declared ``node`` dead: it leaves the candidates; re-elect."""
        self.members.discard(node)
        self._event("memberlist_dead", node, "detection time elapsed")
        if self.holder == node:
            self.holder = None  # its VIP stays on the dead node's NIC, unreachable
        await self.elect()

    async def joined(self, node: int) -> None:
        """``node`` is back (its speaker rejoins at once, M8); re-elect (M5 take-back)."""
        self.members.add(node)
        self._event("memberlist_join", node, "alive")
        await self.elect()

    async def stop(self) -> None:
        if self._spam is not None:
            self._spam.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._spam

    def _name(self, node: int | None) -> str:
        return "nobody" if node is None else self.names[node]

    def _event(self, kind: str, node: int | None, detail: str) -> None:
        self.events.append(
            {"t": time.monotonic(), "kind": kind, "node": self._name(node), "detail": detail}
        )
