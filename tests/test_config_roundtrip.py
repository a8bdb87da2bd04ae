"""Round trip: ``explain`` on what ``config`` wrote gives back the scenario and its verdict.

For every preset (``PRESETS`` and ``ALTERNATIVES``): every field the files can express comes
back equal, and the fields they cannot express (traffic, timers) are assumed at the Scenario's
defaults, which the presets use, so the whole scenario is equal apart from its name; the verdict
is :func:`sim.simulate`'s summary of the preset itself.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from sim import HAProxyConfig, presets, simulate
from sim.config import explain, write_configs
from sim.config.write import ALTERNATIVE_DIR
from sim.scenario import Scenario

ALL = {**presets.PRESETS, **presets.ALTERNATIVES}
# The fields the files express (the rest are traffic and timers, assumed at their defaults).
EXPRESSED = (
    "nodes",
    "gateway_nodes",
    "external_traffic_policy",
    "announcer",
    "haproxy",
    "gateway_proxy_protocol",
    "num_trusted_proxies",
    "encapsulation",
    "listener_filters_timeout_s",
    "termination_drain_s",
)


def roundtrip(scenario: Scenario, out: Path) -> Scenario:
    write_configs(scenario, out)
    return explain([out]).scenario


@pytest.mark.parametrize("name", list(ALL))
def test_preset_round_trip_gives_the_same_scenario_and_verdict(name: str, tmp_path: Path) -> None:
    preset = ALL[name]
    write_configs(preset, tmp_path)
    result = explain([tmp_path])
    back = result.scenario
    for field in EXPRESSED:
        assert getattr(back, field) == getattr(preset, field), field
    assert replace(back, name=preset.name) == preset
    expected = simulate(preset).summary()
    verdict = result.verdict()
    for key in ("connections", "ok", "reachability_pct", "client_ip_seen_pct"):
        assert verdict[key] == expected[key], key
    for key, value in expected.items():
        if key.startswith("failed_"):
            assert verdict["failed"][key.removeprefix("failed_")] == value


VARIANTS = {
    "five-nodes-local": replace(
        presets.local,
        nodes=5,
        gateway_nodes=("node-4", "node-1"),
        encapsulation="IPIPCrossSubnet",
        termination_drain_s=12.5,
    ),
    "tcp-v1-timers": replace(
        presets.proxy_protocol,
        haproxy=HAProxyConfig(
            mode="tcp",
            send_proxy="v1",
            inter_s=0.5,
            fall=5,
            rise=1,
            timeout_connect_s=1.0,
            timeout_check_s=0.25,
            fastinter_s=0.2,
            downinter_s=4.0,
        ),
        listener_filters_timeout_s=3.0,
    ),
    "v2-options-trusted": replace(
        presets.pp_unexpected,
        haproxy=HAProxyConfig(
            mode="tcp", send_proxy="v2", proxy_v2_options=("unique-id", "crc32c")
        ),
        num_trusted_proxies=2,
        encapsulation="None",
    ),
    "nodeports-cluster-no-check": replace(
        presets.haproxy_nodeports,
        external_traffic_policy="Cluster",
        haproxy=HAProxyConfig(mode="tcp", backend="nodeports", check=False),
        gateway_proxy_protocol=False,
    ),
    "http-no-forwardfor": replace(
        presets.cluster, haproxy=HAProxyConfig(mode="http", forwardfor=False), nodes=4
    ),
    "no-replica": replace(presets.cluster, gateway_nodes=()),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_changed_fields_come_back(name: str, tmp_path: Path) -> None:
    scenario = VARIANTS[name]
    back = roundtrip(scenario, tmp_path)
    assert replace(back, name=scenario.name) == scenario


def test_the_annotation_alternative_gives_the_same_scenario(tmp_path: Path) -> None:
    write_configs(presets.proxy_protocol, tmp_path / "cfg")
    alt = tmp_path / "alt"
    shutil.copytree(tmp_path / "cfg", alt, ignore=shutil.ignore_patterns("node-*"))
    (alt / "istio-envoyfilter.yaml").unlink()
    service = (alt / "service.yaml").read_text().split("---\n")[0]
    (alt / "service.yaml").write_text(service)
    (alt / ALTERNATIVE_DIR / "gateway-deployment.yaml").rename(alt / "gateway-deployment.yaml")
    result = explain([alt])
    assert replace(result.scenario, name="proxy_protocol") == presets.proxy_protocol
    assert any(
        i.field == "gateway_proxy_protocol" and "gatewayTopology" in i.why for i in result.inferred
    )
    # Both at once is the pitfall I11: two proxy_protocol filters.
    both = explain([alt, tmp_path / "cfg" / "istio-envoyfilter.yaml"])
    assert "I11" in {w.fact for w in both.warnings}
