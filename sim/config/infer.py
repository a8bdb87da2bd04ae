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

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from sim.addresses import HAPROXY_IP, HAPROXY_PORT, node_ip
from sim.config.cluster import HEALTH_CHECK_NODE_PORT, NODE_PORT, VIP, VIP_PORT
from sim.config.findings import Assumed, ExplainError, Inferred, Where
from sim.config.haproxy_model import HAProxySetup, modelled_v2_options, parse_time
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
        self.fields[name] = value
        self.inferred.append(Inferred(name, value, where.file, where.line, why))

    def assume(self, name: str, value: Any, reason: str) -> None:
        self.fields[name] = value
        self.assumed.append(Assumed(name, value, reason))

    def address(self, what: str, model: str, yours: str) -> None:
        self.addresses.append({"what": what, "model": model, "yours": yours})


def _first_ip(text: str) -> str:
    first = text.split("-")[0].strip()
    try:
        net = ipaddress.ip_network(first, strict=False)
    except ValueError:
        return first
    return str(net.network_address)


def _user_vip(view: ClusterView) -> str | None:
    if view.vip is not None:
        return str(view.vip.value)
    return _first_ip(str(view.pool_vip.value)) if view.pool_vip is not None else None


def _backend(inf: Inference, setup: HAProxySetup) -> str:
    view = inf.view
    vip, port = _user_vip(view), view.service_port.value if view.service_port else None
    node_port = view.node_port.value if view.node_port else None
    node_ips = {ip for _name, ip, _w in view.nodes if ip}
    kinds = set()
    bind_port = setup.bind[1] if setup.bind else None
    for server in setup.servers:
        target = server.port or bind_port
        if vip is not None and server.host == vip and target in (port, *view.service_ports):
            kinds.add("vip")
        elif target in (node_port, *view.node_ports) or server.host in node_ips:
            kinds.add("nodeports")
        elif view.service is None and vip is None:
            kinds.add("vip" if len(setup.servers) == 1 and server.count == 1 else "nodeports")
        else:
            raise ExplainError(
                server.where.file,
                server.where.line,
                f"server {server.name} {server.host}:{target} is neither the Service's VIP "
                f"({vip}:{port}) nor its NodePort ({node_port}) on a node",
            )
    if len(kinds) > 1:
        first = setup.servers[0].where
        raise ExplainError(
            first.file, first.line, "a backend mixing the VIP and NodePorts is not modelled"
        )
    return kinds.pop()


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
    inf.assume("gateway_nodes", placed, reason + " (node-1 holds none)")


def _line(directive: Any, fallback: Where) -> Where:
    return Where(directive.file, directive.line) if directive is not None else fallback


def _haproxy_fields(inf: Inference, setup: HAProxySetup, backend: str) -> dict[str, Any]:
    first = setup.first
    for server in setup.servers[1:]:
        for flag in ("check", "send-proxy", "send-proxy-v2", "send-proxy-v2-ssl"):
            if (flag in server.options) != (flag in first.options):
                raise ExplainError(
                    server.where.file,
                    server.where.line,
                    f"servers differ in {flag!r}: srcip-lab models one setting for every server",
                )
    w = Where(first.where.file, first.where.line)
    opts = first.options
    send = (
        "v2"
        if any(k.startswith("send-proxy-v2") for k in opts)
        else ("v1" if "send-proxy" in opts else None)
    )
    if send is not None and setup.mode == "http":
        raise ExplainError(w.file, w.line, "send-proxy with mode http is not modelled (H7)")
    kept, _dropped = modelled_v2_options(first)
    out: dict[str, Any] = {
        "mode": setup.mode,
        "send_proxy": send,
        "backend": backend,
        "check": "check" in opts,
        "proxy_v2_options": kept if send == "v2" else (),
    }
    if setup.mode == "http":
        out["forwardfor"] = setup.forwardfor is not None
    for key, name in (
        ("inter", "inter_s"),
        ("fastinter", "fastinter_s"),
        ("downinter", "downinter_s"),
    ):
        if key in opts:
            out[name] = parse_time(opts[key], first.where)
    for key in ("fall", "rise"):
        if key in opts:
            if not opts[key].isdigit():
                raise ExplainError(w.file, w.line, f"{key}: expected a whole number")
            out[key] = int(opts[key])
    for line, name in (
        (setup.timeout_connect, "timeout_connect_s"),
        (setup.timeout_check, "timeout_check_s"),
    ):
        if line is not None:
            out[name] = parse_time(line.words[-1], line)
    places = {
        "mode": (
            setup.mode_where,
            f"`mode {setup.mode}`" if setup.mode_where else "HAProxy's default mode tcp",
        ),
        "backend": (
            Where(setup.backend.file, setup.backend.line),
            f"where backend {setup.backend.name!r}'s servers point",
        ),
        "forwardfor": (
            Where(setup.forwardfor.file, setup.forwardfor.line) if setup.forwardfor else w,
            "`option forwardfor` (H7)",
        ),
        "timeout_connect_s": (_line(setup.timeout_connect, w), "`timeout connect` (H10)"),
        "timeout_check_s": (_line(setup.timeout_check, w), "`timeout check` (H10)"),
    }
    for key, value in out.items():
        where, why = places.get(key, (w, f"server {first.name!r} options (H1, H2, H5)"))
        where = where or w
        inf.inferred.append(Inferred(f"haproxy.{key}", value, where.file, where.line, why))
    for key, name, default in (("inter", "inter_s", 2.0), ("fall", "fall", 3), ("rise", "rise", 2)):
        if key not in opts and out["check"]:
            inf.assumed.append(
                Assumed(f"haproxy.{name}", default, "not set: HAProxy's default (H5)")
            )
    if setup.timeout_connect is None:
        inf.assumed.append(
            Assumed(
                "haproxy.timeout_connect_s",
                5.0,
                "no `timeout connect` (HAProxy warns and waits forever): the model's 5 s",
            )
        )
    return out


def _haproxy(inf: Inference) -> str | None:
    from sim.net.haproxy import HAProxyConfig

    setup = inf.haproxy
    if setup is None:
        inf.fields["haproxy"] = None
        inf.assumed.append(
            Assumed("haproxy", None, "no haproxy.cfg: clients reach the VIP directly")
        )
        return None
    backend = _backend(inf, setup)
    inf.backend_where = Where(setup.backend.file, setup.backend.line)
    inf.fields["haproxy"] = HAProxyConfig(**_haproxy_fields(inf, setup, backend))
    if setup.bind is not None:
        inf.address(
            "HAProxy frontend",
            f"{HAPROXY_IP}:{HAPROXY_PORT}",
            f"{'*' if setup.bind[0] == '0.0.0.0' else setup.bind[0]}:{setup.bind[1]}",
        )
    return backend


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
    vip = _user_vip(view)
    if vip is not None:
        port = view.service_port.value if view.service_port else "?"
        inf.address("VIP", f"{VIP}:{VIP_PORT}", f"{vip}:{port}")
    for what, loc, model in (
        ("NodePort", view.node_port, NODE_PORT),
        ("healthCheckNodePort", view.health_port, HEALTH_CHECK_NODE_PORT),
    ):
        if loc is not None:
            inf.address(what, str(model), str(loc.value))


def infer(view: ClusterView, setup: HAProxySetup | None) -> Inference:
    """The scenario fields the files imply (see the module docstring)."""
    inf = Inference(view=view, haproxy=setup)
    _service(inf)
    backend = _haproxy(inf)
    _nodes(inf, backend)
    _placement(inf)
    _gateway(inf)
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
