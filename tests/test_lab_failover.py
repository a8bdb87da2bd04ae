"""One failover run on a real kernel, and HAProxy's check of a powered-off NodePort server.

* ``local`` with a ``NodeDown`` of the VIP's node (node-3): the lab's gap falls within the
  simulator's range for the same timers (over seeds); long keep-alive connections through the
  old node are reset once the VIP moved (M17: the new node has no conntrack entry, picks the
  mid-stream packet up with ``nf_conntrack_tcp_loose=1``, DNATs it, the pod answers RST).
* ``haproxy_nodeports`` with a ``NodeDown`` of node-3: the real HAProxy marks the black-holed
  server DOWN with H10's timing (each check waits ``inter``, the next starts ``inter`` after it
  completed), within 1 s of the simulator's prediction.

Timers are shortened with the CLI's ``--set`` keys so the runs take seconds. The client timeout
stays under 1 s so that no SYN is retransmitted (T1) and the gap is the VIP's move alone.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from lab_harness import lab_run, require_lab, scenario

import sim
from sim.lab import LabOptions

pytestmark = [pytest.mark.slow, pytest.mark.lab]

FAST = ("probe_interval_s=0.5", "probe_timeout_s=0.25", "client_timeout_s=0.9")
FAIL_AT = 2.0
SPACING_S = 0.2


def _vip_failover() -> sim.lab.LabRun:
    require_lab()
    sc = scenario(
        "local", "duration_s=8", *FAST, failures=(sim.NodeDown(node="node-3", at_s=FAIL_AT),)
    )
    return lab_run("local_failover", sc, LabOptions(connections=40, long_connections=2))


def _h10() -> sim.lab.LabRun:
    require_lab()
    sc = scenario(
        "haproxy_nodeports",
        "duration_s=10",
        "haproxy.inter_s=1",
        "haproxy.fall=2",
        "client_timeout_s=0.9",
        failures=(sim.NodeDown(node="node-3", at_s=FAIL_AT),),
    )
    return lab_run("nodeports_failover", sc, LabOptions(connections=20))


def _lab_gap(run: sim.lab.LabRun) -> float:
    from sim.results import failover_gap_s

    obs = run.observed
    ok = obs[obs["outcome"] == "ok"]["t_start"].astype(float).to_numpy()
    return failover_gap_s(ok, run.scenario.duration_s)


def test_failover_gap_within_the_simulators_range() -> None:
    run = _vip_failover()
    gaps = [
        sim.simulate(replace(run.scenario, seed=s)).summary()["failover_gap_s"] for s in range(10)
    ]
    gap = _lab_gap(run)
    slack = SPACING_S + 0.3  # the lab's request spacing + ARP/process latency
    assert min(gaps) - slack <= gap <= max(gaps) + slack, (gap, min(gaps), max(gaps))
    takeover = [e for e in run.events if e["kind"] == "elected" and e["node"] == "node-2"]
    assert takeover, run.events
    garps = [e for e in run.events if e["kind"] == "garp"]
    assert len(garps) >= 2  # M9: at once, then every 1.1 s


def test_long_connections_through_the_old_node_are_reset_after_the_takeover() -> None:
    run = _vip_failover()
    takeover = next(e["t"] for e in run.events if e["kind"] == "elected" and e["t"] > 0)
    assert len(run.long) == 2
    for a in run.long:
        # M17: an RST from the new node's pod, not a time-out; it comes with the first
        # retransmission after the GARP (TCP backoff, so within a few seconds).
        assert a.outcome == "reset", a
        assert takeover <= a.t_end <= takeover + 4.0, (a.t_end, takeover)
        assert a.requests >= 2  # it worked through the old node before


def test_real_haproxy_marks_a_powered_off_nodeport_server_down_with_h10_timing() -> None:
    run = _h10()
    downs = [t for t, server, what in run.haproxy_changes if server == "node-3" and what == "DOWN"]
    assert downs, run.haproxy_changes
    delay = downs[0] - FAIL_AT
    inter, fall = 1.0, 2
    # H10: the first failing check starts within 2*inter after the failure, each failing check
    # lasts inter (timeout check unset), the next starts inter after it completed.
    assert (2 * fall - 1) * inter - 0.3 <= delay <= 2 * fall * inter + 0.5, delay


def test_haproxy_down_delay_within_1s_of_the_simulator() -> None:
    run = _h10()
    lab = next(t for t, s, what in run.haproxy_changes if s == "node-3" and what == "DOWN")
    predicted = []
    for seed in range(10):
        ev = sim.simulate(replace(run.scenario, seed=seed)).events
        rows = ev[(ev["kind"] == "haproxy_check") & (ev["node"] == "node-3")]
        rows = rows[rows["detail"].str.contains("is DOWN")]
        predicted.append(float(rows["t"].iloc[0]))
    assert min(predicted) - 1.0 <= lab <= max(predicted) + 1.0, (lab, predicted)
