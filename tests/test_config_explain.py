"""``explain``: every pitfall rule, every class of bad input, the JSON report and the CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from sim import HAProxyConfig, presets
from sim.cli import main
from sim.config import ExplainError, explain, write_configs
from sim.scenario import Scenario


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse usage errors and --help
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def facts(
    scenario: Scenario, out: Path, edit: dict[str, tuple[str, str]] | None = None
) -> dict[str, str]:
    """Write the scenario's files, apply text edits, explain: ``{fact: level}``."""
    write_configs(scenario, out)
    for name, (old, new) in (edit or {}).items():
        path = out / name
        text = path.read_text()
        assert old in text, (name, old)
        path.write_text(text.replace(old, new))
    return {w.fact: w.level for w in explain([out]).warnings}


CASES = {
    "E6 and H5: PROXY sent, no filter": (presets.pp_unexpected, None, {"E6", "H5"}),
    "E5: filter, no HAProxy": (presets.pp_missing, None, {"E5"}),
    "E5 and H5: filter, HAProxy in mode http": (
        replace(presets.proxy_protocol, haproxy=HAProxyConfig(mode="http")),
        None,
        {"E5", "H5", "I4"},
    ),
    "K8: filter, callers that skip HAProxy": (presets.proxy_protocol, None, {"K8"}),
    "I5: trusted hops behind PROXY": (
        replace(presets.proxy_protocol, num_trusted_proxies=1),
        None,
        {"I5", "K8"},
    ),
    "I4: forwardfor but no trusted hop": (
        replace(presets.haproxy_http_xff, num_trusted_proxies=0),
        None,
        {"I4", "C1"},
    ),
    "M16: Local behind a naive announcer": (presets.local_naive, None, {"M16"}),
    "C1: Cluster's SNAT address": (presets.cluster, None, {"C1"}),
    "H4 note: health check port": (presets.haproxy_nodeports, None, {"H4", "K8"}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_pitfall_rules(name: str, tmp_path: Path) -> None:
    scenario, edit, expected = CASES[name]
    assert set(facts(scenario, tmp_path, edit)) == expected


def test_tls_inspector_before_proxy_protocol(tmp_path: Path) -> None:
    write_configs(presets.proxy_protocol, tmp_path)
    path = tmp_path / "istio-envoyfilter.yaml"
    text = path.read_text()
    pp_at, tls_at = (
        text.index("        - name: envoy.filters.listener.proxy_protocol"),
        text.index("        - name: envoy.filters.listener.tls_inspector"),
    )
    path.write_text(text[:pp_at] + text[tls_at:] + text[pp_at:tls_at])
    found = explain([tmp_path]).warnings
    tls = [w for w in found if w.fact == "I2"]
    assert len(tls) == 1 and "tls_inspector" in tls[0].message
    assert path.read_text().splitlines()[tls[0].line - 1].strip().endswith("tls_inspector")


def test_explicit_check_port_on_the_vip_and_nodeport_checks(tmp_path: Path) -> None:
    edit = {"haproxy.cfg": ("check inter", "check port 8080 inter")}
    assert facts(presets.proxy_protocol, tmp_path / "a", edit)["H4"] == "warning"
    edit = {"haproxy.cfg": ("    option httpchk GET /healthz\n", "")}
    assert "K11" in facts(presets.haproxy_nodeports, tmp_path / "b", edit)
    cluster = replace(presets.haproxy_nodeports, external_traffic_policy="Cluster")
    edit = {"haproxy.cfg": ("check inter", "check port 30081 inter")}
    assert "K10" in facts(cluster, tmp_path / "c", edit)


def test_unknown_kinds_and_non_objects_are_listed_not_fatal(tmp_path: Path) -> None:
    write_configs(presets.cluster, tmp_path)
    (tmp_path / "extra.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n---\njust: data\n---\n"
    )
    (tmp_path / "notes.txt").write_text("hello")
    result = explain([tmp_path])
    ignored = {(Path(i.file).name, i.line, i.what.split(":")[0]) for i in result.ignored}
    assert ("extra.yaml", 1, "kind Secret (v1)") in ignored
    assert ("extra.yaml", 6, "a YAML document without `kind`") in ignored
    assert ("notes.txt", 0, "not a .cfg, .yaml, .yml or .json file") in ignored


def test_set_changes_assumptions(tmp_path: Path) -> None:
    write_configs(presets.proxy_protocol, tmp_path)
    result = explain([tmp_path], changes=[("in_cluster_share", "0.2"), ("duration_s", "10")])
    assert result.scenario.in_cluster_share == 0.2 and result.scenario.duration_s == 10.0
    assert any(i.field == "in_cluster_share" and i.file == "--set" for i in result.inferred)
    verdict = result.verdict()
    assert 70.0 < verdict["reachability_pct"] < 90.0  # the in-cluster callers are reset (K8)
    assert verdict["failed"]["proxy_header_missing"] > 0


def test_json_report_has_the_documented_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_configs(presets.pp_unexpected, tmp_path)
    status, out, err = run(capsys, "explain", str(tmp_path), "--json")
    assert status == 0, err
    report = json.loads(out)
    assert set(report) == {
        "files",
        "scenario",
        "inferred",
        "assumed",
        "ignored",
        "addresses",
        "verdict",
        "trace",
        "warnings",
    }
    assert set(report["verdict"]) >= {"reachability_pct", "client_ip_seen_pct", "app_saw"}
    assert report["verdict"]["reachability_pct"] == 0.0
    assert report["scenario"]["haproxy"]["send_proxy"] == "v2"
    assert report["scenario"]["gateway_nodes"] == ["node-2", "node-3"]
    for w in report["warnings"]:
        assert set(w) == {"fact", "message", "file", "line", "level"}
    for i in report["inferred"]:
        assert set(i) == {"field", "value", "file", "line", "why"}
    assert report["trace"]["outcome"] == "http_400" and report["trace"]["hops"]
    assert {"E6", "H5"} <= {w["fact"] for w in report["warnings"]}


def test_text_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_configs(presets.proxy_protocol, tmp_path)
    status, out, _err = run(capsys, "explain", str(tmp_path))
    assert status == 0
    for heading in ("Inferred", "Assumed", "Path of connection", "Verdict", "Warnings"):
        assert f"\n{heading}" in out
    assert "haproxy.cfg:" in out and "[K8]" in out
    assert "the app saw the client IP in 100 %" in out


def _bad(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: gw
spec:
  type: LoadBalancer
  externalTrafficPolicy: {policy}
  ports:
  - port: 80
"""

BAD_INPUT = {
    "yaml does not parse": (
        "a.yaml",
        "kind: Service\nspec: [1, 2\nx: 3\n",
        "a.yaml:3: not valid YAML",
    ),
    "bad traffic policy": (
        "s.yaml",
        SERVICE.format(policy="Sometimes"),
        "s.yaml:7: externalTrafficPolicy",
    ),
    "not utf-8": ("b.yaml", b"kind: \xff\xfe\n", "b.yaml: not UTF-8 text"),
    "nothing relevant": (
        "c.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\n",
        "c.yaml: nothing to explain",
    ),
    "ippool both tunnels": (
        "p.yaml",
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\nspec:\n"
        "  cidr: 10.0.0.0/8\n  ipipMode: Always\n  vxlanMode: Always\n",
        "p.yaml:7: IPPool ipipMode/vxlanMode",
    ),
    "proxy config not yaml": (
        "d.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: g\nspec:\n  template:\n"
        "    metadata:\n      labels: {istio: ingressgateway}\n      annotations:\n"
        "        proxy.istio.io/config: '{\"gatewayTopology\": [1,'\n",
        "d.yaml:10: not valid YAML/JSON",
    ),
    "filter accepts requests without PROXY": (
        "e.yaml",
        "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata:\n  name: f\n"
        "spec:\n  configPatches:\n  - applyTo: LISTENER\n    patch:\n      operation: MERGE\n"
        "      value:\n        listener_filters:\n"
        "        - name: envoy.filters.listener.proxy_protocol\n"
        "          typed_config:\n            allow_requests_without_proxy_protocol: true\n",
        "e.yaml:14: allow_requests_without_proxy_protocol",
    ),
    "metallb bgp": (
        "m.yaml",
        "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata:\n  name: b\n",
        "m.yaml:1: MetalLB BGP mode",
    ),
    "haproxy time": (
        "haproxy.cfg",
        "frontend f\n  bind :80\n  default_backend b\nbackend b\n"
        "  server s 1.2.3.4:80 check inter soon\n",
        "haproxy.cfg:5: 'soon': expected a duration",
    ),
    "haproxy send-proxy in mode http": (
        "haproxy.cfg",
        "defaults\n  mode http\nfrontend f\n  bind :80\n  default_backend b\nbackend b\n"
        "  server s 1.2.3.4:80 send-proxy\n",
        "haproxy.cfg:7: send-proxy with mode http is not modelled",
    ),
    "haproxy servers disagree": (
        "haproxy.cfg",
        "frontend f\n  bind :80\n  default_backend b\nbackend b\n  server s1 1.2.3.4:30080 "
        "send-proxy-v2\n  server s2 1.2.3.5:30080\n",
        "haproxy.cfg:6: servers differ in 'send-proxy-v2'",
    ),
}


@pytest.mark.parametrize("name", list(BAD_INPUT))
def test_bad_input_is_one_line_exit_2(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file, text, message = BAD_INPUT[name]
    path = _bad(tmp_path, file, text)
    with pytest.raises(ExplainError):
        explain([path])
    status, out, err = run(capsys, "explain", str(path))
    assert status == 2 and out == ""
    assert err.startswith(f"srcip-lab: error: {tmp_path}/{message}"), err
    assert err.count("\n") == 1


def test_missing_path_and_servers_pointing_elsewhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _out, err = run(capsys, "explain", str(tmp_path / "nope"))
    assert status == 2 and "nope: no such file or directory" in err
    write_configs(presets.proxy_protocol, tmp_path)
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(cfg.read_text().replace("10.0.0.100:80", "10.9.9.9:80"))
    status, _out, err = run(capsys, "explain", str(tmp_path))
    assert status == 2 and "is neither the Service's VIP (10.0.0.100:80)" in err


def test_config_command_writes_the_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(
        capsys, "config", "local", "--set", "encapsulation=IPIP", "--out", str(tmp_path)
    )
    assert status == 0, err
    written = out.split()
    assert str(tmp_path / "service.yaml") in written
    assert str(tmp_path / "node-3" / "iptables-save.txt") in written
    assert "ipipMode: Always" in (tmp_path / "calico-ippool.yaml").read_text()
    assert not (tmp_path / "haproxy.cfg").exists()  # no HAProxy in this preset
    status, _out, err = run(capsys, "config", "nope", "--out", str(tmp_path))
    assert status == 2 and "unknown name 'nope'" in err and err.count("\n") == 1
    status, _out, err = run(capsys, "config", "local")
    assert status == 2 and "--out" in err


def test_help_texts(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _err = run(capsys, "config", "--help")
    assert status == 0 and "iptables-save.txt" in out and "presets:" in out
    status, out, _err = run(capsys, "explain", "--help")
    assert status == 0 and "--json" in out and "FILE:LINE" in out and "exit status 2" in out


def test_nodeport_service_and_named_servers(tmp_path: Path) -> None:
    service = SERVICE.format(policy="Local").replace("LoadBalancer", "NodePort")
    service = service.replace("  - port: 80\n", "  - port: 80\n    nodePort: 31080\n")
    path = _bad(tmp_path, "svc.yaml", service)
    result = explain([path])
    assert result.scenario.client_target == "nodeport"
    assert "K7" in {w.fact for w in result.warnings}
    # HAProxy naming the VIP by a DNS name: assumed to resolve to it.
    write_configs(presets.proxy_protocol, tmp_path / "cfg")
    cfg = tmp_path / "cfg" / "haproxy.cfg"
    cfg.write_text(cfg.read_text().replace("10.0.0.100:80", "ingress.example.com:80"))
    named = explain([tmp_path / "cfg"])
    assert named.scenario.haproxy is not None and named.scenario.haproxy.backend == "vip"
    assert any(
        a.field == "haproxy.backend" and "ingress.example.com" in a.reason for a in named.assumed
    )


@pytest.mark.parametrize("name", ["haproxy_nodeports", "local_naive", "pp_missing"])
def test_reports_are_json_for_presets(name: str, tmp_path: Path) -> None:
    preset = {**presets.PRESETS, **presets.ALTERNATIVES}[name]
    write_configs(preset, tmp_path)
    report = explain([tmp_path]).report()
    assert json.loads(json.dumps(report))["scenario"]["name"] == "explain"
    assert report["scenario"]["nodes"] == preset.nodes
