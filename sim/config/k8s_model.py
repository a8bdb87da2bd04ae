"""What a user's Kubernetes YAML says about the path: the gateway, its Service, the add-ons.

Real formats: ``v1`` Service, Node and ConfigMap (MetalLB's pre-0.13 configuration, Istio's mesh
config), ``apps/v1`` Deployment (the gateway, its placement and ``proxy.istio.io/config``),
MetalLB's ``IPAddressPool`` / ``L2Advertisement`` / ``BGPAdvertisement``, Cilium's
``CiliumL2AnnouncementPolicy``, Istio's ``EnvoyFilter`` and ``IstioOperator``, Calico's
``IPPool`` and the operator's ``Installation``. This module finds the objects and their values,
each with the line it came from; :mod:`sim.config.infer` turns them into scenario fields.

Facts relied on: K1-K3, K10 (the Service), M1, M3, M16, M18 (announcers and their
configuration), I2, I4, I10, I11 (how Istio gets the PROXY filter and trusted hops), E2, E4
(filter options), C1, C2 (Calico encapsulation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sim.config.envoy_filters import GatewayFilters, read_filters
from sim.config.findings import ExplainError, Ignored, Located, Where
from sim.config.yaml_reader import Doc

__all__ = ["ClusterView", "Located", "read_cluster"]

_KNOWN = {
    ("", "Service"),
    ("", "Node"),
    ("", "ConfigMap"),
    ("apps", "Deployment"),
    ("metallb.io", "IPAddressPool"),
    ("metallb.io", "L2Advertisement"),
    ("metallb.io", "BGPAdvertisement"),
    ("cilium.io", "CiliumL2AnnouncementPolicy"),
    ("networking.istio.io", "EnvoyFilter"),
    ("install.istio.io", "IstioOperator"),
    ("projectcalico.org", "IPPool"),
    ("crd.projectcalico.org", "IPPool"),
    ("operator.tigera.io", "Installation"),
}
_LB_IP_ANNOTATIONS = ("metallb.io/loadBalancerIPs", "metallb.universe.tf/loadBalancerIPs")


def _at(doc: Doc, *path: Any) -> Where:
    return Where(doc.file, doc.line(*path))


@dataclass
class ClusterView:
    """Everything the Kubernetes files say about the path, each value with its place."""

    service: Doc | None = None
    policy: Located | None = None
    vip: Located | None = None
    service_port: Located | None = None
    node_port: Located | None = None
    health_port: Located | None = None
    service_ports: list[int] = field(default_factory=list)
    node_ports: list[int] = field(default_factory=list)
    deployment: Doc | None = None
    replicas: Located | None = None
    placement: Located | None = None
    pinned: bool = False
    filters: GatewayFilters = field(default_factory=GatewayFilters)
    announcer: Located | None = None
    pool_vip: Located | None = None
    encapsulation: Located | None = None
    nodes: list[tuple[str, str | None, Where]] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)


def _gateway_service(docs: list[Doc], view: ClusterView) -> None:
    services = [d for d in docs if d.kind == "Service" and d.group == ""]
    external = [d for d in services if d.get("spec", "type") in ("LoadBalancer", "NodePort")]
    for doc in services:
        if doc not in external[:1]:
            view.ignored.append(
                Ignored(doc.file, doc.line(), f"{doc.label}: not the gateway's external Service")
            )
    if not external:
        return
    svc = view.service = external[0]
    policy = svc.get("spec", "externalTrafficPolicy", default="Cluster")
    if policy not in ("Cluster", "Local"):
        raise ExplainError(
            svc.file,
            svc.line("spec", "externalTrafficPolicy"),
            f"externalTrafficPolicy: expected Cluster or Local, got {policy!r}",
        )
    view.policy = Located(policy, _at(svc, "spec", "externalTrafficPolicy"))
    for key in _LB_IP_ANNOTATIONS:
        value = svc.get("metadata", "annotations", key)
        if isinstance(value, str) and value:
            ip = value.split(",")[0].strip()
            view.vip = Located(ip, _at(svc, "metadata", "annotations", key))
            break
    else:
        for path in (("spec", "loadBalancerIP"), ("status", "loadBalancer", "ingress", 0, "ip")):
            if isinstance(svc.get(*path), str):
                view.vip = Located(svc.get(*path), _at(svc, *path))
                break
    ports = svc.get("spec", "ports", default=[]) or []
    if not isinstance(ports, list) or not ports or not all(isinstance(p, dict) for p in ports):
        raise ExplainError(svc.file, svc.line("spec"), f"{svc.label}: expected spec.ports")
    pick = _pick_port(ports)
    for i, port in enumerate(ports):
        if isinstance(port.get("port"), int):
            view.service_ports.append(port["port"])
        if isinstance(port.get("nodePort"), int):
            view.node_ports.append(port["nodePort"])
        if i != pick:
            view.ignored.append(
                Ignored(
                    svc.file,
                    svc.line("spec", "ports", i),
                    f"{svc.label} port "
                    f"{port.get('name') or port.get('port')}: srcip-lab models one HTTP port",
                )
            )
    for attr, key in (("service_port", "port"), ("node_port", "nodePort")):
        if isinstance(ports[pick].get(key), int):
            setattr(view, attr, Located(ports[pick][key], _at(svc, "spec", "ports", pick, key)))
    hc = svc.get("spec", "healthCheckNodePort")
    if isinstance(hc, int):
        view.health_port = Located(hc, _at(svc, "spec", "healthCheckNodePort"))


def _pick_port(ports: list[dict[str, Any]]) -> int:
    """The plain-HTTP port (named http2/http, else port 80, else the first)."""
    for i, port in enumerate(ports):
        if port.get("name") in ("http2", "http"):
            return i
    return next((i for i, port in enumerate(ports) if port.get("port") == 80), 0)


def _selects(selector: Any, labels: Any) -> bool:
    if not isinstance(selector, dict) or not isinstance(labels, dict) or not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def _gateway_deployment(docs: list[Doc], view: ClusterView) -> None:
    deployments = [d for d in docs if d.kind == "Deployment" and d.group == "apps"]
    selector = view.service.get("spec", "selector") if view.service else None
    chosen = [
        d
        for d in deployments
        if _selects(selector, d.get("spec", "template", "metadata", "labels"))
    ]
    if not chosen and selector is None:
        chosen = [
            d
            for d in deployments
            if d.get("spec", "template", "metadata", "labels", "istio") == "ingressgateway"
        ]
    for doc in deployments:
        if doc not in chosen[:1]:
            view.ignored.append(Ignored(doc.file, doc.line(), f"{doc.label}: not the gateway"))
    if not chosen:
        return
    dep = view.deployment = chosen[0]
    replicas = dep.get("spec", "replicas", default=1)
    if not isinstance(replicas, int) or replicas < 0:
        raise ExplainError(dep.file, dep.line("spec", "replicas"), "replicas: expected a number")
    view.replicas = Located(replicas, _at(dep, "spec", "replicas"))
    _placement(dep, view)


def _placement(dep: Doc, view: ClusterView) -> None:
    spec = ("spec", "template", "spec")
    selector = dep.get(*spec, "nodeSelector", "kubernetes.io/hostname")
    if isinstance(selector, str):
        view.placement = Located((selector,), _at(dep, *spec, "nodeSelector"))
        return
    terms = dep.get(
        *spec,
        "affinity",
        "nodeAffinity",
        "requiredDuringSchedulingIgnoredDuringExecution",
        "nodeSelectorTerms",
        default=[],
    )
    for t, term in enumerate(terms if isinstance(terms, list) else []):
        for e, expr in enumerate(
            term.get("matchExpressions", []) if isinstance(term, dict) else []
        ):
            if (
                isinstance(expr, dict)
                and expr.get("key") == "kubernetes.io/hostname"
                and expr.get("operator") == "In"
                and isinstance(expr.get("values"), list)
            ):
                path = (
                    *spec,
                    "affinity",
                    "nodeAffinity",
                    "requiredDuringSchedulingIgnoredDuringExecution",
                    "nodeSelectorTerms",
                    t,
                    "matchExpressions",
                    e,
                    "values",
                )
                view.placement = Located(tuple(str(v) for v in expr["values"]), _at(dep, *path))
                anti = dep.get(
                    *spec,
                    "affinity",
                    "podAntiAffinity",
                    "requiredDuringSchedulingIgnoredDuringExecution",
                    default=[],
                )
                view.pinned = any(
                    isinstance(a, dict) and a.get("topologyKey") == "kubernetes.io/hostname"
                    for a in (anti if isinstance(anti, list) else [])
                )
                return


def _legacy_metallb(doc: Doc, view: ClusterView) -> bool:
    import yaml

    text = doc.get("data", "config")
    if doc.name != "config" or not isinstance(text, str) or "address-pools" not in text:
        return False
    where = _at(doc, "data", "config")
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ExplainError(doc.file, where.line, f"MetalLB config is not YAML: {exc}") from None
    pools = config.get("address-pools", []) if isinstance(config, dict) else []
    if pools and isinstance(pools[0], dict) and pools[0].get("protocol") != "layer2":
        raise ExplainError(doc.file, where.line, "MetalLB BGP mode is not modelled (M15)")
    version = str(doc.get("metadata", "labels", "app.kubernetes.io/version", default=""))
    parts = version.lstrip("v").split(".")
    old = len(parts) > 1 and parts[0] == "0" and parts[1].isdigit() and int(parts[1]) < 7
    reason = (
        f"MetalLB {version} (label app.kubernetes.io/version): one cluster-wide leader (M1)"
        if old
        else "MetalLB's ConfigMap (<= 0.12, M18); >= 0.7 elects per service from "
        "nodes with endpoints (M2, M3); without a version label srcip-lab assumes >= 0.7"
    )
    view.announcer = Located(("naive" if old else "metallb", reason), where)
    addresses = pools[0].get("addresses", []) if pools and isinstance(pools[0], dict) else []
    if addresses:
        view.pool_vip = Located(str(addresses[0]), where)
    return True


def _announcer(docs: list[Doc], view: ClusterView) -> None:
    for doc in docs:
        if doc.kind == "IPAddressPool":
            addresses = doc.get("spec", "addresses", default=[])
            if isinstance(addresses, list) and addresses and view.pool_vip is None:
                view.pool_vip = Located(str(addresses[0]), _at(doc, "spec", "addresses", 0))
        elif doc.kind == "L2Advertisement" and view.announcer is None:
            reason = "MetalLB >= 0.13 L2Advertisement: per-VIP hash election (M3)"
            view.announcer = Located(("metallb", reason), _at(doc, "kind"))
        elif doc.kind == "CiliumL2AnnouncementPolicy":
            reason = "Cilium L2 announcements: endpoint-blind for Local before its fix (M16)"
            view.announcer = Located(("naive", reason), _at(doc, "kind"))
        elif doc.kind == "ConfigMap" and _legacy_metallb(doc, view):
            continue
    bgp = [d for d in docs if d.kind == "BGPAdvertisement"]
    if bgp and view.announcer is None:
        raise ExplainError(bgp[0].file, bgp[0].line(), "MetalLB BGP mode is not modelled (M15)")


def _calico(docs: list[Doc], view: ClusterView) -> None:
    modes = {
        ("Never", "Always"): "VXLAN",
        ("Always", "Never"): "IPIP",
        ("Never", "CrossSubnet"): "VXLANCrossSubnet",
        ("CrossSubnet", "Never"): "IPIPCrossSubnet",
        ("Never", "Never"): "None",
    }
    for doc in docs:
        if doc.kind == "IPPool" and view.encapsulation is None:
            uses = doc.get("spec", "allowedUses", default=["Workload"])
            if isinstance(uses, list) and "LoadBalancer" in uses:
                continue
            pair = (
                doc.get("spec", "ipipMode", default="Never") or "Never",
                doc.get("spec", "vxlanMode", default="Never") or "Never",
            )
            if pair not in modes:
                raise ExplainError(
                    doc.file,
                    doc.line("spec", "ipipMode"),
                    f"IPPool ipipMode/vxlanMode {pair}"
                    ": expected Always, CrossSubnet or Never, one of them Never",
                )
            view.encapsulation = Located(
                modes[pair], _at(doc, "spec", "vxlanMode" if pair[1] != "Never" else "ipipMode")
            )
        elif doc.kind == "Installation" and view.encapsulation is None:
            path = ("spec", "calicoNetwork", "ipPools", 0, "encapsulation")
            value = doc.get(*path)
            if value is not None:
                if value not in modes.values():
                    raise ExplainError(
                        doc.file,
                        doc.line(*path),
                        f"encapsulation {value!r}: expected one of {', '.join(modes.values())}",
                    )
                view.encapsulation = Located(value, _at(doc, *path))


def read_cluster(docs: list[Doc]) -> ClusterView:
    """The path as the Kubernetes objects describe it (unknown kinds listed as ignored)."""
    view = ClusterView()
    for doc in docs:
        if (doc.group, doc.kind) not in _KNOWN:
            view.ignored.append(
                Ignored(doc.file, doc.line(), f"kind {doc.kind} ({doc.api_version}): not read")
            )
    _gateway_service(docs, view)
    _gateway_deployment(docs, view)
    _announcer(docs, view)
    _calico(docs, view)
    for doc in docs:
        if doc.kind == "Node":
            ip = next(
                (
                    a.get("address")
                    for a in doc.get("status", "addresses", default=[]) or []
                    if isinstance(a, dict) and a.get("type") == "InternalIP"
                ),
                None,
            )
            view.nodes.append((doc.name, ip, _at(doc, "metadata", "name")))
    view.filters = read_filters(docs, view.deployment)
    return view
