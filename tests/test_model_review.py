"""Review of the model against FACTS.md: edge cases and facts a naive simulator gets wrong.

Each test names the fact IDs it checks. Runs are short (a few seconds of simulated time at a
modest rate) so the whole file stays fast.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import simpy
from sim_checks import assert_every_connection_accounted

import sim
from sim import presets
from sim.addresses import node_ip, tunnel_ip
from sim.net.memberlist import Memberlist, suspicion_timeouts
from sim.results import Recorder

SHORT = {"duration_s": 4.0, "rate_per_s": 50.0}
ROOT = Path(__file__).resolve().parent.parent


def _ip(name: str, kind: str) -> str:
    index = int(name.removeprefix("node-")) - 1
    return node_ip(index) if kind == "node" else tunnel_ip(index)


# --------------------------------------------------------------- in-cluster callers (K1-K3, K8)


def test_in_cluster_callers_under_cluster_are_masqueraded_by_their_node() -> None:
    # K1: the LB IP rule jumps to KUBE-EXT, whose first rule under Cluster marks *every* packet
    # for masquerade, pod sources included; the source is the caller node's egress device (N3).
    sc = replace(presets.cluster, in_cluster_share=0.5, **SHORT)
    conns = sim.simulate(sc).connections
    inside = conns[conns["path"] == "in_cluster"]
    assert len(inside) > 20 and (inside["outcome"] == "ok").all()
    same = inside["entry_node"] == inside["gateway_node"]
    assert same.any() and (~same).any()
    expected = [
        _ip(entry, "node" if entry == gw_node else "tunnel")
        for entry, gw_node in zip(inside["entry_node"], inside["gateway_node"], strict=True)
    ]
    assert list(inside["snat_ip"]) == expected
    assert (inside["gateway_direct_ip"] == inside["snat_ip"]).all()
    assert (inside["app_remote_ip"] == inside["snat_ip"]).all()  # E9: last XFF entry
    assert (inside["app_remote_ip"] != inside["client_ip"]).all()
    hops = sim.trace(sc, conn_id=int(inside["conn_id"].iloc[0]))
    assert "MASQUERADE" in hops["rewrite"].iloc[1] and "K1" in hops["rewrite"].iloc[1]
    assert hops["src"].iloc[1].startswith(inside["snat_ip"].iloc[0] + ":")


@pytest.mark.parametrize("announcer", ["metallb", "naive"])
def test_in_cluster_callers_under_local_get_cluster_semantics(announcer: str) -> None:
    # K3: "traffic sent to ... LoadBalancer IP from within the cluster will always get Cluster
    # semantics": every Ready endpoint, no DROP, even where external traffic is dropped (naive).
    # K2a: and without masquerade for a pod source.
    sc = replace(presets.local, announcer=announcer, in_cluster_share=0.5, **SHORT)
    conns = sim.simulate(sc).connections
    inside = conns[conns["path"] == "in_cluster"]
    outside = conns[conns["path"] == "direct"]
    assert (inside["outcome"] == "ok").all()
    assert set(inside["gateway_pod"]) == {"gw-1", "gw-2"}
    assert (inside["snat_ip"] == "").all()
    assert (inside["app_remote_ip"] == inside["client_ip"]).all()
    if announcer == "metallb":  # M3, M6: external traffic reaches only node-3's pod
        assert set(outside["gateway_pod"]) == {"gw-2"}
    else:  # M16, K6: the naive announcer's node-1 has no pod: every external SYN is dropped
        assert set(outside["reason"]) == {"drop_no_local_endpoint"}


# -------------------------------------------------------------------------- topology edge cases


def test_single_node_outage_is_never_detected_and_recovers() -> None:
    # M8: with one member nobody is left to probe it, so the VIP never moves; the clients time
    # out against the dead node (dead_node) and, once it is back, the restarting pod is first
    # not Ready (REJECT, K6) and then serves again.
    sc = sim.Scenario(
        nodes=1,
        gateway_nodes=("node-1",),
        duration_s=30.0,
        rate_per_s=40.0,
        failures=(sim.NodeDown(node="node-1", at_s=5.0, up_at_s=15.0),),
    )
    result = sim.simulate(sc)
    kinds = set(result.events["kind"])
    assert "memberlist_dead" not in kinds and "memberlist_suspect" not in kinds
    conns = result.connections
    during = conns[conns["t_start"].between(5.0, 15.0, inclusive="neither")]
    # Every SYN before the node is back meets a dead node; later retransmissions (T1) meet the
    # restarting pod (pod_gone), its not-Ready endpoint (REJECT, K6) or the pod serving again.
    assert set(during["reason"]) <= {"dead_node", "pod_gone", "reject_no_endpoints", ""}
    hopeless = during[during["t_start"] + 7.0 < 15.0]  # SYNs at +0, 1, 3 and 7 s
    assert len(hopeless) > 0 and set(hopeless["reason"]) == {"dead_node"}
    assert (hopeless["syn_sent"] == 4).all()
    ready_seen = 15.0 + sc.pod_start_s + sc.endpoint_update_delay_s
    assert (conns.loc[conns["t_start"] > ready_seen, "outcome"] == "ok").all()
    before = conns[conns["t_start"] < 5.0]
    assert set(before["reason"]) <= {"", "node_down_in_flight"}  # K14: in flight at 5 s
    assert (before["outcome"] == "ok").sum() > 100
    summary = result.summary()
    failed = sum(v for k, v in summary.items() if k.startswith("failed_"))
    assert summary["connections"] == summary["ok"] + failed


@pytest.mark.parametrize(
    ("gateway_nodes", "snat_kind"),
    [(("node-3", "node-3"), "node"), (("node-1", "node-1"), "tunnel")],
)
def test_all_replicas_on_one_node(gateway_nodes: tuple[str, ...], snat_kind: str) -> None:
    # node-3 announces under Cluster (hash order, M3). Replicas on the announcer: every
    # connection is masqueraded to its node IP (K1 still applies, N3); replicas elsewhere:
    # always its tunnel IP (N3). Under Local, MetalLB follows the pods (M3) and keeps the client.
    cluster = sim.simulate(replace(presets.cluster, gateway_nodes=gateway_nodes, **SHORT))
    conns = cluster.connections
    assert (conns["outcome"] == "ok").all() and set(conns["entry_node"]) == {"node-3"}
    assert set(conns["snat_ip"]) == {_ip("node-3", snat_kind)}
    local = sim.simulate(replace(presets.local, gateway_nodes=gateway_nodes, **SHORT))
    conns = local.connections
    assert (conns["outcome"] == "ok").all()
    assert set(conns["entry_node"]) == {gateway_nodes[0]}
    assert local.summary()["client_ip_seen_pct"] == 100.0


def test_local_node_back_up_takes_the_vip_back_only_with_a_ready_pod() -> None:
    # M5: the returning node sorts first again, but under Local it is only a candidate once its
    # restarted pod is Ready in the EndpointSlice the speakers see (M3, M4), not at rejoin.
    sc = replace(
        presets.local,
        duration_s=40.0,
        rate_per_s=20.0,
        failures=(sim.NodeDown(node="node-3", at_s=5.0, up_at_s=20.0),),
    )
    events = sim.simulate(sc).events
    elected = events[events["kind"] == "elected"]
    assert list(elected["node"]) == ["node-3", "node-2", "node-3"]
    join = events.loc[events["kind"] == "memberlist_join", "t"].iloc[0]
    assert join == pytest.approx(20.0 + sc.pod_start_s)
    back = elected["t"].iloc[-1]
    assert back == pytest.approx(20.0 + sc.pod_start_s + sc.endpoint_update_delay_s)
    assert back > join


def test_local_forced_delete_reelects_after_the_endpoint_update_delay() -> None:
    # A forced delete (K18: no Terminating state) takes the endpoint away at once.
    failure = sim.DeletePod(pod="gw-2", at_s=5.0, force=True)
    sc = replace(presets.local, duration_s=20.0, rate_per_s=40.0, failures=(failure,))
    result = sim.simulate(sc)
    elected = result.events[result.events["kind"] == "elected"]
    delay = sc.endpoint_update_delay_s
    ready_seen = 5.0 + sc.pod_start_s + delay
    # The speakers see gw-2 leave `delay` later and move the VIP to node-2 (gw-1); when the
    # replacement is seen Ready, the hash order (node-3, node-1, node-2) takes it back (M3).
    assert list(elected["t"].round(9)) == [0.0, 5.0 + delay, ready_seen]
    assert list(elected["node"]) == ["node-3", "node-2", "node-3"]
    conns = result.connections
    window = conns[conns["t_start"].between(5.0, 5.0 + delay, inclusive="neither")]
    # DNATed to the deleted pod: no answer; the retransmitted SYN 1 s later reaches node-2 (T1).
    assert len(window) > 0 and set(window["reason"]) <= {"", "pod_gone"}
    assert (window["syn_sent"] > 1).all()
    after = conns[conns["t_start"] > 5.0 + delay]
    # The take-back to node-3 resets what is in flight through node-2 at that moment (M17).
    assert set(after["reason"]) <= {"", "conntrack_lost"}
    reset = after[after["reason"] == "conntrack_lost"]
    assert (reset["t_end"] == ready_seen).all()


def test_local_graceful_delete_keeps_the_vip_but_must_drain_long_enough() -> None:
    # K18, M4: the Terminating pod keeps node-3 eligible and serves while it drains, so the VIP
    # stays. Under Local it is node-3's only endpoint (K12 fallback) until its replacement is seen
    # Ready; if it exits before that is seen, kube-proxy DNATs new connections to the gone pod and
    # their retransmitted SYNs stay pinned to it by conntrack (K14, T1): they time out.
    failure = sim.DeletePod(pod="gw-2", at_s=5.0)
    sc = replace(presets.local, duration_s=25.0, rate_per_s=40.0, failures=(failure,))
    result = sim.simulate(sc)
    assert list(result.events.loc[result.events["kind"] == "elected", "node"]) == ["node-3"]
    lost = result.connections[result.connections["outcome"] != "ok"]
    exited = 5.0 + sc.termination_drain_s
    seen = exited + sc.endpoint_update_delay_s
    assert len(lost) > 0 and set(lost["reason"]) <= {"pod_gone", "pod_deleted_in_flight"}
    assert lost["t_start"].between(exited - 0.5, seen).all()
    # A drain that outlasts the replacement's start and its propagation loses nothing.
    long = replace(sc, termination_drain_s=sc.pod_start_s + sc.endpoint_update_delay_s + 1.0)
    assert (sim.simulate(long).connections["outcome"] == "ok").all()


def test_local_move_pod_moves_the_vip_when_the_old_pod_exits() -> None:
    # A rollout (K18): the new gw-2 on node-1 is Ready at 10 s, the old one then drains for 5 s;
    # node-3 keeps the VIP while its pod is terminating but serving (M4), then node-1 wins.
    failure = sim.MovePod(pod="gw-2", to_node="node-1", at_s=5.0)
    sc = replace(presets.local, duration_s=25.0, rate_per_s=40.0, failures=(failure,))
    result = sim.simulate(sc)
    elected = result.events[result.events["kind"] == "elected"]
    delay = sc.endpoint_update_delay_s
    exit_seen = 5.0 + sc.pod_start_s + sc.termination_drain_s + delay
    assert list(elected["t"].round(9)) == [0.0, exit_seen]
    assert list(elected["node"]) == ["node-3", "node-1"]
    conns = result.connections
    # Between the exit and its propagation kube-proxy on node-3 still DNATs to the exited pod;
    # the retransmitted SYN finds node-1 after the gratuitous ARP (T1).
    assert set(conns["reason"]) <= {"", "pod_gone"}
    assert (conns.loc[conns["reason"] == "pod_gone", "t_start"] >= exit_seen - delay - 1e-9).all()


def test_only_live_speakers_probe_a_dead_node() -> None:
    # M8: a member is suspected when a *live* member's probe fails; a speaker that died at the
    # same moment probes nobody. Two of four nodes die together: each is probed by the two live
    # members only, so each detection draws two probe phases, not three.
    draws: list[int] = []

    class SpyRng:
        """The memberlist's stream, recording how many probe phases each detection draws."""

        def __init__(self) -> None:
            self._rng = np.random.default_rng(0)

        def uniform(self, low: float, high: float, size: int) -> np.ndarray:
            draws.append(size)
            return self._rng.uniform(low, high, size)

    env = simpy.Environment()
    ml = Memberlist(
        env,
        nodes=4,
        timing=(1.0, 4, 6),
        rng=SpyRng(),  # type: ignore[arg-type]
        recorder=Recorder(),
        node_names=["node-1", "node-2", "node-3", "node-4"],
        on_change=lambda: None,
    )
    ml.speaker_died(2)
    ml.speaker_died(3)
    env.run(until=200.0)
    assert draws == [2, 2]  # node-1 and node-2 probe; the other dead speaker does not
    assert ml.members == {0, 1}
    ml.speaker_started(2)
    assert ml.members == {0, 1, 2}
    ml.speaker_died(0)
    env.run(until=400.0)
    assert draws[-1] == 2 and ml.members == {1, 2}


