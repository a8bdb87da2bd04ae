"""kube-proxy in the lab: the generated ``iptables-save.txt`` applied per node, and its
healthCheckNodePort server.

Real: the rules. For every node the lab renders exactly what ``srcip-lab config`` writes to
``iptables-save.txt`` (``sim.config.iptables_save``, issue 10) and loads it with
``iptables-restore`` inside the node's namespace, so the kernel's netfilter does the DNAT, the
``KUBE-MARK-MASQ`` mark, ``MASQUERADE --random-fully`` and the DROP/REJECT verdicts (K1, K2,
K4, K6, K14, K17). When the endpoints change (a node lifecycle controller marking pods not
Ready, K15) every node's rules are rendered again and restored, as kube-proxy's sync loop does.

Stand-in: the healthCheckNodePort server (K10, K11) is a small asyncio HTTP server per node
answering ``200`` with ``localEndpoints`` > 0 Ready local endpoints, else ``503``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from sim.addresses import HEALTH_CHECK_NODE_PORT
from sim.lab.http1 import Reply, Request, serve_http
from sim.lab.netns import ns_run, ns_socket

__all__ = ["HealthCheckServer", "KubeProxy", "config_module"]


def config_module() -> ModuleType:
    """``sim.config``: what ``srcip-lab config`` writes (issue 10), the one source of the rules
    and of ``haproxy.cfg`` the lab applies."""
    import sim.config

    return sim.config


class KubeProxy:
    """The rules of every node, rendered from the scenario and the current endpoints."""

    def __init__(self, scenario: Any, namespaces: Sequence[str]) -> None:
        self.scenario = scenario
        self.namespaces = list(namespaces)
        self.config = config_module()
        self.endpoints: list[Any] = list(self.config.initial_endpoints(scenario))
        self.rendered: dict[str, str] = {}
        self.syncs = 0

    def sync(self, down: set[int] | None = None) -> None:
        """Render and restore every node's rules (skipping powered-off nodes in ``down``)."""
        self.syncs += 1
        pairs = zip(self.scenario.node_names, self.namespaces, strict=True)
        for i, (name, ns) in enumerate(pairs):
            if down and i in down:
                continue
            text = self.config.iptables_save(self.scenario, name, self.endpoints)
            self.rendered[name] = text
            ns_run(ns, ["iptables-restore"], stdin=text)

    def set_ready(self, node: str, ready: bool, down: set[int] | None = None) -> None:
        """Mark every endpoint on ``node`` Ready or not (K15), then sync all nodes."""
        self.endpoints = [
            dataclasses.replace(e, ready=ready, serving=ready) if e.node == node else e
            for e in self.endpoints
        ]
        self.sync(down)

    def local_ready(self, node: str) -> int:
        """Number of Ready endpoints on ``node`` (what ``/healthz`` reports, K11)."""
        return sum(1 for e in self.endpoints if e.node == node and e.ready)


class HealthCheckServer:
    """kube-proxy's healthCheckNodePort server on one node (stand-in, K10, K11)."""

    def __init__(self, kube_proxy: KubeProxy, node: str, namespace: str) -> None:
        self.kube_proxy = kube_proxy
        self.node = node
        self.namespace = namespace
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        sock = ns_socket(self.namespace)
        sock.setsockopt(1, 2, 1)
        sock.bind(("0.0.0.0", HEALTH_CHECK_NODE_PORT))
        sock.listen(64)
        self.server = await asyncio.start_server(self._handle, sock=sock)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def answer(request: Request, body: bytes) -> Reply:
            local = self.kube_proxy.local_ready(self.node)
            doc = {
                "service": {"namespace": "istio-system", "name": "istio-ingressgateway"},
                "localEndpoints": local,
                "serviceProxyHealthy": True,
            }
            return Reply(
                200 if local else 503,
                json.dumps(doc).encode(),
                (("content-type", "application/json"),),
            )

        try:
            await serve_http(reader, writer, answer, timeout_s=5.0, max_requests=5)
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
