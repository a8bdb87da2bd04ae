"""HAProxy's health checker: one timer per server, each check a connection through the network.

Models ``check`` on HAProxy's server lines (H4, H5): every ``inter_s`` a check connection goes
from HAProxy to the server (the VIP, or a node's NodePort / healthCheckNodePort) through the same
elements as client traffic (the caller's ``probe``: ARP, the node, kube-proxy, the gateway pod's
TCP accept or kube-proxy's ``/healthz``), and its result feeds the server's health counter
(:meth:`sim.net.haproxy.HAProxy.record_check`). A change of state is an ``haproxy_check`` event.

* The first check of each server comes at a random offset within ``inter`` (HAProxy spreads the
  first checks of its servers), then one every ``inter``.
* A TCP check passes once the connection is established, whatever the server then does with the
  bytes (H5): it cannot see a PROXY mismatch (E5, E6).

Left out: the time a check takes (timeouts, H10), ``fastinter``/``downinter``, ``observe``,
agent checks.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np
import simpy

from sim.net.haproxy import HAProxy
from sim.results import Recorder

__all__ = ["HealthChecker", "Probe"]

Probe = Callable[[int, float], tuple[bool, str]]
"""``probe(server, u) -> (ok, detail)``: one check connection to ``server``; ``u`` is a uniform
draw for kube-proxy's endpoint choice (K14)."""


class HealthChecker:
    """Runs HAProxy's checks of every server of its backend.

    Args:
        env: the SimPy environment.
        haproxy: the HAProxy whose servers are checked.
        probe: one check connection through the network (:data:`Probe`).
        rng: the checks' random stream (first-check offsets, endpoint draws).
        recorder: where ``haproxy_check`` events go.
        servers: for each server, ``(node, text)``: the event's node column and how the event
            names the server.
    """

    def __init__(
        self,
        env: simpy.Environment,
        haproxy: HAProxy,
        *,
        probe: Probe,
        rng: np.random.Generator,
        recorder: Recorder,
        servers: Sequence[tuple[str, str]],
    ) -> None:
        self.env = env
        self.haproxy = haproxy
        self._probe = probe
        self._rng = rng
        self._recorder = recorder
        self._servers = servers

    def start(self) -> None:
        """Start one check timer per server."""
        for server in range(len(self._servers)):
            self.env.process(self._checks(server))

    def _checks(self, server: int) -> Generator[Any, Any, None]:
        inter = self.haproxy.config.inter_s
        node, where = self._servers[server]
        yield self.env.timeout(float(self._rng.uniform(0.0, inter)))
        while True:
            ok, detail = self._probe(server, float(self._rng.random()))
            change = self.haproxy.record_check(ok, server)
            if change is not None:
                self._recorder.event(
                    self.env.now, "haproxy_check", node, f"{where} is {change}: {detail}"
                )
            yield self.env.timeout(inter)
