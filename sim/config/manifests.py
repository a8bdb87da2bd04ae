"""The Kubernetes core objects of a scenario: the gateway's Service, its Deployment, the Nodes.

Real formats: ``v1 Service`` (``type: LoadBalancer``), ``apps/v1 Deployment`` (Istio's gateway
injection pattern, ``image: auto`` with the ``gateway`` template) and ``v1 Node`` (what ``kubectl
get nodes -o yaml`` shows; written for reference and for ``srcip-lab explain``, not to apply:
kubelets register their nodes). Validated against the Kubernetes OpenAPI schemas of
:data:`~sim.config.cluster.KUBERNETES_VERSION` by tests/test_config_validate.py.

Facts relied on: K1-K3 (``externalTrafficPolicy``), K10 (``healthCheckNodePort``, ``Local``
only), K7 (the NodePort), M3 and M18 (MetalLB's ``metallb.io/loadBalancerIPs`` annotation picks
the VIP; MetalLB <= 0.12 read ``spec.loadBalancerIP``), I2 and I4 (the gateway's
``proxy.istio.io/config`` annotation: ``gatewayTopology`` with ``proxyProtocol`` and
``numTrustedProxies``), K18 (``terminationDrainDuration``, ``terminationGracePeriodSeconds``),
N2 (Calico's tunnel-address node annotations).

The pod placement (``Scenario.gateway_nodes``) is written as required node affinity on
``kubernetes.io/hostname`` plus one-per-node pod anti-affinity, which pins replica *i* to a
listed node exactly when every node appears once; with repeated nodes the anti-affinity is left
out and the scheduler's choice among the listed nodes is not pinned (a comment says so).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.addresses import node_ip, tunnel_ip
from sim.config.cluster import (
    CLUSTER_IP,
    GATEWAY_LABELS,
    GATEWAY_NAME,
    GATEWAY_NAMESPACE,
    GATEWAY_PORT,
    HEALTH_CHECK_NODE_PORT,
    HOSTNAME_LABEL,
    NODE_PORT,
    PORT_NAME,
    VIP,
    VIP_PORT,
)

if TYPE_CHECKING:
    from sim.scenario import Scenario

__all__ = ["deployment_yaml", "gateway_proxy_config", "nodes_yaml", "service_yaml"]

STATUS_PORT = 15021
"""Istio's gateway status port (``/healthz/ready``); a bootstrap listener, I3."""


def _labels(indent: int) -> list[str]:
    pad = " " * indent
    return [f"{pad}{k}: {v}" for k, v in GATEWAY_LABELS.items()]


def service_yaml(scenario: Scenario) -> str:
    """The gateway's ``type: LoadBalancer`` Service (one YAML document, with comments)."""
    local = scenario.external_traffic_policy == "Local"
    legacy = scenario.announcer == "naive"
    lines = [
        "# The ingress gateway's LoadBalancer Service: MetalLB gives it the VIP, kube-proxy",
        "# writes its rules on every node (see node-*/iptables-save.txt).",
        "apiVersion: v1",
        "kind: Service",
        "metadata:",
        f"  name: {GATEWAY_NAME}",
        f"  namespace: {GATEWAY_NAMESPACE}",
        "  labels:",
        *_labels(4),
    ]
    if not legacy:
        lines += [
            "  annotations:",
            "    # M3, M18: ask MetalLB for exactly this address (its election hashes it).",
            f"    metallb.io/loadBalancerIPs: {VIP}",
        ]
    lines += ["spec:", "  type: LoadBalancer", f"  clusterIP: {CLUSTER_IP}"]
    if legacy:
        lines += [
            "  # M18: MetalLB <= 0.12 (the ConfigMap era) reads the deprecated loadBalancerIP.",
            f"  loadBalancerIP: {VIP}",
        ]
    if local:
        lines += [
            "  # K2, K3: keep the client IP; each node serves only its own gateway pods and",
            "  # DROPs when it has none (K6, K7).",
            "  externalTrafficPolicy: Local",
            "  # K10, K11: kube-proxy answers /healthz here: 200 only on nodes with a Ready pod.",
            f"  healthCheckNodePort: {HEALTH_CHECK_NODE_PORT}",
        ]
    else:
        lines += [
            "  # K1, N3: masquerade external traffic: the gateway sees a node IP or the ingress",
            "  # node's Calico tunnel IP (the seed's 172.x), never the client.",
            "  externalTrafficPolicy: Cluster",
        ]
    lines += [
        "  selector:",
        *_labels(4),
        "  ports:",
        f"  - name: {PORT_NAME}",
        "    protocol: TCP",
        f"    port: {VIP_PORT}",
        f"    targetPort: {GATEWAY_PORT}",
        "    # K7: the NodePort every node opens (HAProxy's backend 'nodeports' uses it).",
        f"    nodePort: {NODE_PORT}",
    ]
    return "\n".join(lines) + "\n"


def _duration(seconds: float) -> str:
    text = f"{seconds:g}"
    return f"{text}s"


def gateway_proxy_config(scenario: Scenario, *, proxy_protocol: bool) -> list[str]:
    """The ``proxy.istio.io/config`` ProxyConfig (YAML lines): ``gatewayTopology`` (I2, I4)
    with ``proxyProtocol: {}`` when ``proxy_protocol``, and ``terminationDrainDuration`` (K18)."""
    lines = ["gatewayTopology:"]
    if proxy_protocol:
        lines.append("  proxyProtocol: {}")
    lines += [
        f"  numTrustedProxies: {scenario.num_trusted_proxies}",
        f"terminationDrainDuration: {_duration(scenario.termination_drain_s)}",
    ]
    return lines


