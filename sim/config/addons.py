"""The add-ons' custom resources of a scenario: MetalLB, the Istio EnvoyFilter, Calico's IPPool.

Real formats, validated against their published CRD schemas by tests/test_config_validate.py
(the schemas are kept in ``tests/data/schemas/`` with their upstream path and version):

* MetalLB >= 0.13 ``metallb.io/v1beta1`` ``IPAddressPool`` (the VIP) and ``L2Advertisement``
  (M3: its speakers elect one node per VIP). For the endpoint-blind announcer
  (``announcer="naive"``) the file is MetalLB 0.6's ConfigMap instead (M1: one cluster-wide
  leader; M18: the ConfigMap was MetalLB's configuration up to 0.12).
* Istio ``networking.istio.io/v1alpha3`` ``EnvoyFilter``: the seed story's MERGE of
  ``listener_filters: [proxy_protocol, tls_inspector]`` on the gateway workload (I2, E1), and
  ``listener_filters_timeout`` when the scenario changes it from Envoy's 15 s (E4).
* Calico ``projectcalico.org/v3`` ``IPPool`` with the scenario's encapsulation (C1, C2, N2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.config.cluster import (
    CLUSTER_CIDR,
    GATEWAY_LABELS,
    GATEWAY_NAMESPACE,
    IPPOOL_NAME,
    METALLB_NAMESPACE,
    METALLB_POOL,
    NODE_BLOCK_SIZE,
    VIP,
)

if TYPE_CHECKING:
    from sim.scenario import Scenario

__all__ = [
    "IPPOOL_MODES",
    "PROXY_PROTOCOL_TYPE",
    "TLS_INSPECTOR_TYPE",
    "calico_yaml",
    "envoyfilter_yaml",
    "metallb_yaml",
]

IPPOOL_MODES: dict[str, tuple[str, str]] = {
    "VXLAN": ("Never", "Always"),
    "IPIP": ("Always", "Never"),
    "VXLANCrossSubnet": ("Never", "CrossSubnet"),
    "IPIPCrossSubnet": ("CrossSubnet", "Never"),
    "None": ("Never", "Never"),
}
"""``Scenario.encapsulation`` (the operator's ``Installation`` names, C2) → IPPool
``(ipipMode, vxlanMode)``."""

PROXY_PROTOCOL_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol"
)
"""The ``@type`` of Envoy's proxy_protocol listener filter config (E1, E2)."""
TLS_INSPECTOR_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
)
"""The ``@type`` of Envoy's TLS inspector listener filter config."""

LEGACY_METALLB_VERSION = "v0.6.2"
"""The MetalLB release whose layer-2 mode had one endpoint-blind leader (M1)."""


def metallb_yaml(scenario: Scenario) -> str:
    """MetalLB's configuration for the VIP: the CRDs, or 0.6's ConfigMap for ``naive``."""
    if scenario.announcer == "naive":
        lines = [
            "# M1: MetalLB 0.6 in layer 2 had ONE cluster-wide leader announcing every VIP,",
            "# whether or not its node runs an endpoint (the 'naive' announcer; M16 is the same",
            "# flaw in Cilium's L2 announcements). M18: it was configured by this ConfigMap.",
            "apiVersion: v1",
            "kind: ConfigMap",
            "metadata:",
            "  name: config",
            f"  namespace: {METALLB_NAMESPACE}",
            "  labels:",
            "    app.kubernetes.io/name: metallb",
            f"    app.kubernetes.io/version: {LEGACY_METALLB_VERSION}",
            "data:",
            "  config: |",
            "    address-pools:",
            f"    - name: {METALLB_POOL}",
            "      protocol: layer2",
            "      addresses:",
            f"      - {VIP}/32",
        ]
        return "\n".join(lines) + "\n"
    lines = [
        "# MetalLB >= 0.13 (CRDs, M18): one pool holding the VIP ...",
        "apiVersion: metallb.io/v1beta1",
        "kind: IPAddressPool",
        "metadata:",
        f"  name: {METALLB_POOL}",
        f"  namespace: {METALLB_NAMESPACE}",
        "spec:",
        "  addresses:",
        f"  - {VIP}/32",
        "  autoAssign: false",
        "---",
        "# ... announced in layer 2 (ARP). M3: every speaker hashes sha256(node#VIP) over the",
        "# candidates: any live speaker for Cluster, only nodes with a Ready local endpoint for",
        "# Local; the first wins and answers ARP for the VIP (M5, M9: GARP on takeover).",
        "apiVersion: metallb.io/v1beta1",
        "kind: L2Advertisement",
        "metadata:",
        f"  name: {METALLB_POOL}",
        f"  namespace: {METALLB_NAMESPACE}",
        "spec:",
        "  ipAddressPools:",
        f"  - {METALLB_POOL}",
    ]
    return "\n".join(lines) + "\n"


