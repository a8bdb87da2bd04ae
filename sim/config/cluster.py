"""The Kubernetes identity of the simulated objects: names, namespaces, labels and addresses.

The simulator numbers addresses in :mod:`sim.addresses`; what it leaves unnamed (the gateway
Service's namespace and name, its port name, its ClusterIP, the Calico pool) is decided here, once,
for both directions: the writers (:mod:`sim.config.kube_proxy_rules`, :mod:`sim.config.manifests`,
:mod:`sim.config.haproxy_cfg`) use these names, and the reader (:mod:`sim.config.explain`) treats a
user's own names and addresses as stand-ins for them.

The names follow Istio's classic ingress gateway install (``istio-system/istio-ingressgateway``,
labels ``app``/``istio``, port ``http2`` 80 → 8080, I1) and Calico's default pool name.
"""

from __future__ import annotations

# Re-exported (in __all__) so that writers and reader take every number from one place.
from sim.addresses import GATEWAY_PORT, HEALTH_CHECK_NODE_PORT, NODE_PORT, VIP, VIP_PORT

__all__ = [
    "CLUSTER_CIDR",
    "CLUSTER_IP",
    "GATEWAY_LABELS",
    "GATEWAY_NAME",
    "GATEWAY_NAMESPACE",
    "GATEWAY_PORT",
    "HEALTH_CHECK_NODE_PORT",
    "HOSTNAME_LABEL",
    "IPPOOL_NAME",
    "KUBERNETES_VERSION",
    "METALLB_NAMESPACE",
    "METALLB_POOL",
    "NODE_BLOCK_SIZE",
    "NODE_PORT",
    "PORT_NAME",
    "SERVICE_PORT_NAME",
    "VIP",
    "VIP_PORT",
]

GATEWAY_NAMESPACE = "istio-system"
"""Namespace of the ingress gateway Deployment, its Service and the EnvoyFilter (Istio's root
namespace, so an EnvoyFilter there may select any workload)."""
GATEWAY_NAME = "istio-ingressgateway"
"""Name of the gateway Deployment and of its ``type: LoadBalancer`` Service."""
GATEWAY_LABELS = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
"""Pod labels of the gateway: the Service selector and the EnvoyFilter ``workloadSelector``."""
PORT_NAME = "http2"
"""The Service port's name (Istio names its plain-HTTP gateway port ``http2``)."""
SERVICE_PORT_NAME = f"{GATEWAY_NAMESPACE}/{GATEWAY_NAME}:{PORT_NAME}"
"""kube-proxy's ``ServicePortName.String()`` for that port: the text its chain names are hashed
from and its rule comments start with (K19)."""
CLUSTER_IP = "10.96.0.80"
"""The Service's ClusterIP (from kubeadm's default Service range ``10.96.0.0/12``)."""
CLUSTER_CIDR = "172.16.0.0/16"
"""The pod network: Calico's IPPool CIDR (N2), also kube-proxy's ``--cluster-cidr``, which its
``ClusterCIDR`` local-traffic detector uses to tell pod sources from others (K2a)."""
NODE_BLOCK_SIZE = 24
"""Calico's per-node block size: node-k owns ``172.16.k.0/24`` (:func:`sim.addresses.pod_ip`)."""
IPPOOL_NAME = "default-ipv4-ippool"
"""Calico's name for the pool its installer creates."""
METALLB_NAMESPACE = "metallb-system"
"""Where MetalLB's own resources live."""
METALLB_POOL = "gateway-vip"
"""Name of the ``IPAddressPool`` (and ``L2Advertisement``) that holds the VIP."""
HOSTNAME_LABEL = "kubernetes.io/hostname"
"""The well-known node label that node affinity matches node names with."""
KUBERNETES_VERSION = "1.33.0"
"""The Kubernetes version the generated core objects are validated against (kubernetes-validate's
schemas, tests/test_config_validate.py)."""
