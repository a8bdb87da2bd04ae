"""From what the files say to a :class:`~sim.Scenario`: every field inferred or assumed.

Each field comes either from a place in the files (an :class:`~sim.config.findings.Inferred`
with its ``file:line``) or from an assumption with its reason (an
:class:`~sim.config.findings.Assumed`): the pod placement when no affinity pins it, the announcer
when no MetalLB resource is given, the traffic (never in configuration files). The user's own
names and addresses stand for the model's (``node-k``, the VIP ``10.0.0.100``, HAProxy
``10.0.0.5``); :attr:`Inference.addresses` lists the correspondence.

Facts relied on: K1-K3 and K10 (Service defaults), M3 and M18 (announcer), I1 and I4
(``numTrustedProxies`` default 0), E4 (15 s), K18 (5 s drain), C1 (encapsulation), H5 and H10
(HAProxy defaults), section E (HAProxy to NodePorts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sim.addresses import node_ip
from sim.config.cluster import HEALTH_CHECK_NODE_PORT, NODE_PORT, VIP, VIP_PORT
from sim.config.findings import Assumed, ExplainError, Inferred, Where
from sim.config.haproxy_model import HAProxySetup
from sim.config.infer_haproxy import infer_haproxy, user_vip
from sim.config.k8s_model import ClusterView

__all__ = ["Inference", "infer"]

_NODE_NAME = re.compile(r"^node-(\d+)$")


@dataclass
class Inference:
    """The implied scenario's fields, where each came from, and the address correspondence."""

    fields: dict[str, Any] = field(default_factory=dict)
    inferred: list[Inferred] = field(default_factory=list)
    assumed: list[Assumed] = field(default_factory=list)
    addresses: list[dict[str, str]] = field(default_factory=list)
    view: ClusterView = field(default_factory=ClusterView)
    haproxy: HAProxySetup | None = None
    backend_where: Where | None = None
    node_names: dict[str, str] = field(default_factory=dict)

    def found(self, name: str, value: Any, where: Where, why: str) -> None:
        """Set field ``name`` from the files (recorded as :class:`Inferred`)."""
        self.fields[name] = value
        self.inferred.append(Inferred(name, value, where.file, where.line, why))

    def assume(self, name: str, value: Any, reason: str) -> None:
        """Set field ``name`` by assumption (recorded as :class:`Assumed`)."""
        self.fields[name] = value
        self.assumed.append(Assumed(name, value, reason))

    def address(self, what: str, model: str, yours: str) -> None:
        """Record that the user's address ``yours`` stands for the model's ``model``."""
        self.addresses.append({"what": what, "model": model, "yours": yours})


def _nodes(inf: Inference, backend: str | None) -> None:
    view, setup = inf.view, inf.haproxy
    names: list[str] = []
    if view.nodes:
        names = [name for name, _ip, _w in view.nodes]
        inf.found("nodes", len(names), view.nodes[0][2], "the Node objects")
        for i, (name, ip, _w) in enumerate(view.nodes):
            inf.address(f"node {name}", node_ip(i), ip or "?")
    elif backend == "nodeports" and setup is not None:
        names = [s.name for s in setup.servers for _ in range(s.count)]
        where = setup.servers[0].where
        inf.found("nodes", len(names), Where(where.file, where.line), "one server per node")
        for i, server in enumerate(setup.servers):
            inf.address(f"node of server {server.name}", node_ip(i), server.host)
    placed = list(inf.view.placement.value) if inf.view.placement else []
    for name in placed:
        if name not in names and not _NODE_NAME.match(name):
            names.append(name)
    if not view.nodes and backend != "nodeports":
        numbered = [int(m[1]) for n in placed if (m := _NODE_NAME.match(n))]
        count = max([3, len(names), *numbered])
        inf.assume(
            "nodes",
            count,
            "no Node objects in the files: the seed's three nodes (or "
            "as many as the placement names)",
        )
    count = inf.fields["nodes"]
    model = [f"node-{i + 1}" for i in range(count)]
    for i, name in enumerate(names[:count]):
        inf.node_names[name] = model[i]
    renamed = {k: v for k, v in inf.node_names.items() if k != v}
    if renamed and not view.nodes and backend != "nodeports":
        pairs = ", ".join(f"{k} as {v}" for k, v in renamed.items())
        inf.assumed.append(
            Assumed(
                "node names", pairs, "no Node objects: your nodes in the order the files name them"
            )
        )
    for name in placed:
        inf.node_names.setdefault(name, name)


def _placement(inf: Inference) -> None:
    view = inf.view
    replicas = view.replicas.value if view.replicas else None
    count = inf.fields["nodes"]
    if view.placement is not None:
        nodes = [inf.node_names.get(n, n) for n in view.placement.value]
        unknown = [n for n in nodes if not _NODE_NAME.match(n) or int(n[5:]) > count]
        if unknown:
            w = view.placement.where
            raise ExplainError(w.file, w.line, f"placement on {unknown[0]!r}: not a known node")
        k = len(nodes) if replicas is None else replicas
        placed = tuple(nodes[i % len(nodes)] for i in range(k)) if nodes else ()
        why = "node affinity (+ one-per-node anti-affinity): replica i on the i-th listed node"
        if not (view.pinned and k == len(nodes)):
            why = "node affinity; the scheduler spreads replicas over the listed nodes, in order"
        inf.found("gateway_nodes", placed, view.placement.where, why)
        return
    k = 2 if replicas is None else replicas
    order = [f"node-{(i + 1) % count + 1}" for i in range(count)]  # node-2, node-3, ..., node-1
    placed = tuple(order[i % count] for i in range(k))
    reason = (
        "no gateway Deployment in the files: the seed's two replicas"
        if replicas is None
        else f"{k} replica(s) without node affinity: spread from node-2 on, as in the seed"
    )
    if k < count:
        reason += " (node-1 holds none)"
    inf.assume("gateway_nodes", placed, reason)


