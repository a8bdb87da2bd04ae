"""MetalLB L2 election, memberlist timing, gratuitous ARP and the failover gap."""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace

import pytest

import sim
from sim import presets
from sim.addresses import VIP
from sim.net.memberlist import dead_after_s, remaining_suspicion_s, suspicion_timeouts
from sim.net.metallb import hash_order


def test_hash_order_is_sha256_of_node_hash_vip() -> None:
    names = ["node-1", "node-2", "node-3", "node-4"]
    expected = sorted(names, key=lambda n: hashlib.sha256(f"{n}#{VIP}".encode()).digest())
    assert [names[i] for i in hash_order(names, VIP)] == expected
    # The seed topology relies on this order (see sim.addresses).
    assert [names[i] for i in hash_order(names[:3], VIP)] == ["node-3", "node-1", "node-2"]


def test_suspicion_is_flat_4s_for_three_nodes_and_decays_for_more() -> None:
    assert suspicion_timeouts(3, probe_interval_s=1.0, suspicion_mult=4, max_timeout_mult=6) == (
        4.0,
        24.0,
        0,
    )
    min_s, max_s, k = suspicion_timeouts(
        10, probe_interval_s=1.0, suspicion_mult=4, max_timeout_mult=6
    )
    assert (min_s, max_s, k) == (4.0, 24.0, 2)
    assert remaining_suspicion_s(0, k, min_s, max_s) == 24.0
    assert remaining_suspicion_s(2, k, min_s, max_s) == 4.0
    assert 4.0 < remaining_suspicion_s(1, k, min_s, max_s) < 24.0
    # log10(100) = 2 -> min doubles
    assert suspicion_timeouts(100, probe_interval_s=1.0, suspicion_mult=4, max_timeout_mult=6)[
        0
    ] == pytest.approx(8.0)


def test_dead_after_confirmations() -> None:
    # No confirmations in time: the timer runs its full maximum.
    assert dead_after_s([1.0, 100.0, 200.0], 2, 4.0, 24.0) == pytest.approx(25.0)
    # Two quick confirmations: the minimum applies.
    assert dead_after_s([1.0, 1.1, 1.2], 2, 4.0, 24.0) == pytest.approx(5.0)
    # k = 0: flat minimum whatever the confirmations.
    assert dead_after_s([1.0, 1.1], 0, 4.0, 24.0) == pytest.approx(5.0)
    # A late confirmation after the shrunken deadline fires the timer at once.
    one = 24.0 - math.log(2) / math.log(3) * 20.0
    assert dead_after_s([0.0, one + 1.0, 500.0], 2, 4.0, 24.0) == pytest.approx(one + 1.0)


def test_endpoint_aware_announcer_serves_local_naive_one_drops() -> None:
    short = {"duration_s": 5.0, "rate_per_s": 100.0}
    aware = sim.simulate(replace(presets.local, **short))
    naive = sim.simulate(replace(presets.local_naive, **short))
    conns = aware.connections
    assert (conns["outcome"] == "ok").all()
    assert set(conns["entry_node"]) == {"node-3"}  # the one gateway node first in hash order
    assert set(conns["gateway_pod"]) == {"gw-2"}  # M6: only that node's pods get traffic
    assert (conns["app_remote_ip"] == conns["client_ip"]).all()
    bad = naive.connections
    assert set(bad["outcome"]) == {"timeout"}
    assert set(bad["reason"]) == {"drop_no_local_endpoint"}
    assert set(bad["entry_node"]) == {"node-1"}
    first = aware.events.iloc[0]
    assert (first["kind"], first["node"]) == ("elected", "node-3")


def test_metallb_announces_nothing_without_endpoints() -> None:
    sc = replace(presets.cluster, gateway_nodes=(), duration_s=2.0)
    result = sim.simulate(sc)
    assert set(result.connections["reason"]) == {"no_arp_answer"}
    assert result.events.iloc[0]["kind"] == "withdrawn"


def _bounds(sc: sim.Scenario) -> tuple[float, float]:
    """Failover gap bounds implied by the timing model (sim.net.memberlist), N <= 3 (k = 0).

    First probe of the dead node within (N-1) probe intervals; the prober marks it suspect a
    probe interval later (probe timeout + indirect probes); suspicion min flat; GARP at once.
    """
    n = sc.nodes
    suspicion = sc.suspicion_mult * max(1.0, math.log10(n)) * sc.probe_interval_s
    low = sc.probe_interval_s + suspicion
    high = (n - 1) * sc.probe_interval_s + sc.probe_interval_s + suspicion
    return low, high


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    "timing",
    [{}, {"probe_interval_s": 2.0, "probe_timeout_s": 1.0, "suspicion_mult": 3}],
)
def test_failover_gap_after_announcer_node_down_matches_timing_model(
    seed: int, timing: dict[str, float]
) -> None:
    sc = replace(
        presets.cluster,
        seed=seed,
        duration_s=30.0,
        rate_per_s=200.0,
        failures=(sim.NodeDown(node="node-3", at_s=8.0),),
        **timing,
    )
    low, high = _bounds(sc)
    result = sim.simulate(sc)
    gap = result.summary()["failover_gap_s"]
    slack = 0.15  # last success before / first success after: a few inter-arrival times
    assert low - slack <= gap <= high + slack, (gap, low, high)
    events = result.events
    dead = events[(events["kind"] == "memberlist_dead")]["t"].iloc[0]
    assert low <= dead - 8.0 <= high
    garps = events[events["kind"] == "garp"]
    # M9: at takeover, then every 1.1 s until 5 s after it.
    assert len(garps) == 5
    assert garps["t"].iloc[0] == pytest.approx(dead)
    assert garps["t"].diff().iloc[1:].round(6).eq(1.1).all()
    assert set(garps["node"]) == {"node-1"}  # next in hash order


def test_node_back_up_takes_the_vip_back() -> None:
    sc = replace(
        presets.cluster,
        duration_s=40.0,
        rate_per_s=20.0,
        failures=(sim.NodeDown(node="node-3", at_s=5.0, up_at_s=20.0),),
    )
    ev = sim.simulate(sc).events
    elected = ev[ev["kind"] == "elected"]
    assert list(elected["node"]) == ["node-3", "node-1", "node-3"]  # M5
    join = ev[ev["kind"] == "memberlist_join"]["t"].iloc[0]
    assert join == pytest.approx(20.0 + sc.pod_start_s)
