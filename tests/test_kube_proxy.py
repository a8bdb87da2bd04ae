"""kube-proxy: masquerade source by placement, DROP vs REJECT, the dead-node tail."""

from __future__ import annotations

from dataclasses import replace

import pytest

import sim
from sim import presets
from sim.net.kube_proxy import DROP, FORWARD, REJECT, KubeProxy


def test_route_external_verdicts() -> None:
    kp = KubeProxy(nodes=3, local_policy=True)
    assert kp.route_external(0, 0.5) == (REJECT, -1)  # no endpoints at all (K6)
    kp.set_endpoints([(0, 1), (1, 2), (2, 2)])
    assert kp.route_external(0, 0.5) == (DROP, -1)  # endpoints elsewhere only (K6)
    assert kp.route_external(2, 0.0) == (FORWARD, 1)
    assert kp.route_external(2, 0.99) == (FORWARD, 2)
    cluster = KubeProxy(nodes=3, local_policy=False)
    cluster.set_endpoints([(0, 1), (1, 2), (2, 2)])
    picks = {cluster.route_external(0, u / 30)[1] for u in range(30)}
    assert picks == {0, 1, 2}  # uniform over all Ready endpoints (K14)
    assert cluster.route_in_cluster(0.0) == (FORWARD, 0)


def test_cluster_masquerades_to_node_ip_or_tunnel_ip_by_placement() -> None:
    result = sim.simulate(replace(presets.cluster, duration_s=5.0, rate_per_s=100.0))
    conns = result.connections
    nodes = result.nodes.set_index("node")
    assert (conns["outcome"] == "ok").all()
    same = conns["gateway_node"] == conns["entry_node"]
    assert same.any() and (~same).any()
    node_ip = conns["entry_node"].map(nodes["node_ip"])
    tunnel_ip = conns["entry_node"].map(nodes["tunnel_ip"])
    assert (conns.loc[same, "snat_ip"] == node_ip[same]).all()  # K1: SNAT even when local
    assert (conns.loc[~same, "snat_ip"] == tunnel_ip[~same]).all()  # N3: the 172.x
    assert (conns["gateway_direct_ip"] == conns["snat_ip"]).all()
    assert (conns["app_remote_ip"] == conns["snat_ip"]).all()
    assert result.summary()["client_ip_seen_pct"] == 0.0
    assert set(conns.loc[~same, "snat_ip"]) == {"172.16.3.0"}


def test_local_drop_times_out_and_reject_is_refused() -> None:
    short = {"duration_s": 3.0, "rate_per_s": 50.0}
    dropped = sim.simulate(replace(presets.local_naive, **short)).connections
    assert set(dropped["outcome"]) == {"timeout"}
    assert set(dropped["reason"]) == {"drop_no_local_endpoint"}
    waited = dropped["t_end"] - dropped["t_start"]
    assert waited.round(9).eq(presets.local_naive.client_timeout_s).all()
    # No endpoints at all: REJECT (the naive announcer still attracts the traffic).
    rejected = sim.simulate(replace(presets.local_naive, gateway_nodes=(), **short)).connections
    assert set(rejected["outcome"]) == {"refused"}
    assert set(rejected["reason"]) == {"reject_no_endpoints"}
    assert (rejected["t_end"] == rejected["t_start"]).all()


def test_cluster_tail_to_a_dead_nodes_pod_until_grace_period_ends() -> None:
    grace, delay, fail_at = 10.0, 1.0, 5.0
    sc = replace(
        presets.cluster,
        gateway_nodes=("node-2", "node-3", "node-3"),  # node-2 holds 1 of 3 endpoints
        duration_s=25.0,
        rate_per_s=400.0,
        node_monitor_grace_period_s=grace,
        endpoint_update_delay_s=delay,
        failures=(sim.NodeDown(node="node-2", at_s=fail_at),),
    )
    result = sim.simulate(sc)
    conns = result.connections
    tail_end = fail_at + grace + delay
    in_tail = conns[(conns["t_start"] > fail_at) & (conns["t_start"] < tail_end)]
    dead_share = (in_tail["reason"] == "dead_node").mean()
    assert dead_share == pytest.approx(1 / 3, abs=0.04)  # K14 uniform, K15 still Ready
    assert set(in_tail.loc[in_tail["reason"] == "dead_node", "gateway_pod"]) == {"gw-1"}
    after = conns[conns["t_start"] > tail_end]
    assert (after["outcome"] == "ok").all()
    kinds = list(result.events["kind"])
    assert "node_not_ready" in kinds
    not_ready = result.events[result.events["kind"] == "node_not_ready"]["t"].iloc[0]
    assert not_ready == pytest.approx(fail_at + grace)
    # The VIP never moved: node-2 was not the announcer (M5).
    assert list(result.events.loc[result.events["kind"] == "elected", "node"]) == ["node-3"]