# ------------------------------------------------------------------------------ HAProxy (H5, H7)


def test_haproxy_http_mode_turns_backend_failures_into_http_errors() -> None:
    # mode http: HAProxy is the client's HTTP peer (H7), so a gateway that closes the
    # connection (E5) or a pod deleted mid-request is a 502, and no server a 503 (H5).
    base = replace(presets.haproxy_http_xff, num_trusted_proxies=0)
    missing = sim.simulate(replace(base, gateway_proxy_protocol=True, **SHORT)).connections
    assert set(missing["outcome"]) == {"http_502"}
    assert set(missing["reason"]) == {"proxy_header_missing"}
    deleted = replace(
        base,
        duration_s=10.0,
        rate_per_s=200.0,
        request_time_s=0.5,
        failures=(sim.DeletePod(pod="gw-2", at_s=5.0, force=True),),
    )
    conns = sim.simulate(deleted).connections
    broken = conns[conns["reason"] == "pod_deleted_in_flight"]
    assert len(broken) > 0 and set(broken["outcome"]) == {"http_502"}
    assert (broken["t_end"] == 5.0).all()
    tcp = replace(deleted, haproxy=sim.HAProxyConfig(mode="tcp"))
    conns = sim.simulate(tcp).connections
    broken = conns[conns["reason"] == "pod_deleted_in_flight"]
    assert len(broken) > 0 and set(broken["outcome"]) == {"reset"}
    down = replace(
        base,
        duration_s=30.0,
        rate_per_s=20.0,
        failures=(
            sim.NodeDown(node="node-2", at_s=3.0, up_at_s=20.0),
            sim.NodeDown(node="node-3", at_s=3.0, up_at_s=20.0),
        ),
    )
    conns = sim.simulate(down).connections
    failed = conns[conns["outcome"] != "ok"]
    assert "http_503" in set(failed["outcome"])
    assert set(failed["outcome"]) <= {"timeout", "http_502", "http_503"}  # never reset/refused


