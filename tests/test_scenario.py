"""Scenario validation, failure events and presets."""

from __future__ import annotations

from dataclasses import replace

import pytest

import sim
from sim import presets
from sim.scenario import DeletePod, MovePod, NodeDown, Scenario


def test_defaults_are_the_documented_ones() -> None:
    sc = Scenario()
    assert sc.nodes == 3
    assert sc.gateway_nodes == ("node-2",)
    assert sc.external_traffic_policy == "Cluster"
    assert sc.announcer == "metallb"
    assert (sc.probe_interval_s, sc.probe_timeout_s, sc.suspicion_mult) == (1.0, 0.5, 4)
    assert (sc.garp_interval_s, sc.garp_duration_s) == (1.1, 5.0)
    assert sc.node_monitor_grace_period_s == 40.0
    assert sc.node_names == ("node-1", "node-2", "node-3")
    assert sc.pod_names == ("gw-1",)


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"external_traffic_policy": "local"}, ["external_traffic_policy", "'Cluster', 'Local'"]),
        ({"announcer": "bgp"}, ["announcer", "'metallb', 'naive'"]),
        ({"gateway_nodes": ("node-9",)}, ["gateway_nodes[0]", "node-9", "node-1, node-2, node-3"]),
        ({"gateway_nodes": "node-2"}, ["gateway_nodes", "tuple"]),
        ({"rate_per_s": -1.0}, ["rate_per_s", "> 0"]),
        ({"rate_per_s": float("nan")}, ["rate_per_s"]),
        ({"nodes": 0}, ["nodes", "from 1"]),
        ({"nodes": 2.5}, ["nodes", "integer"]),
        ({"num_trusted_proxies": -1}, ["num_trusted_proxies", "from 0"]),
        ({"in_cluster_share": 1.5}, ["in_cluster_share", "0 to 1"]),
        ({"duration_s": 0}, ["duration_s", "> 0"]),
        ({"pod_start_s": -2.0}, ["pod_start_s", ">= 0"]),
        ({"probe_timeout_s": 1.0}, ["probe_timeout_s", "probe_interval_s"]),
        ({"client_xff": "1.2.3.4\r\nX: y"}, ["client_xff", "CR"]),
        ({"haproxy": "tcp"}, ["haproxy", "HAProxyConfig"]),
        ({"gateway_proxy_protocol": 1}, ["gateway_proxy_protocol", "True or False"]),
        ({"failures": (NodeDown(node="node-7", at_s=1.0),)}, ["failures[0].node", "node-7"]),
        ({"failures": (DeletePod(pod="gw-3", at_s=1.0),)}, ["failures[0].pod", "gw-1"]),
        (
            {"failures": (MovePod(pod="gw-1", to_node="node-4", at_s=1.0),)},
            ["failures[0].to_node", "node-4"],
        ),
        ({"failures": ("node-1",)}, ["failures[0]", "NodeDown"]),
        ({"seed": -1}, ["seed"]),
    ],
)
def test_validation_errors_name_the_field_and_what_is_allowed(
    changes: dict[str, object], fragments: list[str]
) -> None:
    with pytest.raises(ValueError) as info:
        replace(Scenario(), **changes)  # type: ignore[arg-type]
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("factory", "fragment"),
    [
        (lambda: NodeDown(node="node-1", at_s=-1.0), "NodeDown.at_s"),
        (lambda: NodeDown(node="node-1", at_s=5.0, up_at_s=5.0), "NodeDown.up_at_s"),
        (lambda: NodeDown(node="", at_s=1.0), "NodeDown.node"),
        (lambda: DeletePod(pod="gw-1", at_s=float("inf")), "DeletePod.at_s"),
        (lambda: MovePod(pod="gw-1", to_node="", at_s=1.0), "MovePod.to_node"),
    ],
)
def test_failure_events_validate(factory: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment.replace(".", r"\.")):
        factory()  # type: ignore[operator]


def test_haproxy_config_rejects_http_with_send_proxy() -> None:
    with pytest.raises(ValueError):
        sim.HAProxyConfig(mode="http", send_proxy="v2")


def test_presets_are_named_and_follow_the_seed_topology() -> None:
    assert set(presets.PRESETS) == {
        "cluster",
        "local",
        "proxy_protocol",
        "local_naive",
        "haproxy_http_xff",
        "pp_unexpected",
        "pp_missing",
    }
    for name, sc in presets.PRESETS.items():
        assert sc.name == name
        assert sc.gateway_nodes == ("node-2", "node-3")
        assert presets.get(name) is sc
    assert presets.proxy_protocol.haproxy == sim.HAProxyConfig(mode="tcp", send_proxy="v2")
    assert presets.pp_missing.haproxy is None and presets.pp_missing.gateway_proxy_protocol
    with pytest.raises(ValueError, match="allowed: cluster, local"):
        presets.get("nope")


def test_public_api_is_exported() -> None:
    for name in ("Scenario", "HAProxyConfig", "NodeDown", "DeletePod", "MovePod", "simulate"):
        assert name in sim.__all__
        assert hasattr(sim, name)
    assert {"Result", "compare", "trace", "presets", "__version__"} <= set(sim.__all__)


def test_node_addresses_never_collide_with_the_vip_haproxy_or_each_other() -> None:
    from sim.addresses import HAPROXY_IP, MAX_NODES, VIP, node_ip, tunnel_ip

    nodes = [node_ip(i) for i in range(MAX_NODES)]
    assert len(set(nodes)) == MAX_NODES
    assert VIP not in nodes and HAPROXY_IP not in nodes
    assert all(int(ip.rsplit(".", 1)[1]) < 255 for ip in nodes)
    assert len({tunnel_ip(i) for i in range(MAX_NODES)}) == MAX_NODES


def test_expected_connections_are_bounded_with_a_message_naming_both_fields() -> None:
    import pytest

    from sim import Scenario
    from sim.scenario import MAX_CONNECTIONS

    Scenario(rate_per_s=MAX_CONNECTIONS / 100, duration_s=100.0)  # exactly at the bound
    with pytest.raises(ValueError, match=r"^rate_per_s x duration_s: 1e\+21 connections"):
        Scenario(rate_per_s=1e12, duration_s=1e9)
