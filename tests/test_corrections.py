"""The expert review's corrections (FACTS section F), one test each; each failed before them.

M17 conntrack on VIP moves, K18 graceful pod moves, H10 health-check timing, C1 Calico
encapsulation, K17 SNAT ports, T1 SYN retransmissions, I9 the sidecar's hop, and failure events
that must lie within the run. The H10 acceptance case (``haproxy_nodeports``, DOWN 9-13 s after
a power-off) is in ``tests/test_haproxy_nodeports.py``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sim_checks import assert_every_connection_accounted

import sim
from sim import presets
from sim.cli import main

# ----------------------------------------------------------------------------- M17: conntrack


def _takeover_times(result: sim.Result) -> list[float]:
    events = result.events
    return [float(t) for t in events.loc[events["kind"] == "elected", "t"]][1:]


@pytest.mark.parametrize("name", ["cluster", "proxy_protocol"])
def test_long_connections_are_hit_twice_by_one_node_failure(name: str) -> None:
    # node-3 announces the VIP, dies at 30 s and comes back at 60 s. Its connections stall with
    # it; at the failover the clients' ARP entries move to node-1, and their next packet meets
    # no conntrack entry there: reset (M17). When node-3 takes the VIP back, the connections
    # through node-1 are reset the same way. Behind HAProxy it is HAProxy's ARP entry that
    # moves, and its server-side connections die.
    down = sim.NodeDown(node="node-3", at_s=30.0, up_at_s=60.0)
    sc = replace(
        presets.get(name), duration_s=100.0, rate_per_s=20.0, request_time_s=30.0, failures=(down,)
    )
    result = sim.simulate(sc)
    assert_every_connection_accounted(result)
    failover, takeback = _takeover_times(result)
    conns = result.connections
    lost = conns[conns["reason"] == "conntrack_lost"]
    assert set(lost["outcome"]) == {"reset"}
    assert set(lost["t_end"]) == {failover, takeback}  # reset at once, at each move
    first, second = lost[lost["t_end"] == failover], lost[lost["t_end"] == takeback]
    assert len(first) > 10 and set(first["entry_node"]) == {"node-3"}
    assert len(second) > 10 and set(second["entry_node"]) == {"node-1"}
    assert (second["t_connected"] > failover).all()  # established after the failover
    # What stalled with node-3 and did not outlive the client's patience, or went to its pod
    # from another node, ended as a time-out when node-3 died.
    stalled = conns[conns["reason"] == "node_down_in_flight"]
    assert (stalled["t_end"] == down.at_s + sc.client_timeout_s).all()
    assert result.summary()["failed_conntrack_lost"] == len(lost)


def test_only_what_is_in_flight_at_the_move_is_lost_and_nodeports_lose_nothing() -> None:
    down = (sim.NodeDown(node="node-3", at_s=10.0, up_at_s=20.0),)
    short = sim.simulate(replace(presets.cluster, duration_s=40.0, failures=down))
    # 20 ms requests at 50 per second: about one is in flight at the take-back.
    assert short.summary().get("failed_conntrack_lost", 0) <= 3
    # HAProxy's nodeports backend and NodePort clients use the nodes' own addresses, not the VIP.
    long = {"duration_s": 40.0, "request_time_s": 30.0, "failures": down}
    for sc in (
        replace(presets.haproxy_nodeports, **long),
        replace(presets.cluster, client_target="nodeport", **long),
    ):
        assert "failed_conntrack_lost" not in sim.simulate(sc).summary()


def test_haproxy_http_reports_a_lost_conntrack_as_502() -> None:
    down = sim.NodeDown(node="node-3", at_s=30.0, up_at_s=60.0)
    sc = replace(
        presets.haproxy_http_xff,
        duration_s=100.0,
        rate_per_s=20.0,
        request_time_s=30.0,
        failures=(down,),
    )
    conns = sim.simulate(sc).connections
    lost = conns[conns["reason"] == "conntrack_lost"]
    assert len(lost) > 0 and set(lost["outcome"]) == {"http_502"}  # H7: HAProxy answers


# -------------------------------------------------------------------- K18: graceful pod moves


def test_a_rollout_under_cluster_loses_no_connection_and_a_forced_delete_does() -> None:
    base = replace(presets.cluster, duration_s=30.0, rate_per_s=100.0, request_time_s=0.5)
    move = sim.simulate(
        replace(base, failures=(sim.MovePod(pod="gw-2", to_node="node-1", at_s=5),))
    )
    assert (move.connections["outcome"] == "ok").all()
    kinds = list(move.events["kind"])
    # The new pod starts first; the old one terminates once it is Ready, then drains.
    assert kinds.index("pod_created") < kinds.index("pod_ready") < kinds.index("pod_terminating")
    assert kinds.index("pod_terminating") < kinds.index("pod_exited")
    assert move.pods.iloc[-1]["node"] == "node-1"
    graceful = sim.simulate(replace(base, failures=(sim.DeletePod(pod="gw-2", at_s=5.0),)))
    assert (graceful.connections["outcome"] == "ok").all()
    forced = sim.DeletePod(pod="gw-2", at_s=5.0, force=True)
    lost = sim.simulate(replace(base, failures=(forced,))).connections
    assert (lost["outcome"] != "ok").sum() > 0
    assert {"pod_deleted_in_flight", "pod_gone"} <= set(lost["reason"])


def test_terminating_endpoints_are_a_fallback_and_fail_the_health_check() -> None:
    # K12: with no Ready endpoint left, kube-proxy uses serving-terminating ones; K11: the
    # healthCheckNodePort counts Ready ones only; M4: MetalLB keeps announcing for them.
    from sim.net.kube_proxy import FORWARD, KubeProxy

    kp = KubeProxy(nodes=2, local_policy=True)
    kp.set_endpoints([(1, 1)], terminating=[(0, 0)])
    assert kp.route_external(0, 0.5) == (FORWARD, 0)  # node-1's only pod is terminating
    assert kp.health_check(0) == (503, 0)
    assert kp.local_usable(0) == 1
    kp.set_endpoints([(0, 0), (1, 0)], terminating=[(2, 0)])
    assert {kp.route_external(0, u / 10)[1] for u in range(10)} == {0, 1}  # Ready first


def test_graceful_delete_resets_what_outlasts_the_drain() -> None:
    sc = replace(
        presets.cluster,
        duration_s=30.0,
        rate_per_s=50.0,
        request_time_s=20.0,
        failures=(sim.DeletePod(pod="gw-2", at_s=5.0),),
    )
    result = sim.simulate(sc)
    cut = result.connections[result.connections["reason"] == "pod_deleted_in_flight"]
    exited = result.events.loc[result.events["kind"] == "pod_exited", "t"]
    assert len(cut) > 0 and set(cut["t_end"]) == {5.0 + sc.termination_drain_s} == set(exited)


# ------------------------------------------------------------------- C1: Calico encapsulation


def test_cross_subnet_shows_node_ips_where_vxlan_shows_tunnel_ips() -> None:
    base = replace(presets.cluster, duration_s=5.0)
    nodes = sim.simulate(base).nodes.set_index("node")
    seen = {}
    for mode in ("VXLAN", "IPIP", "VXLANCrossSubnet", "IPIPCrossSubnet", "None"):
        conns = sim.simulate(replace(base, encapsulation=mode)).connections
        seen[mode] = set(conns["gateway_direct_ip"])
    node_ips, tunnel_ips = set(nodes["node_ip"]), set(nodes["tunnel_ip"])
    assert seen["VXLAN"] & tunnel_ips and seen["IPIP"] & tunnel_ips  # the story's 172.x
    for mode in ("VXLANCrossSubnet", "IPIPCrossSubnet", "None"):
        assert seen[mode] <= node_ips, mode
    assert seen["VXLANCrossSubnet"] == {"10.0.0.13"}  # node-3, the VIP's node, for both pods
    assert set(sim.simulate(replace(base, encapsulation="None")).nodes["tunnel_ip"]) == {""}


@pytest.mark.parametrize(
    ("mode", "device"),
    [("VXLAN", "vxlan.calico"), ("IPIP", "tunl0"), ("VXLANCrossSubnet", "eth0"), ("None", "eth0")],
)
def test_the_trace_names_the_egress_device(mode: str, device: str) -> None:
    sc = replace(presets.cluster, duration_s=5.0, encapsulation=mode)
    conns = sim.simulate(sc).connections
    remote = conns[(conns["outcome"] == "ok") & (conns["gateway_node"] != conns["entry_node"])]
    hops = sim.trace(sc, conn_id=int(remote["conn_id"].iloc[0]))
    masquerade = hops.loc[hops["element"].str.endswith("kube-proxy"), "rewrite"].iloc[0]
    assert f"via {device}" in masquerade and "C1" in masquerade
    local = conns[(conns["outcome"] == "ok") & (conns["gateway_node"] == conns["entry_node"])]
    hops = sim.trace(sc, conn_id=int(local["conn_id"].iloc[0]))
    assert "via cali* veth" in hops.loc[1, "rewrite"]


def test_encapsulation_is_a_set_key_and_is_validated(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "cluster", "--set", "encapsulation=None", "--set", "duration_s=2"]) == 0
    assert main(["run", "cluster", "--set", "encapsulation=Always"]) == 2
    err = capsys.readouterr().err
    assert "encapsulation" in err and "VXLANCrossSubnet" in err
    with pytest.raises(ValueError, match="encapsulation"):
        sim.Scenario(encapsulation="vxlan")  # type: ignore[arg-type]


# ------------------------------------------------------------------------ K17: SNAT ports


def test_snat_ports_are_rewritten_under_cluster_and_kept_under_local() -> None:
    for name, kept in (("cluster", False), ("local", True), ("pp_missing", False)):
        conns = sim.simulate(replace(presets.get(name), duration_s=10.0)).connections
        reached = conns[conns["gateway_direct_ip"] != ""]
        same = reached["gateway_direct_port"] == reached["client_port"]
        if kept:
            assert same.all(), name
        else:
            assert not same.any(), name  # --random-fully: a fresh random port
            ports = reached["gateway_direct_port"]
            assert ports.between(1024, 65535).all() and ports.nunique() > 0.9 * len(ports)
    # Behind HAProxy under Cluster the port is random too, and PROXY carries the client's.
    sc = replace(presets.proxy_protocol, duration_s=5.0)
    conns = sim.simulate(sc).connections
    hops = sim.trace(sc, conn_id=0)
    row = conns.iloc[0]
    assert hops.loc[2, "src"] == f"{row['gateway_direct_ip']}:{row['gateway_direct_port']}"
    assert f"DRA = {row['client_ip']}:{row['client_port']}" in hops.loc[3, "rewrite"]


def test_snat_ports_are_deterministic_for_a_seed() -> None:
    sc = replace(presets.cluster, duration_s=5.0)
    a = sim.simulate(sc).connections["gateway_direct_port"]
    b = sim.simulate(sc).connections["gateway_direct_port"]
    c = sim.simulate(replace(sc, seed=1)).connections["gateway_direct_port"]
    assert a.equals(b) and not a.equals(c)


# --------------------------------------------------------------- T1: SYN retransmissions


def test_connections_started_just_before_the_garp_mostly_succeed_late() -> None:
    # Local: after the failover every connection goes to node-2's own pod. (Under Cluster about
    # half would still be DNATed to the dead node's pod, Ready until NotReady, K15, and stay
    # pinned to it by conntrack.)
    sc = replace(
        presets.local,
        duration_s=60.0,
        rate_per_s=50.0,
        failures=(sim.NodeDown(node="node-3", at_s=20.0),),
    )
    result = sim.simulate(sc)
    (garp,) = _takeover_times(result)
    conns = result.connections
    window = conns[conns["t_start"].between(garp - 1.0, garp, inclusive="left")]
    assert len(window) > 20
    ok = window[window["outcome"] == "ok"]
    assert len(ok) / len(window) > 0.5  # the retransmitted SYN reaches the new announcer
    assert (ok["syn_sent"] > 1).all()
    assert (ok["t_connected"] >= garp).all() and (ok["t_connected"] < ok["t_start"] + 3.5).all()
    # The gap counts established connections: from the failure to the takeover at least.
    assert result.summary()["failover_gap_s"] >= garp - 20.0 - 0.1


def test_syns_follow_linux_and_haproxy_schedules() -> None:
    # A connection that never gets an answer: SYNs at 0, 1, 3, 7 s within the 10 s timeout
    # (T1); behind HAProxy its server-side connection also retries after timeout connect (H10).
    direct = sim.simulate(replace(presets.local_naive, duration_s=3.0)).connections
    assert set(direct["syn_sent"]) == {4} and set(direct["outcome"]) == {"timeout"}
    assert ((direct["t_end"] - direct["t_start"]).round(9) == 10.0).all()
    assert direct["t_connected"].isna().all()
    naive_haproxy = replace(presets.local_naive, haproxy=sim.HAProxyConfig(check=False))
    behind = sim.simulate(replace(naive_haproxy, duration_s=3.0)).connections
    assert set(behind["syn_sent"]) == {6}  # 0, 1, 3 | retry at 6: 6, 7, 9
    from sim.net.haproxy import HAProxy

    hap = HAProxy(sim.HAProxyConfig(), ip="10.0.0.5", frontend_ip="10.0.0.5", frontend_port=80)
    assert hap.syn_offsets(10.0) == (0.0, 1.0, 3.0, 6.0, 7.0, 9.0)


def test_the_default_client_timeout_is_a_real_clients() -> None:
    assert sim.Scenario().client_timeout_s == 10.0


# ------------------------------------------------------------------------ I9: sidecar hop


def test_the_sidecar_forwards_to_the_app_on_the_pod_ip() -> None:
    hops = sim.trace(replace(presets.cluster, duration_s=2.0))
    last = hops.iloc[-1]
    assert last["dst"] == "172.16.1.50:8080" and last["src"].startswith("127.0.0.6:")
    assert "I9" in last["rewrite"]


# ------------------------------------------------------------------- validation of events


@pytest.mark.parametrize(
    "event",
    [
        sim.NodeDown(node="node-2", at_s=500.0),
        sim.DeletePod(pod="gw-1", at_s=30.0),
        sim.MovePod(pod="gw-1", to_node="node-1", at_s=31.0),
    ],
)
def test_a_failure_at_or_after_the_end_is_rejected(event: sim.NodeDown) -> None:
    with pytest.raises(ValueError, match=r"failures\[0\]\.at_s"):
        replace(presets.cluster, duration_s=30.0, failures=(event,))


@pytest.mark.parametrize(
    "option",
    [
        ["--node-down", "node-2@500"],
        ["--delete-pod", "gw-1@30"],
        ["--move-pod", "gw-1:node-1@99"],
    ],
)
def test_the_cli_rejects_late_failures(
    option: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "cluster", "--set", "duration_s=30", *option]) == 2
    err = capsys.readouterr().err
    assert err.startswith("srcip-lab: error: failures[0].at_s") and len(err.splitlines()) == 1


def test_the_cli_deletes_and_moves_pods(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "cluster", "--set", "duration_s=20", "--events", "/dev/null"]
    assert main([*argv, "--delete-pod", "gw-1@5:force", "--move-pod", "gw-2:node-1@6"]) == 0
    assert "failed_pod_gone" in capsys.readouterr().out
    assert main([*argv, "--delete-pod", "gw-1@5:soon"]) == 2
    assert "POD@AT or POD@AT:force" in capsys.readouterr().err
