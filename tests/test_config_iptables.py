"""kube-proxy's rules for the gateway Service (sim.config.kube_proxy_rules).

Layout checks against kube-proxy's own test vectors and proxier.go's branches (K1, K2, K6, K10,
K12, K14, K19), and the real tool: every generated file is accepted by ``iptables-restore
--test`` in a network namespace of our own, and after a real ``iptables-restore`` the kernel's
``iptables-save`` prints exactly the generated rules (so a user can diff them against a node).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace

import pytest
from config_tools import in_netns, netns, require_netns

from sim import presets
from sim.config import Endpoint, categorize, initial_endpoints, iptables_save
from sim.config.kube_proxy_rules import chain_hash, endpoint_chain, service_chains

ALL = {**presets.PRESETS, **presets.ALTERNATIVES}


def rules(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("-A ")]


def chain(text: str, name: str) -> list[str]:
    return [r for r in rules(text) if r.startswith(f"-A {name} ")]


def test_chain_names_match_kube_proxy_test_vectors() -> None:
    # pkg/proxy/iptables/proxier_test.go (TestCleanupLeftovers): ns2/svc2:p80 and its endpoint.
    assert chain_hash("ns1/svc1:p80tcp") == "XPGD46QRK7WJZT7O"
    assert service_chains("ns2/svc2:p80")["ext"] == "KUBE-EXT-GNZBNJ2PO5MGZ6GT"
    assert service_chains("ns5/svc5:p80")["fw"] == "KUBE-FW-NUKIZ6OKUXPJNT4C"
    assert endpoint_chain("10.180.0.2:80", "ns2/svc2:p80") == "KUBE-SEP-RS4RBKLTHTF2IUXJ"


def test_initial_endpoints_follow_the_simulator() -> None:
    sc = replace(presets.cluster, gateway_nodes=("node-2", "node-3", "node-2"))
    assert initial_endpoints(sc) == [
        Endpoint(pod="gw-1", ip="172.16.2.10", node="node-2"),
        Endpoint(pod="gw-2", ip="172.16.3.10", node="node-3"),
        Endpoint(pod="gw-3", ip="172.16.2.11", node="node-2"),
    ]


def test_k12_ready_first_then_serving_terminating_separately() -> None:
    ready = Endpoint(pod="a", ip="172.16.2.10", node="node-2")
    draining = Endpoint(pod="b", ip="172.16.3.10", node="node-3", ready=False, terminating=True)
    dead = Endpoint(pod="c", ip="172.16.3.11", node="node-3", ready=False, serving=False)
    sets = categorize([ready, draining, dead], "node-3", local_policy=True)
    assert sets.cluster == (ready,)  # a Ready endpoint exists: terminating ones are not used
    assert sets.local == (draining,)  # none Ready on node-3: fall back to serving-terminating
    assert set(sets.reachable) == {ready, draining} and sets.has_any
    gone = categorize([dead], "node-3", local_policy=True)
    assert gone.cluster == () and gone.local == () and not gone.has_any


def test_cluster_marks_for_masquerade_before_choosing() -> None:
    text = iptables_save(presets.cluster, "node-3")
    ch = service_chains()
    ext = chain(text, ch["ext"])
    assert "-j KUBE-MARK-MASQ" in ext[0] and "masquerade traffic for" in ext[0]  # K1
    assert ext[1].endswith(f"-j {ch['svc']}")
    svc = chain(text, ch["svc"])
    assert "--probability 0.50000000000" in svc[1] and "statistic" not in svc[2]  # K14
    assert not chain(text, ch["svl"])
    assert "-j MASQUERADE --random-fully" in "\n".join(chain(text, "KUBE-POSTROUTING"))  # K17
    assert not chain(text, "KUBE-EXTERNAL-SERVICES")  # nothing filtered under Cluster


def test_local_keeps_pod_node_and_client_branches() -> None:
    text = iptables_save(presets.local, "node-3")
    ch = service_chains()
    ext = chain(text, ch["ext"])
    assert "-s 172.16.0.0/16" in ext[0] and ext[0].endswith(ch["svc"])  # K2a
    assert "--src-type LOCAL -j KUBE-MARK-MASQ" in ext[1]  # K2b
    assert ext[-1] == f"-A {ch['ext']} -j {ch['svl']}"
    assert [r.split()[-1] for r in chain(text, ch["svl"])] == [endpoint_chain("172.16.3.10:8080")]
    assert any("--dport 30081 -j ACCEPT" in r for r in chain(text, "KUBE-NODEPORTS"))  # K10
    assert not chain(text, "KUBE-EXTERNAL-SERVICES")


def test_local_without_local_endpoint_drops_vip_and_nodeport() -> None:
    text = iptables_save(presets.local, "node-1")
    ext = chain(text, service_chains()["ext"])
    assert len(ext) == 3 and "KUBE-SVL" not in "\n".join(ext)  # no fall-through
    dropped = chain(text, "KUBE-EXTERNAL-SERVICES")
    assert len(dropped) == 2 and all(r.endswith("-j DROP") for r in dropped)  # K6
    assert "-d 10.0.0.100/32" in dropped[0] and "--dst-type LOCAL" in dropped[1]
    assert "has no local endpoints" in dropped[0]


def test_no_endpoints_at_all_rejects() -> None:
    text = iptables_save(presets.local, "node-3", endpoints=[])
    assert not [r for r in rules(text) if "KUBE-SVC-" in r or "KUBE-SEP-" in r]
    rejected = chain(text, "KUBE-EXTERNAL-SERVICES") + [
        r for r in chain(text, "KUBE-SERVICES") if "REJECT" in r
    ]
    assert len(rejected) == 3 and all("has no endpoints" in r for r in rejected)  # K6
    # kube-proxy's health check node port is ACCEPTed whatever the endpoints (K10).
    assert any("health check node port" in r for r in chain(text, "KUBE-NODEPORTS"))


def test_three_endpoints_probabilities_as_the_kernel_stores_them() -> None:
    sc = replace(presets.cluster, gateway_nodes=("node-1", "node-2", "node-3"))
    svc = chain(iptables_save(sc, "node-1"), service_chains()["svc"])
    found = [m.group(1) for r in svc if (m := re.search(r"--probability (\S+)", r))]
    assert found == ["0.33333333349", "0.50000000000"]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown node 'node-9'"):
        iptables_save(presets.cluster, "node-9")
    with pytest.raises(ValueError, match="IPv4"):
        Endpoint(pod="x", ip="not-an-ip", node="node-1")


def _cases() -> list[tuple[str, str, list[Endpoint] | None]]:
    cases: list[tuple[str, str, list[Endpoint] | None]] = [
        (name, node, None) for name, sc in ALL.items() for node in sc.node_names
    ]
    draining = Endpoint(pod="gw-2", ip="172.16.3.10", node="node-3", ready=False, terminating=True)
    cases += [("local", "node-3", []), ("local", "node-3", [draining])]
    return cases


def test_iptables_restore_accepts_and_saves_back_the_same_rules() -> None:
    ip, restore = require_netns()
    with netns(ip) as ns:
        for name, node, endpoints in _cases():
            text = iptables_save(ALL[name], node, endpoints)
            checked = in_netns(ip, ns, restore, "--test", stdin=text)
            assert checked.returncode == 0, f"{name} {node}: {checked.stderr}"
            applied = in_netns(ip, ns, restore, stdin=text)
            assert applied.returncode == 0, f"{name} {node}: {applied.stderr}"
            saved = in_netns(ip, ns, restore.replace("-restore", "-save"))
            assert saved.returncode == 0, saved.stderr
            mine = [line for line in text.splitlines() if not line.startswith("#")]
            kernel = [line for line in saved.stdout.splitlines() if not line.startswith("#")]
            assert kernel == mine, f"{name} on {node}: iptables-save differs"


def test_own_namespace_is_deleted_even_after_a_failure() -> None:
    ip, _restore = require_netns()
    with pytest.raises(RuntimeError), netns(ip) as ns:
        assert in_netns(ip, ns, "true").returncode == 0
        raise RuntimeError("boom")
    listed = subprocess.run([ip, "netns", "list"], capture_output=True, text=True, check=True)
    assert ns not in listed.stdout