def _service(inf: Inference) -> None:
    view = inf.view
    if view.policy is not None and view.service is not None:
        explicit = view.service.get("spec", "externalTrafficPolicy") is not None
        why = "spec.externalTrafficPolicy" if explicit else "not set: the API default (K3)"
        inf.found(
            "external_traffic_policy",
            view.policy.value,
            view.policy.where,
            f"{view.service.label} {why}",
        )
    else:
        inf.assume(
            "external_traffic_policy",
            "Cluster",
            "no LoadBalancer Service in the files: the API default",
        )
    vip = user_vip(view)
    if vip is not None:
        port = view.service_port.value if view.service_port else "?"
        inf.address("VIP", f"{VIP}:{VIP_PORT}", f"{vip}:{port}")
    for what, loc, model in (
        ("NodePort", view.node_port, NODE_PORT),
        ("healthCheckNodePort", view.health_port, HEALTH_CHECK_NODE_PORT),
    ):
        if loc is not None:
            inf.address(what, str(model), str(loc.value))


_TRAFFIC = (
    "clients",
    "rate_per_s",
    "duration_s",
    "seed",
    "in_cluster_share",
    "client_xff",
    "client_target",
)
_TIMERS = "memberlist (M8), gratuitous ARP (M9), node monitor and eviction (K15), client timeout"


def _defaults(inf: Inference) -> None:
    import dataclasses

    from sim.scenario import Scenario

    defaults = {f.name: f.default for f in dataclasses.fields(Scenario)}
    for name in _TRAFFIC:
        if name not in inf.fields:
            inf.assumed.append(
                Assumed(
                    name,
                    defaults[name],
                    "configuration files do not say: the Scenario default (change it with --set)",
                )
            )
    inf.assumed.append(
        Assumed(
            "timers",
            "Scenario defaults",
            f"{_TIMERS}, pod start and "
            "propagation delays are not in these files (change with --set)",
        )
    )


def infer(view: ClusterView, setup: HAProxySetup | None) -> Inference:
    """The scenario fields the files imply (see the module docstring)."""
    inf = Inference(view=view, haproxy=setup)
    _service(inf)
    backend = infer_haproxy(inf)
    svc = view.service
    if setup is None and svc is not None and svc.get("spec", "type") == "NodePort":
        where = Where(svc.file, svc.line("spec", "type"))
        inf.found(
            "client_target",
            "nodeport",
            where,
            f"{svc.label} is type NodePort and no "
            "HAProxy is in front: clients connect to the nodes' NodePort (K7)",
        )
    _nodes(inf, backend)
    _placement(inf)
    _gateway(inf)
    _defaults(inf)
    return inf


def _gateway(inf: Inference) -> None:
    view, filters = inf.view, inf.view.filters
    if filters.proxy_protocol is not None:
        how = "EnvoyFilter listener_filters" if filters.envoyfilter else "gatewayTopology"
        inf.found("gateway_proxy_protocol", True, filters.proxy_protocol, how + " (I2)")
    else:
        inf.assume(
            "gateway_proxy_protocol",
            False,
            "no EnvoyFilter with proxy_protocol and no "
            "gatewayTopology.proxyProtocol that reach the gateway",
        )
    for name, loc, default, why, found_why in (
        (
            "num_trusted_proxies",
            filters.trusted,
            0,
            "Istio's default numTrustedProxies (I1)",
            "gatewayTopology.numTrustedProxies (I4)",
        ),
        (
            "termination_drain_s",
            filters.drain,
            5.0,
            "Istio's default terminationDrainDuration (K18)",
            "terminationDrainDuration (K18)",
        ),
        (
            "listener_filters_timeout_s",
            filters.timeout,
            15.0,
            "Envoy's default (E4)",
            "EnvoyFilter listener_filters_timeout (E4)",
        ),
        (
            "encapsulation",
            view.encapsulation,
            "VXLAN",
            "no Calico IPPool or Installation: "
            "VXLAN (Always), where Cluster's SNAT shows the 172.x tunnel IP (C1)",
            "Calico's encapsulation (C1, C2)",
        ),
    ):
        if loc is not None:
            inf.found(name, loc.value, loc.where, found_why)
        else:
            inf.assume(name, default, why)
    if view.announcer is not None:
        value, reason = view.announcer.value
        inf.found("announcer", value, view.announcer.where, reason)
    else:
        inf.assume(
            "announcer",
            "metallb",
            "no MetalLB or Cilium L2 resource: MetalLB >= 0.13 (endpoint-aware election, M3)",
        )