def test_client_xff_survives_leftmost_through_haproxy_http() -> None:
    # H7: HAProxy keeps the client's own X-Forwarded-For line and appends its view after it;
    # the gateway with numTrustedProxies 1 trusts HAProxy's entry (I4, E9) and appends its peer,
    # the SNAT address (E8, C4).
    sc = replace(presets.haproxy_http_xff, client_xff="6.6.6.6", **SHORT)
    conns = sim.simulate(sc).connections
    assert (conns["outcome"] == "ok").all()
    expected = "6.6.6.6," + conns["client_ip"] + "," + conns["snat_ip"]
    assert (conns["xff_at_app"] == expected).all()
    assert (conns["gateway_client_ip"] == conns["client_ip"]).all()
    assert (conns["app_remote_ip"] == conns["snat_ip"]).all()
    two = sim.simulate(replace(sc, num_trusted_proxies=2)).connections  # I5: spoofable
    assert (two["gateway_client_ip"] == "6.6.6.6").all()


@pytest.mark.parametrize(
    ("preset", "trusted"), [("haproxy_http_xff", 3), ("haproxy_http_xff", 9), ("proxy_protocol", 2)]
)
def test_more_trusted_proxies_than_xff_entries_falls_back_to_the_peer(
    preset: str, trusted: int
) -> None:
    # E9: with use_remote_address=true and N greater than the number of incoming XFF entries,
    # the trusted address falls back to the connection's remote address: the L4 peer (the SNAT
    # address) in mode http, the PROXY source (the client) behind send-proxy-v2.
    sc = replace(presets.get(preset), client_xff="6.6.6.6", num_trusted_proxies=trusted, **SHORT)
    conns = sim.simulate(sc).connections
    assert (conns["outcome"] == "ok").all()
    remote = conns["snat_ip"] if preset == "haproxy_http_xff" else conns["client_ip"]
    assert (conns["gateway_client_ip"] == remote).all()
    assert (conns["x_envoy_external_address"] == remote).all()


