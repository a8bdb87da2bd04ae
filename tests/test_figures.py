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
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

import sim
from sim.viz.figures import (
    EVENT_STYLES,
    REACH_SERIES,
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


def test_reachability_bars_are_shares_of_all_connections() -> None:
    table = sim.compare([SHORT["cluster"], SHORT["local"], SHORT["local_naive"]])
    _, ax = plt.subplots()
    plot_reachability(table, ax=ax)
    assert len(ax.containers) == 2
    assert len(_bars(ax)) == 6
    reach = [b.get_width() for b in ax.containers[0].patches]  # type: ignore[attr-defined]
    seen = [b.get_width() for b in ax.containers[1].patches]  # type: ignore[attr-defined]
    assert reach == pytest.approx([100.0, 100.0, 0.0])
    assert seen == pytest.approx([0.0, 100.0, 0.0])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cluster", "local", "local_naive"]
    assert ax.get_xlabel() == "% of all connections"
    legend = ax.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == [label for label, _ in REACH_SERIES]


def test_the_client_ip_bar_never_outgrows_the_reachability_bar() -> None:
    # Notebook 06: a fifth of the connections fail, all the delivered ones show the client IP.
    # client_ip_seen_pct (100, a share of the delivered) must not be drawn as 100 % of all.
    mixed = replace(SHORT["proxy_protocol"], in_cluster_share=0.2)
    table = sim.compare({"fix + in-cluster callers": mixed})
    assert table.loc[0, "client_ip_seen_pct"] == 100.0
    _, ax = plt.subplots()
    plot_reachability(table, ax=ax)
    reach = ax.containers[0].patches[0].get_width()  # type: ignore[attr-defined]
    seen = ax.containers[1].patches[0].get_width()  # type: ignore[attr-defined]
    assert reach < 90.0
    assert seen == pytest.approx(reach)


def test_reachability_rejects_a_table_without_the_columns() -> None:
    with pytest.raises(ValueError, match="reachability_pct"):
        plot_reachability(sim.compare([SHORT["cluster"]]).drop(columns="reachability_pct"))


@pytest.mark.parametrize("name", sorted(SHORT))
def test_every_figure_draws_each_preset(name: str) -> None:
    result = sim.simulate(SHORT[name])
    plot_reachability(result.summary_frame())
    plot_timeline({name: result})
    plot_load_spread({name: result})
    assert len(plt.get_fignums()) == 3


def _steps(ax: Axes) -> Line2D:
    (line,) = [ln for ln in ax.get_lines() if ln.get_drawstyle() == "steps-post"]
    return line


def test_timeline_draws_one_panel_per_run_with_its_own_events(
    failover_results: dict[str, sim.Result],
) -> None:
    plot_timeline(failover_results, bin_s=1.0)
    fig = plt.gcf()
    panels = [a for a in fig.axes if a.get_lines()]
    assert len(panels) == len(failover_results)
    for ax, (label, result) in zip(panels, failover_results.items(), strict=True):
        assert ax.get_title(loc="left").startswith(f"{label}: ")
        line = _steps(ax)
        # Steps over the 21 edges of 20 one-second bins: the value of a bin holds to its end.
        x = np.asarray(line.get_xdata(), dtype=float)
        assert list(x) == pytest.approx(list(np.arange(0.0, 21.0)))
        # The failure line of this run sits at its own failure time.
        vlines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and ln is not line]
        xs = sorted(float(np.asarray(ln.get_xdata(), dtype=float)[0]) for ln in vlines)
        assert xs[0] == pytest.approx(4.0)
        dead = result.events.query("kind == 'memberlist_dead'")["t"]
        marks = {round(float(np.asarray(ln.get_xdata())[0]), 6) for ln in ax.get_lines()}
        assert round(float(dead.iloc[0]), 6) in marks
    legend = fig.legends[0]
    texts = {t.get_text() for t in legend.get_texts()}
    assert {EVENT_STYLES[k][0] for k in ("node_down", "memberlist_dead", "elected")} <= texts
    assert "gratuitous ARP (M9)" in texts


def test_timeline_drop_starts_at_the_failure_not_before(
    failover_results: dict[str, sim.Result],
) -> None:
    _, ax = plt.subplots()
    plot_timeline({"cluster": failover_results["cluster"]}, ax=ax)
    line = _steps(ax)
    x = np.asarray(line.get_xdata(), dtype=float)
    y = np.asarray(line.get_ydata(), dtype=float)
    # steps-post: y[i] holds on [x[i], x[i+1]); the bins before the failure at 4 s are full
    # (the bin [3, 4) may lose the connections still in flight at 4 s).
    assert all(v == pytest.approx(100.0) for v in y[x < 3.0])
    assert min(y[(x >= 4.0) & (x < 8.0)]) < 50.0


def test_coinciding_runs_stay_visible(failover_results: dict[str, sim.Result]) -> None:
    # Two identical runs (notebook 05: HAProxy with and without PROXY) get a panel each.
    same = {"a": failover_results["cluster"], "b": failover_results["cluster"]}
    plot_timeline(same)
    panels = [a for a in plt.gcf().axes if a.get_lines()]
    assert len(panels) == 2
    assert all(_steps(p).get_visible() for p in panels)


def test_timeline_needs_an_axes_per_run(failover_results: dict[str, sim.Result]) -> None:
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match=r"^ax: "):
        plot_timeline(failover_results, ax=ax)
    _, axes = plt.subplots(3, 1)
    plot_timeline(failover_results, ax=list(axes), xlim_s=(2.0, 12.0))
    assert axes[0].get_xlim() == (2.0, 12.0)


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
