"""Tests for sim.viz.figures: the tutorial figures draw what the results say, for every preset."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

import sim
from sim.viz.figures import (
    EVENT_STYLES,
    draw_topology,
    plot_load_spread,
    plot_reachability,
    plot_sweep,
    plot_timeline,
    rate_limit_effect,
)

SHORT = {
    name: replace(sc, duration_s=10.0, rate_per_s=20.0) for name, sc in sim.presets.PRESETS.items()
}
FAILOVER = (sim.NodeDown(node="node-3", at_s=4.0),)


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    try:
        yield
    finally:
        plt.close("all")


@pytest.fixture(scope="module")
def failover_results() -> dict[str, sim.Result]:
    names = ("cluster", "local", "proxy_protocol")
    return {n: sim.simulate(replace(SHORT[n], duration_s=20.0, failures=FAILOVER)) for n in names}


def _bars(ax: Axes) -> list[Rectangle]:
    return [p for c in ax.containers for p in c.patches]  # type: ignore[attr-defined]


def test_reachability_bars_match_the_table() -> None:
    table = sim.compare([SHORT["cluster"], SHORT["local"], SHORT["local_naive"]])
    _, ax = plt.subplots()
    plot_reachability(table, ax=ax)
    assert len(ax.containers) == 2
    assert len(_bars(ax)) == 6
    reach = [b.get_height() for b in ax.containers[0].patches]  # type: ignore[attr-defined]
    seen = [b.get_height() for b in ax.containers[1].patches]  # type: ignore[attr-defined]
    assert reach == pytest.approx([100.0, 100.0, 0.0])
    assert seen == pytest.approx([0.0, 100.0, 0.0])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cluster", "local", "local_naive"]
    assert ax.get_ylim()[0] == 0
    legend = ax.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == [
        "request reached the app",
        "app saw the real client IP",
    ]


def test_reachability_rejects_a_table_without_the_columns() -> None:
    with pytest.raises(ValueError, match="reachability_pct"):
        plot_reachability(sim.compare([SHORT["cluster"]]).drop(columns="reachability_pct"))


@pytest.mark.parametrize("name", sorted(SHORT))
def test_every_figure_draws_each_preset(name: str) -> None:
    result = sim.simulate(SHORT[name])
    plot_reachability(result.summary_frame())
    plot_timeline({name: result})
    plot_load_spread({name: result})
    draw_topology(SHORT[name], result=result)
    assert len(plt.get_fignums()) == 4


def test_timeline_has_one_line_per_scenario_and_marks_the_failover(
    failover_results: dict[str, sim.Result],
) -> None:
    _, ax = plt.subplots()
    plot_timeline(failover_results, bin_s=1.0, ax=ax)
    lines = {str(ln.get_label()): ln for ln in ax.get_lines()}
    for label in failover_results:
        assert len(np.asarray(lines[label].get_xdata())) == 20  # 20 one-second bins
    # Before the failure every connection succeeds; right after it the cluster line collapses.
    cluster_y = np.asarray(lines["cluster"].get_ydata(), dtype=float)
    assert cluster_y[0] == pytest.approx(100.0)
    assert min(cluster_y[5:8]) < 50.0
    legend = ax.get_legend()
    assert legend is not None
    texts = {t.get_text() for t in legend.get_texts()}
    assert EVENT_STYLES["node_down"][0] in texts
    assert EVENT_STYLES["memberlist_dead"][0] in texts
    assert EVENT_STYLES["elected"][0] in texts
    assert "gratuitous ARP (M9)" in texts
    # The failure line sits at t = 4 s; the detection line after it.
    vlines = [ln for ln in ax.get_lines() if str(ln.get_label()).startswith("_")]
    xs = sorted(float(np.asarray(ln.get_xdata(), dtype=float)[0]) for ln in vlines)
    assert xs[0] == pytest.approx(4.0)
    dead_t = failover_results["cluster"].events.query("kind == 'memberlist_dead'")["t"]
    assert any(x == pytest.approx(float(dead_t.iloc[0])) for x in xs)


def test_timeline_rejects_bad_arguments(failover_results: dict[str, sim.Result]) -> None:
    with pytest.raises(ValueError, match="bin_s"):
        plot_timeline(failover_results, bin_s=0)
    with pytest.raises(ValueError, match="results"):
        plot_timeline({})


def test_load_spread_bars_are_the_shares(failover_results: dict[str, sim.Result]) -> None:
    results = {
        "Local": sim.simulate(
            replace(SHORT["local"], nodes=3, gateway_nodes=("node-2", "node-3", "node-3"))
        ),
        "Cluster": sim.simulate(
            replace(SHORT["cluster"], nodes=3, gateway_nodes=("node-2", "node-3", "node-3"))
        ),
    }
    _, ax = plt.subplots()
    plot_load_spread(results, ax=ax)
    assert len(ax.containers) == 2
    local = [b.get_height() for b in ax.containers[0].patches]  # type: ignore[attr-defined]
    cluster = [b.get_height() for b in ax.containers[1].patches]  # type: ignore[attr-defined]
    # Local: everything enters node-3 (M3) and stays there (K2): gw-1 on node-2 gets nothing.
    assert local[0] == 0.0
    assert sum(local) == pytest.approx(100.0)
    # Cluster: kube-proxy spreads uniformly over the three pods (K14).
    assert all(20.0 < s < 47.0 for s in cluster)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["gw-1\n(node-2)", "gw-2\n(node-3)", "gw-3\n(node-3)"]


def test_topology_marks_the_announcer_and_the_path(
    failover_results: dict[str, sim.Result],
) -> None:
    _, ax = plt.subplots()
    sc = failover_results["proxy_protocol"].scenario
    draw_topology(sc, result=failover_results["proxy_protocol"], ax=ax)
    texts = {t.get_text() for t in ax.texts}
    assert {"HAProxy\n10.0.0.5", "MetalLB VIP\n10.0.0.100", "gw-1\non node-2", "app"} <= texts
    assert "node-3\n10.0.0.13" in texts
    legend = ax.get_legend()
    assert legend is not None
    labels = {t.get_text() for t in legend.get_texts()}
    assert "announces the VIP at t = 0 (M3)" in labels
    assert "takes over the VIP later (M3, M8)" in labels
    assert "powered off (NodeDown)" in labels
    assert "not announcing" in labels  # node-2 never held the VIP


def test_topology_local_has_no_tunnel_edges() -> None:
    _, ax = plt.subplots()
    draw_topology(SHORT["local"], ax=ax)
    texts = {t.get_text() for t in ax.texts}
    assert "HAProxy\n10.0.0.5" not in texts
    assert ax.get_legend() is None  # no result, no tunnel edges: nothing to explain
    _, ax2 = plt.subplots()
    draw_topology(SHORT["cluster"], ax=ax2)
    legend = ax2.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == ["via tunnel (N3)"]


def test_rate_limit_throttles_everyone_behind_snat() -> None:
    result = sim.simulate(SHORT["cluster"])
    table = rate_limit_effect(result, 5).set_index("key")
    assert table.loc["client_ip", "distinct_sources"] == SHORT["cluster"].clients
    # Cluster: the gateway sees only node-3's node IP and tunnel IP (K1, N3).
    assert table.loc["gateway_client_ip", "distinct_sources"] == 2
    rejected = table["rejected"].astype(int)
    assert rejected["gateway_client_ip"] > 10 * rejected["client_ip"]
    assert table.loc["gateway_client_ip", "requests"] == result.summary()["ok"]
    # With PROXY protocol the gateway keys on the real client again (E1).
    pp = rate_limit_effect(sim.simulate(SHORT["proxy_protocol"]), 5).set_index("key")
    pp_rejected = pp["rejected"].astype(int)
    assert pp_rejected["gateway_client_ip"] == pp_rejected["client_ip"]


def test_rate_limit_rejects_bad_arguments() -> None:
    result = sim.simulate(SHORT["cluster"])
    with pytest.raises(ValueError, match="limit_per_s"):
        rate_limit_effect(result, 0)
    with pytest.raises(ValueError, match="columns"):
        rate_limit_effect(result, 5, columns=("nope",))


def test_sweep_plot_has_a_dot_per_run_and_a_mean_line() -> None:
    frame = pd.DataFrame(
        {
            "probe_interval_s": [1.0, 1.0, 2.0, 2.0],
            "seed": [0, 1, 0, 1],
            "gap": [5.0, 7.0, 10.0, 12.0],
        }
    )
    _, ax = plt.subplots()
    plot_sweep(frame, "probe_interval_s", "gap", ax=ax)
    dots, mean = ax.get_lines()
    assert len(np.asarray(dots.get_xdata())) == 4
    assert list(np.asarray(mean.get_ydata(), dtype=float)) == [6.0, 11.0]
    assert mean.get_label() == "mean of 2 seeds"
    assert ax.get_xlabel() == "probe_interval_s"
    with pytest.raises(ValueError, match="nope"):
        plot_sweep(frame, "nope")