# ----------------------------------------------------------- conservation and determinism


def _every_failure(name: str) -> sim.Scenario:
    return replace(
        presets.get(name),
        seed=5,
        duration_s=30.0,
        rate_per_s=40.0,
        request_time_s=0.2,
        in_cluster_share=0.1,
        node_monitor_grace_period_s=8.0,
        pod_eviction_timeout_s=4.0,
        failures=(
            sim.NodeDown(node="node-3", at_s=4.0),  # no up: NotReady at 12 s, evicted at 16 s
            sim.DeletePod(pod="gw-1", at_s=6.0),
            sim.MovePod(pod="gw-1", to_node="node-1", at_s=20.0),
            sim.NodeDown(node="node-1", at_s=24.0, up_at_s=27.0),
        ),
    )


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_conservation_with_every_failure_type(name: str) -> None:
    sc = _every_failure(name)
    result = sim.simulate(sc)
    assert_every_connection_accounted(result)
    kinds = list(result.events["kind"])
    for kind in ("node_down", "node_not_ready", "pod_evicted", "pod_deleted", "pod_moved"):
        assert kind in kinds, kind
    evicted = result.events[result.events["kind"] == "pod_evicted"]
    # K15: NotReady after the grace period, evicted after the unreachable toleration.
    assert evicted["t"].iloc[0] == pytest.approx(4.0 + 8.0 + 4.0)
    assert evicted["node"].iloc[0] == "node-3"