def envoyfilter_yaml(scenario: Scenario) -> str:
    """The seed story's EnvoyFilter: the gateway's listeners strip a PROXY header first."""
    lines = [
        "# The seed story's fix: MERGE the proxy_protocol listener filter into every listener",
        "# of the gateway (E1: the header becomes the remote address; it is then REQUIRED, E5).",
        "# proxy_protocol must come before tls_inspector, which would otherwise read the",
        "# PROXY bytes as a ClientHello (I2, H9). Istio >= 1.19 can do the same without an",
        "# EnvoyFilter: see alternative-gateway-topology/ (I2); never use both at once.",
        "apiVersion: networking.istio.io/v1alpha3",
        "kind: EnvoyFilter",
        "metadata:",
        "  name: proxy-protocol",
        f"  namespace: {GATEWAY_NAMESPACE}",
        "spec:",
        "  workloadSelector:",
        "    labels:",
        f"      istio: {GATEWAY_LABELS['istio']}",
        "  configPatches:",
        "  - applyTo: LISTENER",
        "    patch:",
        "      operation: MERGE",
        "      value:",
    ]
    if scenario.listener_filters_timeout_s != 15.0:
        lines += [
            "        # E4: listener filters must finish within this (Envoy's default 15s).",
            f"        listener_filters_timeout: {scenario.listener_filters_timeout_s:g}s",
        ]
    lines += [
        "        listener_filters:",
        "        - name: envoy.filters.listener.proxy_protocol",
        "          typed_config:",
        f'            "@type": {PROXY_PROTOCOL_TYPE}',
        "        - name: envoy.filters.listener.tls_inspector",
        "          typed_config:",
        f'            "@type": {TLS_INSPECTOR_TYPE}',
    ]
    return "\n".join(lines) + "\n"


def calico_yaml(scenario: Scenario) -> str:
    """Calico's IPPool for the pods, with the scenario's encapsulation (C1)."""
    ipip, vxlan = IPPOOL_MODES[scenario.encapsulation]
    why = {
        "Always": "pod traffic to another node leaves through the tunnel device, so\n"
        "# Cluster's MASQUERADE picks the ingress node's tunnel IP, the seed's 172.x (C1, N3).",
        "CrossSubnet": "the nodes share one L2 subnet (as MetalLB L2 needs), so pod\n"
        "# traffic goes natively through the NIC and Cluster's MASQUERADE picks the node IP (C1).",
        "Never": "no encapsulation (BGP-routed pods), so\n"
        "# Cluster's MASQUERADE picks the node IP (C1).",
    }[vxlan if vxlan != "Never" else ipip]
    lines = [
        f"# Calico's pod pool with encapsulation {scenario.encapsulation} (C2):",
        f"# {why}",
        "apiVersion: projectcalico.org/v3",
        "kind: IPPool",
        "metadata:",
        f"  name: {IPPOOL_NAME}",
        "spec:",
        f"  cidr: {CLUSTER_CIDR}",
        "  # node-k's block is 172.16.k.0/24; its first address goes to the tunnel device (N2).",
        f"  blockSize: {NODE_BLOCK_SIZE}",
        f"  ipipMode: {ipip}",
        f"  vxlanMode: {vxlan}",
        "  natOutgoing: true",
        "  nodeSelector: all()",
        "  allowedUses:",
        "  - Workload",
        "  - Tunnel",
    ]
    return "\n".join(lines) + "\n"
