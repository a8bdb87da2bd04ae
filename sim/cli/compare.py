"""``srcip-lab compare``: the story's setups and pitfalls side by side, with a leader failure.

Each preset runs on the seed topology; the node that announces the VIP when the run starts (the
MetalLB election's winner, M3, or the naive lease holder, M16) is powered off at ``fail_at_s``.
The job prints one comparison table (:func:`sim.compare`) and writes:

* ``compare.csv``: that table;
* ``connections.csv``: every connection of every run (column ``scenario`` added);
* ``events.csv``: every control-plane event of every run;
* ``reachability.png``, ``timeline.png``, ``load_spread.png``: the figures of
  :mod:`sim.viz.figures`.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from sim.presets import get
from sim.results import Result, summarize_results
from sim.scenario import NodeDown, Scenario
from sim.topology import simulate

TABLE_COLUMNS = (
    "name",
    "connections",
    "reachability_pct",
    "client_ip_seen_pct",
    "failover_gap_s",
    "app_saw",
)


def initial_announcer(scenario: Scenario) -> str:
    """The node that announces the VIP when ``scenario`` starts ("" if none).

    Asks the model itself (a run of a few milliseconds with no failures), so that this never
    disagrees with the election the simulation performs.
    """
    probe = dataclasses.replace(scenario, duration_s=0.001, failures=())
    events = simulate(probe).events
    elected = events[events["kind"] == "elected"]
    return str(elected["node"].iloc[0]) if len(elected) else ""


def with_leader_failure(scenario: Scenario, at_s: float, up_at_s: float | None = None) -> Scenario:
    """``scenario`` plus a :class:`~sim.NodeDown` of its initial VIP announcer at ``at_s``."""
    node = initial_announcer(scenario)
    if not node:
        return scenario
    down = NodeDown(node=node, at_s=at_s, up_at_s=up_at_s)
    return dataclasses.replace(scenario, failures=(*scenario.failures, down))


def run_compare(
    *,
    out: Path,
    seed: int,
    duration_s: float,
    fail_at_s: float | None,
    figures: bool,
    presets: Sequence[str],
) -> pd.DataFrame:
    """Run the comparison, print the table, write CSV (and PNG) files to ``out``."""
    scenarios = []
    for name in presets:
        sc = dataclasses.replace(get(name), seed=seed, duration_s=duration_s)
        if fail_at_s is not None:
            if not 0 <= fail_at_s < duration_s:
                raise ValueError(
                    f"fail_at: {fail_at_s} must lie within the run, 0 <= fail_at < {duration_s}"
                )
            sc = with_leader_failure(sc, fail_at_s)
        scenarios.append(sc)

    results: dict[str, Result] = {}
    from tqdm.auto import tqdm

    for sc in tqdm(scenarios, desc="compare", leave=False, disable=not sys.stderr.isatty()):
        results[sc.name] = simulate(sc)
    table = summarize_results(results)

    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "compare.csv", index=False)
    pd.concat(
        [r.connections.assign(scenario=name) for name, r in results.items()], ignore_index=True
    ).to_csv(out / "connections.csv", index=False)
    pd.concat(
        [r.events.assign(scenario=name) for name, r in results.items()], ignore_index=True
    ).to_csv(out / "events.csv", index=False)

    failed = {
        sc.name: ", ".join(
            f"{f.node} down at {f.at_s:g} s" for f in sc.failures if isinstance(f, NodeDown)
        )
        or "-"
        for sc in scenarios
    }
    table = table.assign(app_saw=[_app_saw(r) for r in results.values()])
    shown = table[[c for c in TABLE_COLUMNS if c in table.columns]].copy()
    shown.insert(1, "failure", shown["name"].map(failed))
    shown = shown.round({"reachability_pct": 1, "client_ip_seen_pct": 1, "failover_gap_s": 1})
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(shown.to_string(index=False))
    print(
        "\nreachability_pct: connections that got their HTTP response; client_ip_seen_pct: of\n"
        "those, the ones whose client address the app's sidecar reported correctly (the last\n"
        "X-Forwarded-For entry, E9/I1); failover_gap_s: longest time in which no connection that\n"
        "succeeded was established (SYNs are retransmitted, T1); app_saw: what the app saw as the\n"
        "client. Columns: docs/reference/results.md"
    )
    written = ["compare.csv", "connections.csv", "events.csv"]
    if figures:
        written += _write_figures(out, table, results)
    print(f"\nwrote {', '.join(str(out / w) for w in written)}")
    return table


def _app_saw(result: Result) -> str:
    """What the app's sidecar reported as the client, in words: the real client or which IPs."""
    ok = result.connections[result.connections["outcome"] == "ok"]
    if not len(ok):
        return "(nothing served)"
    real = ok["app_remote_ip"] == ok["client_ip"]
    if real.all():
        return "the client IP"
    top = ok.loc[~real, "app_remote_ip"].value_counts().index[:3]
    text = ", ".join(str(ip) for ip in top)
    return f"client IP + {text}" if real.any() else text


def _write_figures(out: Path, table: pd.DataFrame, results: dict[str, Result]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim.viz import figures

    written = []
    drawings: tuple[tuple[str, Callable[[Any], None], tuple[float, float]], ...] = (
        ("reachability.png", lambda ax: figures.plot_reachability(table, ax=ax), (9, 4.8)),
        ("load_spread.png", lambda ax: figures.plot_load_spread(results, ax=ax), (9, 4.5)),
    )
    for fname, draw, size in drawings:
        fig, ax = plt.subplots(figsize=size)
        draw(ax)
        fig.tight_layout()
        fig.savefig(out / fname, dpi=110)
        plt.close(fig)
        written.append(fname)

    # One timeline per scenario, stacked on a shared time axis: seven lines in one plot hide
    # each other (cluster, proxy_protocol and haproxy_http_xff nearly coincide).
    fig, axes = plt.subplots(
        len(results), 1, figsize=(12.5, 1.7 * len(results) + 1), sharex=True, squeeze=False
    )
    legend: dict[str, Any] = {}
    for ax, (name, result) in zip(axes[:, 0], results.items(), strict=True):
        figures.plot_timeline({name: result}, ax=ax)
        _handles, _labels = ax.get_legend_handles_labels()
        old = ax.get_legend()
        if old is not None:
            for handle, text in zip(old.legend_handles, old.get_texts(), strict=True):
                if text.get_text() != name:
                    legend.setdefault(text.get_text(), handle)
            old.remove()
        ax.set_title("")
        ax.set_title(name, fontsize=9, loc="left")
        ax.set_ylabel("ok %", fontsize=8)
        if ax is not axes[-1, 0]:
            ax.set_xlabel("")
    fig.suptitle("Successful connections per second (%), with the control-plane events")
    fig.legend(
        list(legend.values()),
        list(legend.keys()),
        loc="center left",
        bbox_to_anchor=(0.76, 0.5),
        fontsize=8,
    )
    fig.tight_layout(rect=(0, 0, 0.75, 0.97))
    fig.savefig(out / "timeline.png", dpi=110)
    plt.close(fig)
    written.append("timeline.png")
    return written
