"""The generated haproxy.cfg (sim.config.haproxy_cfg): content, and the real ``haproxy -c -f``."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from config_tools import require_haproxy_binary

from sim import HAProxyConfig, presets
from sim.config import haproxy_cfg
from sim.config.haproxy_cfg import haproxy_time

WITH_HAPROXY = {
    name: sc
    for name, sc in {**presets.PRESETS, **presets.ALTERNATIVES}.items()
    if sc.haproxy is not None
}
VARIANTS = {
    "v1": replace(presets.proxy_protocol, haproxy=HAProxyConfig(mode="tcp", send_proxy="v1")),
    "v2-options-timers": replace(
        presets.proxy_protocol,
        haproxy=HAProxyConfig(
            mode="tcp",
            send_proxy="v2",
            proxy_v2_options=("crc32c", "unique-id", "authority", "ssl"),
            timeout_connect_s=1.5,
            timeout_check_s=1.0,
            fastinter_s=0.5,
            downinter_s=5.0,
        ),
    ),
    "nodeports-cluster": replace(presets.haproxy_nodeports, external_traffic_policy="Cluster"),
    "no-check": replace(presets.cluster, haproxy=HAProxyConfig(mode="tcp", check=False)),
    "http-no-forwardfor": replace(
        presets.cluster, haproxy=HAProxyConfig(mode="http", forwardfor=False)
    ),
}


def server_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("server ")]


def test_haproxy_time() -> None:
    assert [haproxy_time(t) for t in (2.0, 0.5, 1.5, 0.0015, 60)] == [
        "2s",
        "500ms",
        "1500ms",
        "1500us",
        "60s",
    ]


def test_story_config_sends_proxy_v2_to_the_vip() -> None:
    text = haproxy_cfg(presets.proxy_protocol)
    assert "bind 10.0.0.5:80" in text and "mode tcp" in text
    assert server_lines(text) == [
        "server vip 10.0.0.100:80 check inter 2s fall 3 rise 2 send-proxy-v2"
    ]
    assert "daemon" not in text.replace("No `daemon`", "")
    assert "stats socket" not in text


def test_nodeports_under_local_check_the_health_check_node_port() -> None:
    text = haproxy_cfg(presets.haproxy_nodeports)
    assert "option httpchk GET /healthz" in text and "balance roundrobin" in text
    assert server_lines(text) == [
        f"server node-{i} 10.0.0.1{i}:30080 check port 30081 inter 2s fall 3 rise 2 send-proxy-v2"
        for i in (1, 2, 3)
    ]
    cluster = haproxy_cfg(VARIANTS["nodeports-cluster"])
    assert "httpchk" not in cluster and "port 30081" not in cluster  # no such port (K10)


def test_http_forwardfor_timers_and_stats_socket() -> None:
    text = haproxy_cfg(presets.haproxy_http_xff, stats_socket="/run/lab/admin.sock")
    assert "mode http" in text and "option forwardfor" in text
    assert "stats socket /run/lab/admin.sock mode 600 level admin" in text
    timed = haproxy_cfg(VARIANTS["v2-options-timers"])
    assert "timeout connect 1500ms" in timed and "timeout check 1s" in timed
    assert server_lines(timed) == [
        "server vip 10.0.0.100:80 check inter 2s fall 3 rise 2 fastinter 500ms downinter 5s "
        "send-proxy-v2 proxy-v2-options crc32c,unique-id,authority,ssl"
    ]


def test_scenario_without_haproxy_has_no_config() -> None:
    with pytest.raises(ValueError, match="no HAProxy"):
        haproxy_cfg(presets.cluster)


@pytest.mark.parametrize("name", [*WITH_HAPROXY, *VARIANTS])
def test_haproxy_accepts_the_config(name: str, tmp_path: Path) -> None:
    binary = require_haproxy_binary()
    scenario = WITH_HAPROXY.get(name) or VARIANTS[name]
    path = tmp_path / "haproxy.cfg"
    path.write_text(haproxy_cfg(scenario, stats_socket=str(tmp_path / "admin.sock")))
    checked = subprocess.run(
        [binary, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Configuration file is valid" in checked.stdout
    assert "WARNING" not in checked.stdout + checked.stderr
