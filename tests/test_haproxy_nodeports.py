"""HAProxy straight to every node's NodePort, health-checked, MetalLB bypassed (FACTS section E)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sim_checks import assert_every_connection_accounted

import sim
from sim import presets
from sim.cli.simulate import COMPARE_PRESETS
from sim.net.haproxy import HTTPCHK_REQUEST, HAProxy
from sim.proxy_protocol import Command, decode
from sim.topology import Topology

PRESET = presets.haproxy_nodeports
CLUSTER = replace(PRESET, external_traffic_policy="Cluster")
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def _hap(servers: int = 3) -> HAProxy:
    return HAProxy(
        sim.HAProxyConfig(send_proxy="v2", backend="nodeports"),
        ip="10.0.0.5",
        frontend_ip="10.0.0.5",
        frontend_port=80,
        servers=servers,
    )


def test_roundrobin_serves_the_up_servers_in_turn() -> None:
    hap = _hap()
    assert [hap.pick() for _ in range(6)] == [0, 1, 2, 0, 1, 2]
    assert hap.record_check(False, 1) == "DOWN"  # a new server falls at its first failure (H5)
    assert [hap.pick() for _ in range(4)] == [0, 2, 0, 2]
    assert hap.record_check(False, 0) == "DOWN" and hap.record_check(False, 2) == "DOWN"
    assert not hap.server_up and hap.pick() == -1
    assert hap.record_check(True, 1) is None  # rise=2 passes bring it back (H5)
    assert hap.record_check(True, 1) == "UP"
    assert hap.server_up and [hap.pick() for _ in range(2)] == [1, 1]


def test_cluster_spreads_connections_evenly_over_every_node() -> None:
    conns = sim.simulate(replace(CLUSTER, duration_s=10.0)).connections
    assert (conns["outcome"] == "ok").all()
    counts = conns["entry_node"].value_counts()
    assert set(counts.index) == {"node-1", "node-2", "node-3"}
    assert counts.max() - counts.min() <= 1  # roundrobin over three UP servers
    # Cluster SNATs on the entry node (K1); PROXY v2 still carries the client (H1, E1).
    assert (conns["snat_ip"] != "").all()
    assert (conns["gateway_client_ip"] == conns["client_ip"]).all()


def test_local_marks_the_node_without_a_pod_down_and_sends_it_nothing() -> None:
    sc = replace(PRESET, duration_s=20.0)
    result = sim.simulate(sc)
    checks = result.events[result.events["kind"] == "haproxy_check"]
    assert list(checks["node"]) == ["node-1"]  # node-2 and node-3 hold a Ready pod (K11)
    detail = checks["detail"].iloc[0]
    assert "node-1 (10.0.0.11:30080, check port 30081) is DOWN" in detail
    assert "-> 503 (0 local Ready endpoint(s)" in detail
    down_at = float(checks["t"].iloc[0])
    assert sc.haproxy is not None and down_at <= sc.haproxy.inter_s  # first check fails (H5)
    conns = result.connections
    early = conns[conns["entry_node"] == "node-1"]
    assert set(early["reason"]) == {"drop_no_local_endpoint"}  # K7 until the check fails
    assert (early["t_start"] < down_at).all()
    later = conns[conns["t_start"] > down_at]
    assert (later["outcome"] == "ok").all()
    counts = later["entry_node"].value_counts()
    assert set(counts.index) == {"node-2", "node-3"}
    assert counts.max() - counts.min() <= 1  # the load is spread over the nodes with pods
    ok = conns[conns["outcome"] == "ok"]
    assert (ok["snat_ip"] == "").all()  # Local: no SNAT (K2)
    assert (ok["gateway_direct_ip"] == "10.0.0.5").all()  # the peer is HAProxy
    assert (ok["gateway_client_ip"] == ok["client_ip"]).all()  # PROXY v2 (H1, E1)
    assert (ok["app_remote_ip"] == ok["client_ip"]).all()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_powered_off_node_is_marked_down_9_to_13_s_later(seed: int) -> None:
    """H10: each check of the black-holed server waits out its 2 s timeout and the next starts
    ``inter`` after it completed: DOWN 9-13 s after the failure (measured: 11.1 s), not
    ``inter x fall`` = 6 s."""
    at = 10.0
    failures = (sim.NodeDown(node="node-3", at_s=at),)
    sc = replace(PRESET, duration_s=30.0, seed=seed, failures=failures)
    result = sim.simulate(sc)
    checks = result.events[result.events["kind"] == "haproxy_check"]
    down = checks[checks["node"] == "node-3"]
    assert len(down) == 1 and "is DOWN: connect timeout (node-3 is down)" in down["detail"].iloc[0]
    assert "check duration 2000 ms" in down["detail"].iloc[0]
    down_at = float(down["t"].iloc[0])
    assert 9.0 <= down_at - at <= 13.0
    conns = result.connections
    lost = conns[conns["outcome"] != "ok"]
    window = lost[lost["entry_node"] == "node-3"]
    # K14: connections in flight at the power-off, then new ones until the server is DOWN.
    assert len(window) > 0 and window["t_start"].between(at - 1.0, down_at).all()
    later = conns[conns["t_start"] > down_at]
    assert (later["outcome"] == "ok").all()
    assert set(later["entry_node"]) == {"node-2"}
    # No ARP, no MetalLB: the VIP's failover plays no part in the client's path.
    assert (conns["path"] == "haproxy").all()


def test_fastinter_shortens_the_way_down() -> None:
    # H10, lab: inter 2s fall 3 fastinter 500ms: DOWN 8.1 s after the black hole, not 11.1 s.
    at = 10.0
    failures = (sim.NodeDown(node="node-3", at_s=at),)
    fast = replace(PRESET.haproxy, fastinter_s=0.5) if PRESET.haproxy else None
    times = []
    for haproxy in (PRESET.haproxy, fast):
        sc = replace(PRESET, duration_s=30.0, haproxy=haproxy, failures=failures)
        checks = sim.simulate(sc).events
        down = checks[(checks["kind"] == "haproxy_check") & (checks["node"] == "node-3")]
        times.append(float(down["t"].iloc[0]) - at)
    slow_s, fast_s = times
    assert fast_s == pytest.approx(slow_s - 3.0)  # two gaps of 0.5 s instead of 2 s


def test_every_server_down_is_haproxy_no_server() -> None:
    sc = replace(
        PRESET,
        duration_s=20.0,
        failures=(sim.NodeDown(node="node-2", at_s=2.0), sim.NodeDown(node="node-3", at_s=2.0)),
    )
    conns = sim.simulate(sc).connections
    no_server = conns[conns["reason"] == "haproxy_no_server"]
    assert len(no_server) > 0 and set(no_server["outcome"]) == {"reset"}  # mode tcp
    assert no_server["t_start"].min() > 2.0
    trace = sim.trace(sc, int(no_server["conn_id"].iloc[0]))
    assert trace["rewrite"].iloc[-1] == "every server DOWN (H5)"


def test_checks_with_an_explicit_port_carry_no_proxy_header() -> None:
    # H4: `check port <healthCheckNodePort>` disables PROXY on the checks (lab: exactly this).
    local = Topology(replace(PRESET, duration_s=10.0))
    local.run()
    assert set(local.check_payloads) == {HTTPCHK_REQUEST}
    assert HTTPCHK_REQUEST == b"GET /healthz HTTP/1.0\r\n\r\n"
    assert sum(local.check_payloads.values()) >= 3 * 4  # three servers, every 2 s
    # Cluster: TCP checks to the NodePort itself, as v2 LOCAL (16 bytes, H4).
    cluster = Topology(replace(CLUSTER, duration_s=10.0))
    cluster.run()
    (payload,) = cluster.check_payloads
    assert len(payload) == 16 and payload.startswith(V2_SIGNATURE)
    decoded = decode(payload)
    assert decoded is not None
    header, used = decoded
    assert used == 16 and header.command == Command.LOCAL
    assert _hap().check_bytes(explicit_port=True) == b""


def test_trace_shows_the_server_chosen() -> None:
    hops = sim.trace(replace(PRESET, duration_s=5.0))
    hap_hop = hops[hops["element"] == "haproxy (tcp)"].iloc[0]
    assert hap_hop["dst"] in {"10.0.0.12:30080", "10.0.0.13:30080"}
    assert "by roundrobin over the UP servers" in hap_hop["rewrite"]
    assert "DNAT NodePort" in hops["rewrite"].iloc[2]


def test_conservation_with_failures() -> None:
    sc = replace(
        PRESET,
        duration_s=30.0,
        in_cluster_share=0.1,
        failures=(
            sim.NodeDown(node="node-3", at_s=5.0, up_at_s=12.0),
            sim.DeletePod(pod="gw-1", at_s=15.0),
            sim.MovePod(pod="gw-2", to_node="node-1", at_s=20.0),
        ),
    )
    result = sim.simulate(sc)
    conns = result.connections
    assert_every_connection_accounted(result)
    ok = conns["outcome"] == "ok"
    # After the move, node-1 holds gw-2: its healthz turns 200 and HAProxy brings it UP.
    checks = result.events[result.events["kind"] == "haproxy_check"]
    node1 = checks[checks["node"] == "node-1"]
    assert node1["detail"].str.contains("is UP").iloc[-1]
    assert "node-1" in set(conns.loc[ok & (conns["t_start"] > 20.0), "entry_node"])


def test_same_seed_same_result() -> None:
    sc = replace(PRESET, duration_s=15.0, failures=(sim.NodeDown(node="node-2", at_s=5.0),))
    first, second = sim.simulate(sc), sim.simulate(sc)
    assert first.connections.equals(second.connections)
    assert first.events.equals(second.events)
    other = sim.simulate(replace(sc, seed=1))
    assert not first.events.equals(other.events)


def test_validation_and_preset_registry() -> None:
    with pytest.raises(
        ValueError, match=r"^HAProxyConfig\.backend='dns': allowed values are 'vip'"
    ):
        sim.HAProxyConfig(backend="dns")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'nodeports'"):
        sim.HAProxyConfig(backend="dns")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^client_target: 'nodeport'"):
        replace(PRESET, client_target="nodeport")
    with pytest.raises(ValueError, match=r"servers=0"):
        _hap(servers=0)
    assert presets.get("haproxy_nodeports") is PRESET
    assert "haproxy_nodeports" not in presets.PRESETS
    assert "haproxy_nodeports" not in COMPARE_PRESETS
    assert PRESET.haproxy == sim.HAProxyConfig(mode="tcp", send_proxy="v2", backend="nodeports")
    assert PRESET.external_traffic_policy == "Local" and PRESET.gateway_proxy_protocol
    with pytest.raises(ValueError, match="haproxy_nodeports"):
        presets.get("nope")
