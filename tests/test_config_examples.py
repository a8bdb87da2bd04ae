"""The three example configuration sets in examples/: explain's verdict and warnings, pinned.

Verdicts are pinned as relations that hold whatever the simulator's timers (the reachability,
which address the gateway and the app end up with), warnings as their fact IDs and lines.
"""

from __future__ import annotations

from pathlib import Path

from sim.config import Explanation, explain

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def warnings(result: Explanation) -> list[tuple[str, str, int, str]]:
    return [(w.fact, Path(w.file).name, w.line, w.level) for w in result.warnings]


def test_story_send_proxy_v2() -> None:
    result = explain([EXAMPLES / "story-send-proxy-v2"])
    sc = result.scenario
    assert sc.haproxy is not None
    assert (sc.haproxy.mode, sc.haproxy.send_proxy, sc.haproxy.backend) == ("tcp", "v2", "vip")
    assert sc.gateway_proxy_protocol and sc.external_traffic_policy == "Cluster"
    assert (sc.nodes, sc.encapsulation, sc.announcer) == (3, "IPIP", "metallb")
    assumed = {a.field for a in result.assumed}
    assert "gateway_nodes" in assumed  # the Deployment has no node affinity
    verdict = result.verdict()
    assert verdict["reachability_pct"] == 100.0
    assert verdict["client_ip_seen_pct"] == 100.0
    assert verdict["gateway_client_ip_seen_pct"] == 100.0
    assert warnings(result) == [("K8", "istio-gateway.yaml", 63, "warning")]
    vip = next(a for a in result.addresses if a["what"] == "VIP")
    assert vip == {"what": "VIP", "model": "10.0.0.100:80", "yours": "192.168.10.240:80"}


def test_http_forwardfor_with_one_trusted_hop() -> None:
    result = explain([EXAMPLES / "http-forwardfor"])
    sc = result.scenario
    assert sc.haproxy is not None
    assert (sc.haproxy.mode, sc.haproxy.forwardfor, sc.num_trusted_proxies) == ("http", True, 1)
    assert (sc.haproxy.inter_s, sc.haproxy.fall, sc.haproxy.rise) == (3.0, 2, 3)  # default-server
    assert (sc.haproxy.timeout_connect_s, sc.haproxy.timeout_check_s) == (3.0, 2.0)  # from web
    assert sc.encapsulation == "VXLANCrossSubnet" and len(sc.gateway_nodes) == 3
    verdict = result.verdict()
    assert verdict["reachability_pct"] == 100.0
    assert verdict["gateway_client_ip_seen_pct"] == 100.0  # from XFF, numTrustedProxies: 1
    assert verdict["client_ip_seen_pct"] == 0.0  # the app's last XFF entry is the SNAT (C4)
    assert all("node" in row["what"] for row in verdict["app_saw"])
    assert [w[0] for w in warnings(result)] == ["C1"]
    ignored = [i.what for i in result.ignored]
    assert any("backend 'api_gateway'" in w for w in ignored)
    assert any("TLS ends at HAProxy" in w for w in ignored)
    assert any("port status-port" in w for w in ignored)


def test_broken_pp_without_filter() -> None:
    result = explain([EXAMPLES / "broken-pp-no-filter"])
    sc = result.scenario
    assert sc.haproxy is not None and sc.haproxy.send_proxy == "v2"
    assert not sc.gateway_proxy_protocol
    assert sc.gateway_nodes == ("node-2", "node-3")  # worker-b, worker-c
    verdict = result.verdict()
    assert verdict["reachability_pct"] == 0.0 and verdict["ok"] == 0
    assert set(verdict["failed"]) == {"proxy_header_unexpected"}
    assert warnings(result) == [
        ("E6", "haproxy.cfg", 20, "warning"),
        ("H5", "haproxy.cfg", 20, "warning"),
        ("I10", "gateway-values.yaml", 64, "warning"),
    ]
    assert result.trace()["outcome"] == "http_400"


def test_example_files_are_valid_for_the_real_tools(tmp_path: Path) -> None:
    import subprocess

    import yaml
    from config_tools import require_haproxy_binary
    from haproxy_harness import make_self_signed_cert
    from test_config_validate import CRDS, validate

    checked = 0
    for path in sorted(EXAMPLES.glob("*/*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            for item in doc["items"] if doc["kind"] == "List" else [doc]:
                group = item["apiVersion"].rpartition("/")[0]
                if (item["apiVersion"], item["kind"]) in CRDS or "." not in group:
                    validate(item)
                    checked += 1
    assert checked >= 15
    binary = require_haproxy_binary()
    cert = make_self_signed_cert(tmp_path)
    for path in sorted(EXAMPLES.glob("*/haproxy.cfg")):
        # The TLS example's certificate lives on the user's box; stand in a throwaway one.
        text = path.read_text().replace("/etc/haproxy/certs/shop.example.com.pem", str(cert))
        copy = tmp_path / f"{path.parent.name}.cfg"
        copy.write_text(text)
        done = subprocess.run(
            [binary, "-c", "-f", str(copy)], capture_output=True, text=True, timeout=30, check=False
        )
        assert done.returncode == 0, f"{path}: {done.stdout}{done.stderr}"
