"""Named scenarios: the seed story's three setups and the pitfalls around them.

Every preset uses the seed topology: three nodes, gateway replicas on node-2 and node-3, 50
clients on the nodes' L2 segment, 50 connections per second for 60 s, seed 0, no failures.
With the VIP of :mod:`sim.addresses`, MetalLB's hash order is node-3, node-1, node-2 (M3), so:

* ``Cluster`` traffic enters on node-3, which holds gw-2: the gateway sees node-3's node IP for
  gw-2 and node-3's tunnel IP (the seed's 172.x) for gw-1 on node-2 (K1, N3);
* a naive announcer's lease sits on node-1, which holds no gateway pod, so ``Local`` drops
  everything (K6, M16); MetalLB's endpoint-aware election picks node-3 instead (M3).

Add failures with :func:`dataclasses.replace`, e.g.
``replace(presets.cluster, failures=(sim.NodeDown(node="node-3", at_s=20.0),))``.
"""

from __future__ import annotations

from dataclasses import replace

from sim.net.haproxy import HAProxyConfig
from sim.scenario import Scenario

__all__ = [
    "ALTERNATIVES",
    "PRESETS",
    "cluster",
    "get",
    "haproxy_http_xff",
    "haproxy_nodeports",
    "local",
    "local_naive",
    "pp_missing",
    "pp_unexpected",
    "proxy_protocol",
]

_SEED_TOPOLOGY = Scenario(name="seed", nodes=3, gateway_nodes=("node-2", "node-3"))

cluster = replace(_SEED_TOPOLOGY, name="cluster", external_traffic_policy="Cluster")
"""Story step 1: ``externalTrafficPolicy: Cluster``; the gateway sees node/tunnel IPs (K1, N3)."""

local = replace(_SEED_TOPOLOGY, name="local", external_traffic_policy="Local")
"""Story step 2: ``Local`` with MetalLB; client IP kept, only node-3's pod serves (K2, M3, M6)."""

proxy_protocol = replace(
    _SEED_TOPOLOGY,
    name="proxy_protocol",
    external_traffic_policy="Cluster",
    haproxy=HAProxyConfig(mode="tcp", send_proxy="v2"),
    gateway_proxy_protocol=True,
    num_trusted_proxies=0,
)
"""Story step 3: HAProxy ``send-proxy-v2`` + the gateway's proxy_protocol filter (H1, E1, I2)."""

local_naive = replace(local, name="local_naive", announcer="naive")
"""Pitfall: ``Local`` behind an endpoint-blind announcer on a node without a pod (K6, M16)."""

haproxy_http_xff = replace(
    _SEED_TOPOLOGY,
    name="haproxy_http_xff",
    external_traffic_policy="Cluster",
    haproxy=HAProxyConfig(mode="http", forwardfor=True),
    num_trusted_proxies=1,
)
"""Alternative: HAProxy ``mode http`` + ``option forwardfor``, gateway trusts 1 hop (H7, I4, C4)."""

pp_unexpected = replace(
    _SEED_TOPOLOGY,
    name="pp_unexpected",
    haproxy=HAProxyConfig(mode="tcp", send_proxy="v2"),
    gateway_proxy_protocol=False,
)
"""Pitfall: HAProxy sends PROXY v2, the gateway has no filter: 400, yet checks pass (E6, H5)."""

pp_missing = replace(_SEED_TOPOLOGY, name="pp_missing", gateway_proxy_protocol=True)
"""Pitfall: the gateway requires PROXY but clients reach the VIP directly: reset (E5)."""

haproxy_nodeports = replace(
    _SEED_TOPOLOGY,
    name="haproxy_nodeports",
    external_traffic_policy="Local",
    haproxy=HAProxyConfig(mode="tcp", send_proxy="v2", backend="nodeports"),
    gateway_proxy_protocol=True,
    num_trusted_proxies=0,
)
"""Alternative (FACTS section E): HAProxy ``send-proxy-v2`` straight to every node's NodePort,
``Local``, checks on the healthCheckNodePort (no PROXY on them, H4): nodes without a Ready
gateway pod fail ``/healthz`` (K11) and get no traffic; client IP kept; failover after about
``inter x fall`` (H5) without ARP; MetalLB bypassed (K7, K10)."""

PRESETS: dict[str, Scenario] = {
    s.name: s
    for s in (
        cluster,
        local,
        proxy_protocol,
        local_naive,
        haproxy_http_xff,
        pp_unexpected,
        pp_missing,
    )
}
"""Every preset of the story and its pitfalls, by name (the set the CLI's comparison runs)."""

ALTERNATIVES: dict[str, Scenario] = {s.name: s for s in (haproxy_nodeports,)}
"""Presets for alternatives from FACTS section E, by name; kept apart from :data:`PRESETS` so the
story's comparison stays the same. :func:`get` finds them too."""


def get(name: str) -> Scenario:
    """The preset called ``name`` (in :data:`PRESETS` or :data:`ALTERNATIVES`).

    :class:`ValueError` listing the allowed names otherwise.
    """
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        pass
    try:
        return ALTERNATIVES[name]
    except (KeyError, TypeError):
        allowed = ", ".join([*PRESETS, *ALTERNATIVES])
        raise ValueError(f"preset: unknown name {name!r}; allowed: {allowed}") from None
