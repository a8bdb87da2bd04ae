"""The path as data: sim.trace is the same walk as simulate, hop by hop, for every outcome.

For every preset (PRESETS and ALTERNATIVES), plus variants with a failure of the VIP's node and
in-cluster callers so that more outcomes occur, one connection of every (outcome, reason) the run
produces is traced, and its trace must agree with its row of ``simulate(...).connections``.
"""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

import sim
from sim import presets
from sim.path import Action, Flow, Packet, Verdict
from sim.results import CONNECTION_COLUMNS, Connection

SIM = Path(__file__).resolve().parents[1] / "sim"

# The decisive action of a trace's last hop, by the outcome its client sees.
LAST_ACTION = {
    "ok": {Action.DELIVERED},
    "timeout": {Action.NO_ANSWER, Action.DROPPED},
    "refused": {Action.REFUSED},
    "reset": {Action.RESET},
    "http_400": {Action.ANSWERED},
    "http_502": {Action.ANSWERED},
    "http_503": {Action.ANSWERED},
}


# Reasons of connections that were established and delivered, then broke in flight.
BROKEN_IN_FLIGHT = {"node_down_in_flight", "pod_deleted_in_flight", "conntrack_lost"}


def _variants() -> list[sim.Scenario]:
    out = []
    for name in [*presets.PRESETS, *presets.ALTERNATIVES]:
        base = replace(presets.get(name), duration_s=30.0, rate_per_s=8.0, seed=3)
        out.append(base)
        # The VIP's first announcer is node-3 in every preset but the naive one (node-1).
        leader = "node-1" if base.announcer == "naive" else "node-3"
        down = sim.NodeDown(node=leader, at_s=8.0, up_at_s=20.0)
        extra = {"in_cluster_share": 0.2} if base.haproxy is None else {}
        delete = sim.DeletePod(pod="gw-1", at_s=4.0)
        failed = replace(base, name=f"{name}+fail", failures=(down, delete), request_time_s=0.5)
        out.append(replace(failed, **extra))
    short = {"duration_s": 30.0, "rate_per_s": 8.0, "seed": 3}
    # No endpoints at all: REJECT, refused at once, or 503 from HAProxy in mode http (K6, H7).
    out.append(replace(presets.local_naive, name="no_endpoints", gateway_nodes=(), **short))
    http = replace(presets.haproxy_http_xff, **short)
    out.append(replace(http, name="http_no_endpoints", gateway_nodes=()))
    # Long requests and a forced delete: HAProxy in mode http answers 502 for the reset (H7).
    delete = (sim.DeletePod(pod="gw-2", at_s=10.0),)
    out.append(replace(http, name="http_delete", request_time_s=2.0, failures=delete))
    return out


VARIANTS = _variants()


def _one_per_outcome(conns: pd.DataFrame) -> list[int]:
    picks = conns.groupby(["outcome", "reason"], sort=True)["conn_id"].first()
    return [int(k) for k in picks]


@pytest.mark.parametrize("scenario", VARIANTS, ids=[s.name for s in VARIANTS])
def test_trace_agrees_with_the_row_for_every_outcome(scenario: sim.Scenario) -> None:
    conns = sim.simulate(scenario).connections
    for k in _one_per_outcome(conns):
        row = conns.iloc[k]
        traced, hops = sim.trace_hops(scenario, conn_id=k)
        frame = sim.trace(scenario, conn_id=k)
        assert traced == k
        what = f"{scenario.name} conn {k} ({row['outcome']}, {row['reason']})"
        # The trace's outcome and reason are the row's.
        assert frame.attrs == {"conn_id": k, "outcome": row["outcome"], "reason": row["reason"]}
        assert hops[-1].action in LAST_ACTION[row["outcome"]], what
        # The first hop's source is the client (or the in-cluster caller pod).
        assert hops[0].packet.src == f"{row['client_ip']}:{row['client_port']}", what
        assert hops[0].action is Action.ORIGINATED
        # The packet that reaches the gateway comes from gateway_direct_ip: the leg kube-proxy
        # sent on, into the gateway pod.
        into_pod = [h for h in hops if h.element.endswith("kube-proxy") and h.packet.dst_port]
        if row["gateway_direct_ip"]:
            assert into_pod and into_pod[-1].packet.src_ip == row["gateway_direct_ip"], what
            assert into_pod[-1].packet.dst_ip in _pod_ips(scenario, row["gateway_pod"]), what
            gateway = [h for h in hops if h.element.endswith("istio-ingressgateway")]
            assert gateway, what
        # The last hop's X-Forwarded-For is what the app saw.
        if row["outcome"] == "ok":
            assert hops[-1].element == "app sidecar (istio-proxy)"
            assert frame["xff"].iloc[-1] == row["xff_at_app"], what
            assert row["app_remote_ip"] in hops[-1].steps[0].detail, what
        else:
            ends = {"app sidecar (istio-proxy)"}
            assert not ends & set(frame["element"]) or row["reason"] in BROKEN_IN_FLIGHT, what
        # The frame is a view of the same hops.
        assert list(frame["element"]) == [h.element for h in hops]
        assert list(frame["action"]) == [h.action.value for h in hops]