def _affinity(scenario: Scenario) -> list[str]:
    nodes = list(dict.fromkeys(scenario.gateway_nodes))
    pinned = len(nodes) == len(scenario.gateway_nodes)
    lines = [
        "      # The scenario's placement: replica i on gateway_nodes[i] (pods gw-1, gw-2, ...).",
        "      affinity:",
        "        nodeAffinity:",
        "          requiredDuringSchedulingIgnoredDuringExecution:",
        "            nodeSelectorTerms:",
        "            - matchExpressions:",
        f"              - key: {HOSTNAME_LABEL}",
        "                operator: In",
        "                values:",
        *[f"                - {n}" for n in nodes],
    ]
    if pinned:
        lines += [
            "        # One replica per listed node, so each listed node runs exactly one.",
            "        podAntiAffinity:",
            "          requiredDuringSchedulingIgnoredDuringExecution:",
            "          - labelSelector:",
            "              matchLabels:",
            f"                istio: {GATEWAY_LABELS['istio']}",
            f"            topologyKey: {HOSTNAME_LABEL}",
        ]
    else:
        lines.append("        # Several replicas share a node: which one is up to the scheduler.")
    return lines


def deployment_yaml(scenario: Scenario, *, proxy_protocol_annotation: bool = False) -> str:
    """The gateway Deployment with its placement and ``proxy.istio.io/config`` annotation.

    ``proxy_protocol_annotation=True`` writes the alternative to the EnvoyFilter:
    ``gatewayTopology.proxyProtocol: {}`` in the annotation (Istio >= 1.19, I2).
    """
    config = gateway_proxy_config(scenario, proxy_protocol=proxy_protocol_annotation)
    why = (
        "I2: proxyProtocol adds the strict proxy_protocol filter to every gateway listener;"
        if proxy_protocol_annotation
        else "I4: the PROXY filter comes from the EnvoyFilter (istio-envoyfilter.yaml), if any;"
    )
    lines = [
        "# The ingress gateway: Istio injects the proxy into `image: auto` (gateway template).",
        "apiVersion: apps/v1",
        "kind: Deployment",
        "metadata:",
        f"  name: {GATEWAY_NAME}",
        f"  namespace: {GATEWAY_NAMESPACE}",
        "spec:",
        f"  replicas: {len(scenario.gateway_nodes)}",
        "  selector:",
        "    matchLabels:",
        *_labels(6),
        "  template:",
        "    metadata:",
        "      annotations:",
        "        inject.istio.io/templates: gateway",
        f"        # {why}",
        "        # numTrustedProxies: how many XFF-appending proxies to trust (I4, I5, E9);",
        "        # terminationDrainDuration: how long a Terminating gateway drains (K18).",
        "        proxy.istio.io/config: |",
        *[f"          {line}" for line in config],
        "      labels:",
        *_labels(8),
        '        sidecar.istio.io/inject: "true"',
        "    spec:",
        *_affinity(scenario),
        "      # K18: the pod's grace period (Kubernetes' default), longer than the drain.",
        "      terminationGracePeriodSeconds: 30",
        "      containers:",
        "      - name: istio-proxy",
        "        image: auto",
        "        ports:",
        f"        - containerPort: {GATEWAY_PORT}",
        f"          name: {PORT_NAME}",
        "          protocol: TCP",
        f"        - containerPort: {STATUS_PORT}",
        "          name: status-port",
        "          protocol: TCP",
    ]
    return "\n".join(lines) + "\n"


def nodes_yaml(scenario: Scenario) -> str:
    """The scenario's nodes as ``kubectl get nodes -o yaml`` would show them (a ``v1 List``)."""
    key = {"IPIP": "IPv4IPIPTunnelAddr", "IPIPCrossSubnet": "IPv4IPIPTunnelAddr"}.get(
        scenario.encapsulation, "IPv4VXLANTunnelAddr"
    )
    lines = [
        "# The cluster's nodes as `kubectl get nodes -o yaml` shows them: for reference and for",
        "# `srcip-lab explain` (not to apply: kubelets register their nodes). N2: Calico puts",
        "# each node's tunnel-device address in an annotation; it is what Cluster's SNAT shows",
        "# for pods on other nodes (N3).",
        "apiVersion: v1",
        "kind: List",
        "items:",
    ]
    for i, name in enumerate(scenario.node_names):
        lines += [
            "- apiVersion: v1",
            "  kind: Node",
            "  metadata:",
            f"    name: {name}",
            "    labels:",
            f"      {HOSTNAME_LABEL}: {name}",
            "    annotations:",
            f"      projectcalico.org/IPv4Address: {node_ip(i)}/16",
        ]
        if scenario.encapsulation != "None":
            lines.append(f"      projectcalico.org/{key}: {tunnel_ip(i)}")
        lines += [
            "  status:",
            "    addresses:",
            "    - type: InternalIP",
            f"      address: {node_ip(i)}",
            "    - type: Hostname",
            f"      address: {name}",
        ]
    return "\n".join(lines) + "\n"
