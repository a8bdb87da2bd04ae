"""HAProxy's health checker: one timer per server, each check a connection through the network.

Models ``check`` on HAProxy's server lines (H4, H5): every ``inter_s`` a check connection goes
from HAProxy to the server (the VIP, or a node's NodePort / healthCheckNodePort) through the same
elements as client traffic (the caller's ``probe``: ARP, the node, kube-proxy, the gateway pod's
TCP accept or kube-proxy's ``/healthz``), and its result feeds the server's health counter
(:meth:`sim.net.haproxy.HAProxy.record_check`). A change of state is an ``haproxy_check`` event.

* The first check of each server comes at a random offset within ``inter`` (HAProxy spreads the
  first checks of its servers).
* A check takes time (H10): one whose SYN gets no answer (a powered-off node, a DROP, a dead pod)
  fails only when its timeout expires (:attr:`sim.net.haproxy.HAProxy.check_timeout_s`: ``inter``
  when ``timeout check`` is unset, else ``min(timeout connect, inter)``), its SYN retransmitted
  once after 1 s within it (T1); a refused connection or an HTTP error status fails at once.
* The next check starts ``inter`` after the previous one *completed*, ``fastinter`` while the
  server is in between states and ``downinter`` while it is DOWN, when set
  (:meth:`sim.net.haproxy.HAProxy.check_interval`). Measured with HAProxy 2.6.12, ``inter 2s
  fall 3``: DOWN 11.1 s after a server was black-holed, not ``inter x fall`` = 6 s (H10).
* A TCP check passes once the connection is established, whatever the server then does with the
  bytes (H5): it cannot see a PROXY mismatch (E5, E6).

Left out: ``observe``, agent checks, ``timeout check`` as a read timeout (the modelled servers
answer at once or not at all), the turn-around between a check's end and the timer tick.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any, NamedTuple

import numpy as np
import simpy

from sim.net.haproxy import HAProxy
from sim.results import Recorder

__all__ = ["CheckResult", "HealthChecker", "Probe"]


class CheckResult(NamedTuple):
    """What one check connection met: passed or not, why, and whether its SYN went unanswered
    (then the check fails only at its timeout, H10)."""

    ok: bool
    detail: str
    no_answer: bool = False


Probe = Callable[[int, float], CheckResult]
"""``probe(server, u)``: one check connection to ``server`` now; ``u`` is a uniform draw for
kube-proxy's endpoint choice (K14)."""


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
        hap = self.haproxy
        node, where = self._servers[server]
        yield self.env.timeout(float(self._rng.uniform(0.0, hap.config.inter_s)))
        while True:
            start = self.env.now
            u = float(self._rng.random())
            result = self._probe(server, u)
            if result.no_answer:
                limit = hap.check_timeout_s
                if limit > 1.0:
                    # T1: the check's SYN is retransmitted after 1 s, within its timeout.
                    yield self.env.timeout(1.0)
                    result = self._probe(server, u)
                    if result.no_answer:
                        yield self.env.timeout(limit - 1.0)
                else:
                    yield self.env.timeout(limit)
            change = hap.record_check(result.ok, server)
            if change is not None:
                took = round((self.env.now - start) * 1000)
                self._recorder.event(
                    self.env.now,
                    "haproxy_check",
                    node,
                    f"{where} is {change}: {result.detail}, check duration {took} ms",
                )
            yield self.env.timeout(hap.check_interval(server))