def _pod_ips(scenario: sim.Scenario, pod: str) -> set[str]:
    """The addresses of every incarnation of ``pod`` in the run (a draining one serves on)."""
    pods = sim.simulate(scenario).pods
    return set(pods.loc[pods["pod"] == pod, "pod_ip"])


def test_the_variants_cover_every_outcome_and_many_reasons() -> None:
    seen: set[tuple[str, str]] = set()
    for scenario in VARIANTS:
        conns = sim.simulate(scenario).connections
        seen |= set(zip(conns["outcome"], conns["reason"], strict=True))
    outcomes = {o for o, _ in seen}
    assert outcomes == {"ok", "timeout", "reset", "refused", "http_400", "http_502", "http_503"}
    reasons = {r for _, r in seen if r}
    assert {
        "dead_node",
        "drop_no_local_endpoint",
        "node_down_in_flight",
        "pod_deleted_in_flight",
        "proxy_header_missing",
        "proxy_header_unexpected",
        "reject_no_endpoints",
        "haproxy_no_server",
    } <= reasons


def test_records_are_named_and_built_in_one_place() -> None:
    result = sim.simulate(replace(presets.cluster, duration_s=2.0))
    assert list(result.connections.columns) == list(Connection._fields) == list(CONNECTION_COLUMNS)
    # Only Flow.record builds a Connection (a copy with a new end is a _replace of one).
    builders = []
    for path in SIM.rglob("*.py"):
        text = path.read_text(encoding="utf-8").replace("class Connection(", "")
        if "_new_connection(" in text or re.search(r"(?<![\w.])Connection\(", text):
            builders.append(path.relative_to(SIM).as_posix())
    assert builders == ["path.py"]


def test_an_element_answers_with_a_packet_or_a_verdict() -> None:
    # The contract every element's handle follows, shown on kube-proxy with no endpoints.
    from sim.net.kube_proxy import KubeProxy
    from sim.net.node import Node

    kp = KubeProxy(nodes=1, local_policy=False, hosts=[Node(0)], pods=[])
    flow = Flow(0, 0.0, 0.5, "direct", [])
    flow.node = 0
    verdict = kp.handle(Packet("10.0.1.1", 40000, "10.0.0.100", 80, b""), flow)
    assert isinstance(verdict, Verdict)
    assert (verdict.outcome, verdict.reason, verdict.action) == (
        "refused",
        "reject_no_endpoints",
        Action.REFUSED,
    )
    assert flow.hops is not None and flow.hops[-1].steps[-1].detail == verdict.detail


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def test_no_function_is_longer_than_80_lines_or_takes_more_than_8_parameters() -> None:
    too_long, too_wide = [], []
    for path in sorted(SIM.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in _functions(tree):
            where = f"{path.relative_to(SIM)}:{fn.lineno} {fn.name}"
            assert fn.end_lineno is not None
            if fn.end_lineno - fn.lineno + 1 > 80:
                too_long.append(where)
            args = fn.args
            count = len(args.posonlyargs) + len(args.args) + len(args.kwonlyargs)
            count += bool(args.vararg) + bool(args.kwarg)
            if count > 8:
                too_wide.append(f"{where} ({count})")
    assert not too_long, too_long
    assert not too_wide, too_wide


def test_the_top_level_of_sim_holds_at_most_16_modules() -> None:
    modules = sorted(p.name for p in SIM.glob("*.py"))
    assert len(modules) <= 16, modules
    packages = {p.name for p in SIM.iterdir() if (p / "__init__.py").exists()}
    assert {"net", "proxy_protocol", "viz", "cli"} <= packages


def test_the_architecture_picture_names_every_element() -> None:
    svg = (SIM.parent / "docs" / "background" / "architecture.svg").read_text(encoding="utf-8")
    from sim.viz.architecture import BOXES

    for _key, title, code, _x, _y in BOXES:
        for line in [title, *code.split("\n")]:
            assert line.replace("&", "&amp;") in svg, line
    # Every element; http and tcp are the protocols they speak, not elements.
    elements = {p.stem for p in (SIM / "net").glob("*.py")} - {"__init__", "http", "tcp"}
    shown = " ".join(code for *_, code, _x, _y in BOXES)
    assert all(f"net.{name}" in shown for name in elements), elements
