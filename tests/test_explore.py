"""Tests for sim.viz.explore: the log and summary tables, and the explorer's controls and widget."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import matplotlib.pyplot as plt
import pytest

import sim
from sim import presets
from sim.viz.explore import (
    CONTROLS,
    LOG_COLUMNS,
    VISIBILITY_FIELDS,
    Explorer,
    address_roles,
    client_visibility,
    controls_from_scenario,
    explorer,
    log_table,
    outcomes_by_window,
    scenario_from_controls,
    summary_table,
)

SHORT = replace(presets.cluster, duration_s=10.0, rate_per_s=20.0)


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


# --- scenario_from_controls / controls_from_scenario ------------------------------------------


def test_default_controls_give_the_cluster_preset() -> None:
    assert scenario_from_controls() == replace(presets.cluster, name="explore")


@pytest.mark.parametrize("preset", sorted(presets.PRESETS))
def test_every_preset_round_trips_through_the_controls(preset: str) -> None:
    scenario = presets.get(preset)
    controls = controls_from_scenario(scenario)
    assert set(controls) == set(CONTROLS)
    assert scenario_from_controls(base=scenario, **controls) == replace(scenario, name="explore")


def test_tcp_v2_maps_to_send_proxy_v2_and_no_trusted_hop() -> None:
    sc = scenario_from_controls(haproxy_mode="tcp", send_proxy="v2", gateway_proxy_protocol=True)
    assert sc.haproxy is not None
    assert (sc.haproxy.mode, sc.haproxy.send_proxy) == ("tcp", "v2")
    assert sc.gateway_proxy_protocol is True
    assert sc.num_trusted_proxies == 0  # I5


def test_http_mode_trusts_one_hop_and_none_mode_has_no_haproxy() -> None:
    http = scenario_from_controls(haproxy_mode="http")
    assert http.haproxy is not None and http.haproxy.forwardfor
    assert http.num_trusted_proxies == 1  # I4
    assert scenario_from_controls(haproxy_mode="none").haproxy is None


def test_policy_announcer_placement_and_failure_are_mapped() -> None:
    sc = scenario_from_controls(
        policy="Local",
        announcer="naive",
        placement=("node-3", "node-1"),
        failure_node="node-3",
        failure_at_s=12,
    )
    assert sc.external_traffic_policy == "Local"
    assert sc.announcer == "naive"
    assert sc.gateway_nodes == ("node-3", "node-1")
    assert sc.failures == (sim.NodeDown(node="node-3", at_s=12.0),)
    # Without a failure node the time is ignored.
    assert scenario_from_controls(failure_node="none", failure_at_s=999).failures == ()


def test_base_supplies_every_other_field() -> None:
    base = replace(presets.cluster, nodes=4, seed=7, duration_s=30.0)
    sc = scenario_from_controls(base=base, placement=("node-4",))
    assert (sc.nodes, sc.seed, sc.duration_s, sc.gateway_nodes) == (4, 7, 30.0, ("node-4",))


@pytest.mark.parametrize(
    ("controls", "name"),
    [
        ({"policy": "local"}, "policy"),
        ({"announcer": "cilium"}, "announcer"),
        ({"haproxy_mode": "udp"}, "haproxy_mode"),
        ({"send_proxy": "v3", "haproxy_mode": "tcp"}, "send_proxy"),
        ({"send_proxy": "v2"}, "send_proxy"),  # no HAProxy to send it
        ({"send_proxy": "v1", "haproxy_mode": "http"}, "send_proxy"),
        ({"gateway_proxy_protocol": 1}, "gateway_proxy_protocol"),
        ({"placement": ("node-9",)}, "placement"),
        ({"placement": "node-2"}, "placement"),
        ({"failure_node": "node-7"}, "failure_node"),
        ({"failure_node": "node-3", "failure_at_s": 60.0}, "failure_at_s"),
        ({"failure_node": "node-3", "failure_at_s": -1.0}, "failure_at_s"),
        ({"failure_node": "node-3", "failure_at_s": "soon"}, "failure_at_s"),
    ],
)
def test_invalid_controls_raise_naming_the_control(controls: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name}: "):
        scenario_from_controls(**controls)


@pytest.mark.parametrize(
    "failures",
    [
        (sim.NodeDown(node="node-1", at_s=1.0), sim.NodeDown(node="node-2", at_s=2.0)),
        (sim.DeletePod(pod="gw-1", at_s=1.0),),
        (sim.NodeDown(node="node-1", at_s=1.0, up_at_s=5.0),),
    ],
)
def test_controls_from_scenario_rejects_failures_it_cannot_express(failures: Any) -> None:
    with pytest.raises(ValueError, match=r"^failures: "):
        controls_from_scenario(replace(presets.cluster, failures=failures))


# --- tables -----------------------------------------------------------------------------------


def test_log_table_shows_c4_for_cluster_and_proxy_protocol() -> None:
    results = {
        "cluster": sim.simulate(SHORT),
        "pp": sim.simulate(replace(presets.proxy_protocol, duration_s=10.0, rate_per_s=20.0)),
    }
    table = log_table(results)
    assert tuple(table.columns) == LOG_COLUMNS
    assert len(table) == 4  # two setups x two gateway pods
    cluster = table[table["setup"] == "cluster"].set_index("gateway pod")
    # N3: gw-1 on node-2 sees node-3's tunnel IP, gw-2 on node-3 its node IP; XFF = SNAT (C4).
    assert cluster.loc["gw-1 on node-2", "gateway DRA"] == "172.16.3.0 (node-3 tunnel IP)"
    assert cluster.loc["gw-2 on node-3", "XFF at app"] == "10.0.0.13 (node-3 node IP)"
    pp = table[table["setup"] == "pp"]
    assert pp["gateway DRA"].str.endswith("(client)").all()  # E1, E7
    assert pp["sidecar DRA"].str.endswith("(client)").all()  # E9, I1
    assert not pp["gateway direct peer"].str.contains("client").any()  # E7: still the SNAT peer


def test_log_table_marks_fields_a_rejected_connection_never_set() -> None:
    result = sim.simulate(replace(presets.pp_unexpected, duration_s=5.0))
    table = log_table({"x": result})
    assert (table["XFF at app"] == "-").all()
    assert (table["sidecar DRA"] == "-").all()


def test_address_roles_cover_nodes_pods_clients_and_callers() -> None:
    result = sim.simulate(replace(SHORT, in_cluster_share=0.5))
    roles = address_roles(result)
    assert roles["10.0.0.11"] == "node-1 node IP"
    assert roles["172.16.2.0"] == "node-2 tunnel IP"
    assert roles["10.0.0.5"] == "HAProxy"
    assert "in-cluster caller" in roles.values()
    assert "client" in roles.values()


def test_summary_table_fills_absent_columns_and_rounds() -> None:
    ok = sim.simulate(SHORT)
    broken = sim.simulate(replace(presets.pp_missing, duration_s=10.0, rate_per_s=20.0))
    table = summary_table({"ok": ok, "broken": broken})
    assert list(table.index) == ["ok", "broken"]
    assert table.loc["ok", "failed_proxy_header_missing"] == 0
    assert table.loc["broken", "failed_proxy_header_missing"] == len(broken.connections)
    assert table.loc["broken", "reachability_pct"] == 0.0
    assert table.columns[-1] == "failed_proxy_header_missing"
    assert (table["failover_gap_s"] == table["failover_gap_s"].round(1)).all()


def test_outcomes_by_window_counts_every_connection() -> None:
    result = sim.simulate(replace(presets.pp_unexpected, duration_s=20.0))
    table = outcomes_by_window(result, window_s=5.0)
    assert list(table.index) == [0.0, 5.0, 10.0, 15.0]
    assert list(table.columns) == ["http_400"]
    assert int(table.to_numpy().sum()) == len(result.connections)
    with pytest.raises(ValueError, match=r"^window_s: "):
        outcomes_by_window(result, window_s=0)


# --- the widget -------------------------------------------------------------------------------


def test_explorer_builds_and_reruns_on_change() -> None:
    widgets = pytest.importorskip("ipywidgets")
    ex = Explorer(SHORT)
    assert isinstance(ex.widget, widgets.VBox)
    assert set(ex.controls) == set(CONTROLS)
    assert ex.values() == controls_from_scenario(SHORT)
    assert ex.result is not None
    assert ex.result.summary()["client_ip_seen_pct"] == 0.0  # Cluster SNAT (K1)
    assert ex.controls["failure_at_s"].disabled  # no failure node chosen
    ex.controls["haproxy_mode"].value = "tcp"
    ex.controls["send_proxy"].value = "v2"
    ex.controls["gateway_proxy_protocol"].value = True
    assert ex.error == ""
    assert ex.scenario is not None and ex.scenario.gateway_proxy_protocol
    assert ex.result.summary()["client_ip_seen_pct"] == 100.0  # the fix (E1)


def test_explorer_reports_an_invalid_combination_by_control_name() -> None:
    pytest.importorskip("ipywidgets")
    ex = Explorer(replace(presets.proxy_protocol, duration_s=10.0))
    before = ex.scenario
    ex.controls["haproxy_mode"].value = "http"  # send_proxy is still v2
    assert ex.error.startswith("send_proxy: ")
    assert "send_proxy" in ex.status.value
    assert ex.scenario is before  # nothing was re-run
    ex.controls["send_proxy"].value = "none"
    assert ex.error == ""
    assert ex.scenario is not None and ex.scenario.num_trusted_proxies == 1


def test_explorer_function_returns_the_widget() -> None:
    widgets = pytest.importorskip("ipywidgets")
    widget = explorer(SHORT)
    assert isinstance(widget, widgets.Widget)
    # eight controls, the status line and the output area
    assert len(widget.children) == len(CONTROLS) + 2


def test_client_visibility_tells_the_fix_from_the_l7_alternative() -> None:
    short = {"duration_s": 10.0, "rate_per_s": 20.0}
    results = {
        "pp": sim.simulate(replace(presets.proxy_protocol, **short)),
        "xff": sim.simulate(replace(presets.haproxy_http_xff, **short)),
        "spoofed": sim.simulate(
            replace(presets.proxy_protocol, client_xff="6.6.6.6", num_trusted_proxies=1, **short)
        ),
        "broken": sim.simulate(replace(presets.pp_missing, **short)),
    }
    table = client_visibility(results)
    assert list(table.columns) == list(VISIBILITY_FIELDS)
    assert table.loc["pp"].drop("gateway direct peer").eq(100.0).all()
    assert table.loc["pp", "gateway direct peer"] == 0.0  # E7: the peer is still the SNAT address
    # HAProxy mode http: the gateway trusts one hop (I4), but the sidecar sees the SNAT (C4).
    assert table.loc["xff", "x-envoy-external-address"] == 100.0
    assert table.loc["xff", "sidecar DRA"] == 0.0
    # numTrustedProxies 1 behind a TCP hop trusts the client's own XFF (I5).
    assert table.loc["spoofed", "gateway DRA"] == 0.0
    assert table.loc["spoofed", "first XFF entry at app"] == 0.0
    assert table.loc["broken"].isna().all()


def test_explorer_keeps_a_late_failure_time() -> None:
    pytest.importorskip("ipywidgets")
    late = replace(SHORT, failures=(sim.NodeDown(node="node-3", at_s=9.5),))
    ex = Explorer(late)
    assert ex.values()["failure_at_s"] == 9.5
    assert ex.scenario is not None and ex.scenario.failures == late.failures


def test_controls_refuse_scenarios_aimed_at_the_nodeports() -> None:
    from dataclasses import replace

    import pytest

    from sim import presets
    from sim.viz.explore import controls_from_scenario

    with pytest.raises(ValueError, match=r"^client_target"):
        controls_from_scenario(replace(presets.local, client_target="nodeport"))
    with pytest.raises(ValueError, match=r"^haproxy\.backend"):
        controls_from_scenario(presets.get("haproxy_nodeports"))


def test_explorer_says_running_while_it_simulates(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ipywidgets")
    import sim.viz.explorer as module

    seen: list[str] = []
    real = module.simulate

    def watched(scenario: sim.Scenario) -> sim.Result:
        seen.append(ex.status.value)
        return real(scenario)

    ex = Explorer(SHORT)
    monkeypatch.setattr(module, "simulate", watched)
    ex.controls["policy"].value = "Local"
    assert seen and seen[-1].startswith(module.RUNNING)
    assert ex.status.value.startswith("simulated ")


def test_explorer_runs_one_update_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # JupyterLab may deliver widget messages on a kernel subshell thread: two changes at once
    # must not draw into each other's figure.
    pytest.importorskip("ipywidgets")
    import threading

    import sim.viz.explorer as module

    ex = Explorer(SHORT)
    running = 0
    overlaps: list[int] = []
    real = module.simulate

    def slow(scenario: sim.Scenario) -> sim.Result:
        nonlocal running
        running += 1
        overlaps.append(running)
        threading.Event().wait(0.05)
        running -= 1
        return real(scenario)

    monkeypatch.setattr(module, "simulate", slow)
    threads = [
        threading.Thread(target=setattr, args=(ex.controls["policy"], "value", v))
        for v in ("Local", "Cluster", "Local")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps and max(overlaps) == 1


def test_every_control_has_one_label_in_one_column() -> None:
    widgets = pytest.importorskip("ipywidgets")
    from sim.viz.explorer import LABELS

    ex = Explorer(SHORT)
    rows = ex.widget.children[: len(CONTROLS)]
    widths = set()
    for row, name in zip(rows, CONTROLS, strict=True):
        label, control = row.children
        assert isinstance(label, widgets.Label)
        assert label.value == LABELS[name]
        assert control is ex.controls[name]
        assert control.description == ""  # no second, cut-off label inside the control
        widths.add(label.layout.width)
    assert len(widths) == 1


def test_compact_summary_fits_a_page() -> None:
    from sim.viz.explore import COMPACT_COLUMNS, compact_summary

    down = replace(SHORT, failures=(sim.NodeDown(node="node-3", at_s=4.0),))
    table = compact_summary({"ok": sim.simulate(SHORT), "down": sim.simulate(down)})
    assert list(table.columns) == list(COMPACT_COLUMNS)
    assert table.loc["ok", "main failure"] == "-"
    assert table.loc["ok", "load per pod (%)"].startswith("gw-1 ")
    assert table.loc["down", "main failure"].split()[0] in {"dead_node", "node_down_in_flight"}
