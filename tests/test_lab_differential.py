"""The differential test: the lab's real kernel and HAProxy against the simulator (issue 11).

For each preset the lab deploys the scenario in network namespaces, sends 20 real requests,
and the quantities of :mod:`sim.lab.compare` (the set of addresses the gateway sees per
(entry node, gateway node), the client address after PROXY, the XFF at the app, which outcomes
occur) must equal the simulator's, and so must whether SNAT rewrites the source port (K17).
"""

from __future__ import annotations

import pytest
from lab_harness import lab_run, require_lab, scenario

import sim
from sim.addresses import node_ip
from sim.lab import LabOptions
from sim.lab.capture import proxy_sources
from sim.lab.compare import compare_frames

pytestmark = [pytest.mark.slow, pytest.mark.lab]

CASES = {
    "cluster": ("cluster",),
    "local": ("local",),
    "proxy_protocol": ("proxy_protocol",),
    "haproxy_http_xff": ("haproxy_http_xff",),
    "pp_unexpected": ("pp_unexpected",),
    "pp_missing": ("pp_missing",),
    "haproxy_nodeports": ("haproxy_nodeports",),
    "cluster_none": ("cluster", "encapsulation=None"),
}
CLUSTER_POLICY = {k for k in CASES if k not in ("local", "haproxy_nodeports")}
DIRECT_PATH = ("cluster", "local", "pp_missing", "cluster_none")


def _run(case: str) -> sim.lab.LabRun:
    require_lab()
    preset, *sets = CASES[case]
    return lab_run(case, scenario(preset, *sets), LabOptions(connections=20))


def _compare(case: str) -> dict[str, dict[str, object]]:
    run = _run(case)
    simulated = sim.simulate(run.scenario).connections
    return {c["what"]: c for c in compare_frames(simulated, run.observed, run.scenario)}


@pytest.mark.parametrize("case", list(CASES))
def test_lab_equals_simulator(case: str) -> None:
    compared = _compare(case)
    for what, c in compared.items():
        if what == "snat ports":
            continue  # test_snat_ports_*
        assert c["equal"], f"{case}: {what}: simulated {c['simulated']} observed {c['observed']}"


@pytest.mark.parametrize("case", list(CASES))
def test_snat_ports_rewritten_under_cluster_kept_under_local(case: str) -> None:
    # K17: kube-proxy's MASQUERADE --random-fully picks a new source port; Local has no SNAT.
    observed = _compare(case)["snat ports"]["observed"]
    assert observed == ("rewritten" if case in CLUSTER_POLICY else "kept")


@pytest.mark.parametrize("case", DIRECT_PATH)
def test_snat_ports_equal_simulator(case: str) -> None:
    c = _compare(case)["snat ports"]
    assert c["equal"] is True, c


def test_no_encapsulation_masquerades_to_the_node_ip() -> None:
    # C1, N1: without a tunnel device the route to a remote pod leaves through the NIC.
    obs = _run("cluster_none").observed
    reached = obs[obs["gateway_direct_ip"] != ""]
    assert len(reached) == 20
    for row in reached.itertuples():
        index = int(row.entry_node.split("-")[1]) - 1
        assert row.gateway_direct_ip == node_ip(index)


def test_vxlan_masquerades_remote_pods_to_the_tunnel_ip() -> None:
    # N3: the egress device of a remote pod's route is vxlan.calico -> its address (172.16.3.0).
    obs = _run("cluster").observed
    remote = obs[(obs["gateway_direct_ip"] != "") & (obs["entry_node"] != obs["gateway_node"])]
    assert len(remote) > 0
    assert set(remote["gateway_direct_ip"]) == {"172.16.3.0"}


def test_tshark_reads_the_client_address_from_the_haproxy_to_node_capture(tmp_path) -> None:
    require_lab(tshark=True)
    sc = scenario("proxy_protocol")
    run = lab_run("proxy_protocol_pcap", sc, LabOptions(connections=6, pcap_dir=tmp_path))
    entry = run.observed["entry_node"].iloc[0]
    pcap = tmp_path / f"slab-{entry}-eth0.pcap"
    assert str(pcap) in run.pcaps
    assert not [n for n in run.notes if n.startswith("tcpdump")], run.notes  # a complete capture
    sources = set(proxy_sources(pcap))
    sent = {(r.client_ip, int(r.client_port)) for r in run.observed.itertuples()}
    assert sent <= sources, f"tshark found {sources}, the clients used {sent}"
