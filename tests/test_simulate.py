"""End-to-end behaviour of sim.simulate: PROXY pitfalls, XFF trust, health checks, records."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
from sim_checks import assert_every_connection_accounted

import sim
from sim import presets
from sim.results import CONNECTION_COLUMNS, EVENT_COLUMNS

SHORT = {"duration_s": 4.0, "rate_per_s": 50.0}


def test_proxy_protocol_delivers_the_client_ip_through_cluster_snat() -> None:
    conns = sim.simulate(replace(presets.proxy_protocol, **SHORT)).connections
    assert (conns["outcome"] == "ok").all()
    assert (conns["path"] == "haproxy").all()
    assert (conns["gateway_client_ip"] == conns["client_ip"]).all()  # E1, E7
    assert (conns["app_remote_ip"] == conns["client_ip"]).all()  # E9
    assert (conns["gateway_direct_ip"] == conns["snat_ip"]).all()  # the L4 peer stays SNAT
    assert conns["snat_ip"].isin(["10.0.0.13", "172.16.3.0"]).all()


def test_pp_missing_is_closed_and_pp_unexpected_gets_400() -> None:
    missing = sim.simulate(replace(presets.pp_missing, **SHORT)).connections
    assert set(missing["outcome"]) == {"reset"}  # E5
    assert set(missing["reason"]) == {"proxy_header_missing"}
    assert (missing["xff_at_app"] == "").all()
    unexpected = sim.simulate(replace(presets.pp_unexpected, **SHORT)).connections
    assert set(unexpected["outcome"]) == {"http_400"}  # E6
    assert set(unexpected["reason"]) == {"proxy_header_unexpected"}


@pytest.mark.parametrize(("trusted", "spoofed"), [(0, False), (1, True)])
def test_num_trusted_proxies_with_client_sent_xff(trusted: int, spoofed: bool) -> None:
    sc = replace(presets.proxy_protocol, client_xff="6.6.6.6", num_trusted_proxies=trusted, **SHORT)
    conns = sim.simulate(sc).connections
    assert (conns["outcome"] == "ok").all()
    if spoofed:  # I5: the client's own XFF entry becomes the trusted address
        assert (conns["gateway_client_ip"] == "6.6.6.6").all()
        assert (conns["x_envoy_external_address"] == "6.6.6.6").all()
    else:
        assert (conns["gateway_client_ip"] == conns["client_ip"]).all()
        assert (conns["x_envoy_external_address"] == conns["client_ip"]).all()
    # E8: the gateway appends the PROXY source after the client's entry either way.
    assert (conns["xff_at_app"] == "6.6.6.6," + conns["client_ip"]).all()
    assert (conns["app_remote_ip"] == conns["client_ip"]).all()


def test_haproxy_http_forwardfor_leaves_the_snat_address_last() -> None:
    conns = sim.simulate(replace(presets.haproxy_http_xff, **SHORT)).connections
    assert (conns["outcome"] == "ok").all()
    assert (conns["gateway_client_ip"] == conns["client_ip"]).all()  # N=1 trusts HAProxy's XFF
    assert (conns["xff_at_app"] == conns["client_ip"] + "," + conns["snat_ip"]).all()  # C4
    assert (conns["app_remote_ip"] == conns["snat_ip"]).all()


def test_in_cluster_callers_are_short_circuited() -> None:
    sc = replace(presets.proxy_protocol, in_cluster_share=0.3, **SHORT)
    conns = sim.simulate(sc).connections
    inside = conns[conns["path"] == "in_cluster"]
    assert 0.15 < len(inside) / len(conns) < 0.45
    assert set(inside["reason"]) == {"proxy_header_missing"}  # K8: no PROXY header, E5
    assert inside["client_ip"].str.startswith("172.16.").all()
    # K2a: under Local, pod sources skip the masquerade mark (under Cluster they do not, K1:
    # see tests/test_model_review.py).
    plain = sim.simulate(replace(presets.local, in_cluster_share=0.3, **SHORT)).connections
    inside = plain[plain["path"] == "in_cluster"]
    assert (inside["outcome"] == "ok").all()
    assert (inside["snat_ip"] == "").all()  # K2a: no masquerade for pod sources
    assert (inside["app_remote_ip"] == inside["client_ip"]).all()


def test_haproxy_local_checks_pass_while_traffic_gets_400() -> None:
    result = sim.simulate(replace(presets.pp_unexpected, duration_s=12.0, rate_per_s=20.0))
    assert set(result.connections["outcome"]) == {"http_400"}
    assert "haproxy_check" not in set(result.events["kind"])  # H5: the server stays UP


def test_haproxy_checks_mark_the_server_down_and_up_when_the_path_dies() -> None:
    sc = replace(
        presets.pp_unexpected,
        duration_s=40.0,
        rate_per_s=20.0,
        failures=(
            sim.NodeDown(node="node-2", at_s=5.0, up_at_s=20.0),
            sim.NodeDown(node="node-3", at_s=5.0, up_at_s=20.0),
        ),
    )
    result = sim.simulate(sc)
    checks = result.events[result.events["kind"] == "haproxy_check"]
    assert checks["detail"].str.contains("is DOWN").iloc[0]
    assert checks["detail"].str.contains("is UP").iloc[-1]
    down_at = checks["t"].iloc[0]
    cfg = sc.haproxy
    assert cfg is not None
    # H10: after passing checks, `fall` checks that each wait out their timeout, the next one
    # `inter` after the last completed, mark it DOWN: phase + timeout + (fall-1)(timeout+inter).
    timeout = cfg.inter_s  # `timeout check` unset
    first = 5.0 + timeout + (cfg.fall - 1) * (timeout + cfg.inter_s)
    assert first <= down_at < first + cfg.inter_s
    conns = result.connections
    no_server = conns[conns["reason"] == "haproxy_no_server"]
    assert len(no_server) > 0
    assert set(no_server["outcome"]) == {"reset"}  # mode tcp: HAProxy closes the client
    assert no_server["t_start"].min() >= down_at


def test_delete_pod_is_recreated_with_a_new_address() -> None:
    sc = replace(
        presets.cluster,
        duration_s=20.0,
        rate_per_s=100.0,
        failures=(sim.DeletePod(pod="gw-2", at_s=5.0, force=True),),
    )
    result = sim.simulate(sc)
    pods = result.pods[result.pods["pod"] == "gw-2"]
    assert len(pods) == 2 and pods["pod_ip"].nunique() == 2
    kinds = list(result.events["kind"])
    assert kinds.index("pod_deleted") < kinds.index("pod_created") < kinds.index("pod_ready")
    conns = result.connections
    # A forced delete: kube-proxy sends new connections to the vanished pod until it sees the
    # change; their retransmitted SYNs stay pinned to it by conntrack (K14, T1).
    gone = conns[conns["reason"] == "pod_gone"]
    assert len(gone) > 0
    assert gone["t_start"].between(5.0, 5.0 + sc.endpoint_update_delay_s).all()
    late = conns[conns["t_start"] > 5.0 + sc.pod_start_s + sc.endpoint_update_delay_s + 0.1]
    assert (late["outcome"] == "ok").all() and "gw-2" in set(late["gateway_pod"])


def test_move_pod_moves_a_local_vip_with_it() -> None:
    sc = replace(
        presets.local,
        duration_s=20.0,
        rate_per_s=20.0,
        failures=(sim.MovePod(pod="gw-2", to_node="node-1", at_s=5.0),),
    )
    result = sim.simulate(sc)
    elected = result.events[result.events["kind"] == "elected"]
    # A rollout: node-3 keeps the VIP until the old gw-2 has drained, then node-1 wins (M3, K18).
    assert list(elected["node"]) == ["node-3", "node-1"]
    assert result.pods.iloc[-1]["node"] == "node-1"


def _run_with_failures(name: str, seed: int) -> sim.Result:
    sc = replace(
        presets.get(name),
        seed=seed,
        duration_s=30.0,
        rate_per_s=60.0,
        in_cluster_share=0.1,
        failures=(
            sim.NodeDown(node="node-3", at_s=6.0, up_at_s=18.0),
            sim.DeletePod(pod="gw-1", at_s=10.0),
        ),
    )
    return sim.simulate(sc)


@pytest.mark.parametrize("name", ["cluster", "local", "proxy_protocol", "haproxy_http_xff"])
def test_conservation(name: str) -> None:
    result = _run_with_failures(name, seed=3)
    conns = result.connections
    assert list(conns.columns) == list(CONNECTION_COLUMNS)
    assert list(result.events.columns) == list(EVENT_COLUMNS)
    assert list(conns["conn_id"]) == list(range(len(conns)))
    assert_every_connection_accounted(result)
    assert result.events["t"].is_monotonic_increasing


def test_in_flight_connections_die_with_their_node() -> None:
    sc = replace(
        presets.cluster,
        duration_s=12.0,
        rate_per_s=400.0,
        request_time_s=0.5,
        failures=(sim.NodeDown(node="node-2", at_s=5.0),),
    )
    conns = sim.simulate(sc).connections
    broken = conns[conns["reason"] == "node_down_in_flight"]
    assert len(broken) > 0
    assert (broken["t_start"] < 5.0).all()
    assert (broken["gateway_node"] == "node-2").all()  # entry is node-3, the pod was on node-2


def test_same_seed_same_frames_different_seed_different() -> None:
    a = _run_with_failures("proxy_protocol", seed=11)
    b = _run_with_failures("proxy_protocol", seed=11)
    c = _run_with_failures("proxy_protocol", seed=12)
    pd.testing.assert_frame_equal(a.connections, b.connections)
    pd.testing.assert_frame_equal(a.events, b.events)
    assert a.summary() == b.summary()
    assert not a.connections.equals(c.connections)


def test_compare_and_summary_frame() -> None:
    frame = sim.compare(
        {"c": replace(presets.cluster, **SHORT), "n": replace(presets.local_naive, **SHORT)}
    )
    assert list(frame["scenario"]) == ["c", "n"]
    assert list(frame["failed_drop_no_local_endpoint"]) == [0, frame.loc[1, "connections"]]
    one = sim.simulate(replace(presets.local, **SHORT))
    assert one.summary_frame().iloc[0]["reachability_pct"] == 100.0
    assert one.summary()["share_gw-2"] == 100.0


def test_trace_follows_one_connection() -> None:
    sc = replace(presets.proxy_protocol, **SHORT)
    hops = sim.trace(sc)
    assert list(hops["hop"]) == list(range(1, len(hops) + 1))
    assert hops["element"].iloc[1] == "haproxy (tcp)"
    header = bytes.fromhex(hops["proxy_header_hex"].iloc[1])
    assert header.startswith(b"\r\n\r\n\x00\r\nQUIT\n") and len(header) == 28  # H3
    row = sim.simulate(sc).connections.iloc[0]
    assert hops["src"].iloc[0] == f"{row['client_ip']}:{row['client_port']}"
    assert hops["xff"].iloc[-1] == row["xff_at_app"]
    failed = sim.trace(replace(presets.local_naive, **SHORT), conn_id=2)
    assert "DROP" in failed["rewrite"].iloc[-1]
    with pytest.raises(ValueError, match="conn_id"):
        sim.trace(sc, conn_id=10**6)
    # Nothing succeeds under the naive announcer: the first connection is traced instead.
    first = sim.trace(replace(presets.local_naive, **SHORT))
    assert first.attrs == {
        "conn_id": 0,
        "outcome": "timeout",
        "reason": "drop_no_local_endpoint",
    }
    assert "DROP" in first["rewrite"].iloc[-1]


@pytest.mark.parametrize("policy", ["Cluster", "Local"])
def test_nodeport_via_a_node_without_a_local_endpoint(policy: str) -> None:
    """K7: NodePort on node-1 (no gateway pod) is dropped under Local and SNAT'd under Cluster;
    MetalLB plays no part (the client connects to the node's own address)."""
    sc = replace(
        presets.cluster, external_traffic_policy=policy, client_target="nodeport", duration_s=20.0
    )
    conns = sim.simulate(sc).connections
    assert set(conns["entry_node"]) == {"node-1", "node-2", "node-3"}  # spread over all nodes
    via_node1 = conns[conns["entry_node"] == "node-1"]
    others = conns[conns["entry_node"] != "node-1"]
    assert (others["outcome"] == "ok").all()
    if policy == "Local":
        assert (via_node1["outcome"] == "timeout").all()
        assert set(via_node1["reason"]) == {"drop_no_local_endpoint"}
        assert (others["app_remote_ip"] == others["client_ip"]).all()  # K2: client IP kept
        # Local serves on the entry node only: node-2's NodePort -> gw-1, node-3's -> gw-2.
        assert set(zip(others["entry_node"], others["gateway_node"], strict=True)) == {
            ("node-2", "node-2"),
            ("node-3", "node-3"),
        }
    else:
        assert (via_node1["outcome"] == "ok").all()
        assert (via_node1["snat_ip"] == "172.16.1.0").all()  # node-1's tunnel IP (N3)
        assert not (conns["app_remote_ip"] == conns["client_ip"]).any()


def test_nodeport_is_for_clients_without_haproxy() -> None:
    with pytest.raises(ValueError, match=r"^client_target: 'nodeport'"):
        replace(presets.proxy_protocol, client_target="nodeport")
    with pytest.raises(ValueError, match=r"^client_target: allowed values"):
        replace(presets.cluster, client_target="loadbalancer")  # type: ignore[arg-type]


def test_progress_bar_does_not_change_the_result(capsys: pytest.CaptureFixture[str]) -> None:
    sc = replace(
        presets.proxy_protocol, duration_s=20.0, failures=(sim.NodeDown(node="node-3", at_s=5.0),)
    )
    quiet = sim.simulate(sc)
    shown = sim.simulate(sc, progress=True)
    pd.testing.assert_frame_equal(quiet.connections, shown.connections)
    pd.testing.assert_frame_equal(quiet.events, shown.events)
    assert "simulated time" in capsys.readouterr().err


def test_simulate_restores_the_garbage_collector() -> None:
    import gc

    assert gc.isenabled()
    sim.simulate(replace(presets.cluster, duration_s=1.0))
    assert gc.isenabled()
    gc.disable()
    try:
        sim.simulate(replace(presets.cluster, duration_s=1.0))
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()