_DIGEST = """
import hashlib, sys
from dataclasses import replace
import sim
sys.path.insert(0, {tests!r})
from test_model_review import _every_failure
sc = replace(_every_failure("haproxy_http_xff"), client_xff="6.6.6.6")
r = sim.simulate(sc)
text = r.connections.to_csv(index=False) + r.events.to_csv(index=False) + repr(r.summary())
print(hashlib.sha256(text.encode()).hexdigest())
"""


def test_same_seed_same_frames_across_processes_and_hash_seeds() -> None:
    # Determinism must not depend on str hashing (set/dict order): two interpreters with
    # different PYTHONHASHSEED and this process give byte-identical frames.
    code = _DIGEST.format(tests=str(ROOT / "tests"))
    digests = []
    for hash_seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        digests.append(out.stdout.strip())
    r = sim.simulate(replace(_every_failure("haproxy_http_xff"), client_xff="6.6.6.6"))
    text = r.connections.to_csv(index=False) + r.events.to_csv(index=False) + repr(r.summary())
    here = hashlib.sha256(text.encode()).hexdigest()
    assert digests[0] == digests[1] == here


# ---------------------------------------------------------------- defaults (FACTS Appendix)


def test_timing_defaults_match_the_facts_appendix() -> None:
    sc = sim.Scenario()
    assert (sc.probe_interval_s, sc.probe_timeout_s) == (1.0, 0.5)  # M8
    assert (sc.suspicion_mult, sc.suspicion_max_timeout_mult) == (4, 6)  # M8
    assert (sc.garp_interval_s, sc.garp_duration_s) == (1.1, 5.0)  # M9
    assert sc.node_monitor_grace_period_s == 40.0  # K15 (older default; newer 50 s)
    assert sc.pod_eviction_timeout_s == 300.0  # K15
    assert sc.listener_filters_timeout_s == 15.0  # E4
    cfg = sim.HAProxyConfig()
    assert (cfg.inter_s, cfg.fall, cfg.rise) == (2.0, 3, 2)  # H5
    # M8: 4 s flat for <= 3 nodes (k = 0); min 4 s x log10 N, max 6 x min, k = 2 above.
    assert suspicion_timeouts(3, probe_interval_s=1, suspicion_mult=4, max_timeout_mult=6) == (
        4.0,
        24.0,
        0,
    )
    low, high, k = suspicion_timeouts(100, probe_interval_s=1, suspicion_mult=4, max_timeout_mult=6)
    assert (low, high, k) == (pytest.approx(8.0), pytest.approx(48.0), 2)
