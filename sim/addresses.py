"""Every address and port of the simulated network, decided in one place.

The numbering follows the seed story: nodes, clients, HAProxy and the MetalLB VIP share one L2
segment (``10.0.0.0/16``), and Calico gives each node a pod block from a ``172.16.0.0/16`` pool
whose first address is the node's tunnel device (``tunl0``/``vxlan.calico``), the "172.x" the
seed saw in ``X-Forwarded-For`` (N2, N3).

| what | address |
|---|---|
| node ``node-k`` | ``10.0.0.(10+k)`` |
| its Calico tunnel address | ``172.16.k.0`` (first address of the node's block, N2) |
| pods on ``node-k`` | ``172.16.k.10``, ``.11``, ... in creation order |
| in-cluster caller pod on ``node-k`` | ``172.16.k.250`` |
| MetalLB VIP of the ingress gateway Service | ``10.0.0.100:80`` |
| external HAProxy | ``10.0.0.5``, frontend ``10.0.0.5:80`` |
| NodePort / healthCheckNodePort on every node | ``30080`` / ``30081`` (K10) |
| client ``c`` (0-based) | ``10.0.1.1`` ... ``10.0.1.254``, then ``10.0.2.1`` ... |
| gateway container port | ``8080`` (Istio's gateway targetPort for HTTP) |
| application pod | ``172.16.1.50:8080`` (only an address: it never fails) |
| application socket peer | ``127.0.0.6`` (the sidecar's inbound passthrough bind, I8) |

The VIP was chosen so that MetalLB's hash order (M3: ``sha256(node + "#" + VIP)``) of the seed's
three nodes is node-3, node-1, node-2: with gateway pods on node-2 and node-3, the announcer
node-3 holds one gateway pod, so ``Cluster`` shows both SNAT sources (N3), and node-1, which a
lease-style naive announcer holds, has none.
"""

from __future__ import annotations

VIP = "10.0.0.100"
"""The LoadBalancer IP that MetalLB announces for the ingress gateway Service."""
VIP_PORT = 80
"""The Service port (plain HTTP/1.1 in this model)."""
HAPROXY_IP = "10.0.0.5"
"""HAProxy's address: its frontend and the source of its server-side connections."""
HAPROXY_PORT = 80
"""HAProxy's frontend port."""
NODE_PORT = 30080
"""The gateway Service's NodePort on every node (K10: from 30000-32767), for ``client_target``
``"nodeport"`` and HAProxy's ``backend="nodeports"``."""
HEALTH_CHECK_NODE_PORT = 30081
"""The Service's ``healthCheckNodePort`` (allocated for ``Local`` only, from the NodePort range,
K10), where each node's kube-proxy answers ``/healthz`` (K11)."""

GATEWAY_PORT = 8080
"""The gateway container port that kube-proxy DNATs the VIP to."""
APP_POD_IP = "172.16.1.50"
"""The application pod behind the gateway (its sidecar is the last hop)."""
APP_PORT = 8080
"""The application's container port."""
SIDECAR_INBOUND_IP = "127.0.0.6"
"""What the application's socket sees as its peer behind an Istio sidecar (I8)."""
HOST = "app.example.com"
"""The HTTP Host the clients ask for."""
EPHEMERAL_LOW = 32768
"""Linux's default ``ip_local_port_range`` starts here ..."""
EPHEMERAL_HIGH = 60999
"""... and ends here (inclusive)."""
MAX_CLIENTS = 60_000
"""Upper bound on ``Scenario.clients`` (client addresses must stay inside 10.0.1.0-10.0.255.x)."""
MAX_NODES = 200
"""Upper bound on ``Scenario.nodes`` (node addresses stay below 10.0.0.255)."""


def node_name(index: int) -> str:
    """Name of the node with 0-based ``index`` (``node-1`` is index 0)."""
    return f"node-{index + 1}"


def node_ip(index: int) -> str:
    """The primary (NIC) address of the node with 0-based ``index``.

    ``10.0.0.11`` upwards, stepping over the VIP's ``10.0.0.100`` (node-90 is ``10.0.0.101``).
    """
    octet = 11 + index
    return f"10.0.0.{octet + 1 if octet >= 100 else octet}"


def tunnel_ip(index: int) -> str:
    """The Calico tunnel-device address of the node with 0-based ``index`` (N2)."""
    return f"172.16.{index + 1}.0"


def pod_ip(node_index: int, serial: int) -> str:
    """The ``serial``-th (0-based) pod address handed out from a node's Calico block.

    Addresses ``.10`` to ``.249`` are used in turn; after 240 pods on one node they are reused,
    as IPAM reuses released addresses.
    """
    return f"172.16.{node_index + 1}.{10 + serial % 240}"


def caller_pod_ip(node_index: int) -> str:
    """The address of the in-cluster caller pod on a node (K8)."""
    return f"172.16.{node_index + 1}.250"


def client_ip(index: int) -> str:
    """The address of the client with 0-based ``index`` on the L2 segment."""
    return f"10.0.{1 + index // 254}.{1 + index % 254}"


def ephemeral_port(conn_id: int, leg: int = 0) -> int:
    """A source port for a leg the model does not track (an element's own upstream connection).

    Used for the gateway's and the sidecar's upstream connections, which carry no address the
    model follows: Linux's default ephemeral range, 32768-60999, walked by connection id (``leg``
    offsets the sidecar's leg from the gateway's), so a trace is deterministic.
    """
    return EPHEMERAL_LOW + (conn_id + leg * 14116) % (EPHEMERAL_HIGH - EPHEMERAL_LOW + 1)
