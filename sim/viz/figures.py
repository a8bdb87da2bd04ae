"""Figures and small tables for the tutorials: reachability, load, sweeps, rate limits.

Every ``plot_*``/``draw_*`` function draws into the given ``Axes`` (or a new figure) and returns
``None``, so a notebook cell leaves no text repr behind (TOOLCHAIN: a trailing ``;`` does not
hide it under nbval). The functions only read :class:`sim.Result` DataFrames and
:func:`sim.compare` tables; they never model anything themselves.

* :func:`plot_reachability`: per scenario, the share of all connections that reached the app,
  and the share that reached it *and* told the app the real client IP, on one scale.
* :func:`plot_timeline` (from :mod:`sim.viz.timeline`): success rate per second, one panel
  per run, with each run's control-plane events.
* :func:`plot_load_spread`: share of successful connections per gateway pod (K14, M6).
* :func:`plot_sweep`: a :func:`sim.sweep.sweep` table, one metric against the swept parameter.
* The path of a connection with its addresses is :func:`sim.viz.paths.draw_paths`.
* :func:`rate_limit_effect`: what a per-source rate limit keyed on each address column would
  reject (the seed's "every client looks like 172.x", N3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from sim.results import Result
from sim.viz.timeline import EVENT_STYLES, plot_timeline

__all__ = [
    "EVENT_STYLES",
    "REACH_SERIES",
    "plot_load_spread",
    "plot_reachability",
    "plot_sweep",
    "plot_timeline",
    "rate_limit_effect",
]

# Okabe-Ito: colour-blind safe, and neighbours stay apart.
_BAR_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000")


def _labels(table: pd.DataFrame) -> list[str]:
    """Scenario labels of a :func:`sim.compare` table: ``scenario`` if present, else ``name``."""
    for col in ("scenario", "name"):
        if col in table.columns:
            return [str(v) for v in table[col]]
    raise ValueError("table: expected a 'scenario' or 'name' column (a sim.compare result)")


def _new_axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    _, new = plt.subplots(figsize=size)
    return new


REACH_SERIES = (
    ("reached the app", "#0072B2"),
    ("reached it, and the app learnt the client IP", "#009E73"),
)
"""The two bars of :func:`plot_reachability`, both in % of all connections: (label, colour)."""


def plot_reachability(table: pd.DataFrame, ax: Axes | None = None) -> None:
    """Two bars per scenario, both shares of *all* its connections, on one 0-100 % scale.

    The first is ``reachability_pct``; the second the connections that reached the app *and*
    whose client address the app learnt, ``reachability_pct x client_ip_seen_pct / 100``
    (``client_ip_seen_pct`` itself is a share of the delivered ones), so it is never longer
    than the first.

    Args:
        table: rows of :func:`sim.compare` (or :meth:`sim.Result.summary_frame`), labelled by
            their ``scenario`` column, or ``name`` when there is none.
        ax: the Axes to draw into; by default a new figure, 7 inches wide.

    Raises:
        ValueError: a required column is missing.
    """
    missing = [c for c in ("reachability_pct", "client_ip_seen_pct") if c not in table.columns]
    if missing:
        raise ValueError(f"table: missing column(s) {', '.join(missing)} (use sim.compare)")
    labels = _labels(table)
    ax = _new_axes(ax, (7.0, 0.9 + 0.62 * len(labels)))
    reached = table["reachability_pct"].to_numpy(dtype=float)
    seen = reached * table["client_ip_seen_pct"].to_numpy(dtype=float) / 100.0
    y = np.arange(len(labels))
    height = 0.38
    for i, (values, (label, colour)) in enumerate(zip((reached, seen), REACH_SERIES, strict=True)):
        bars = ax.barh(y + (i - 0.5) * height, values, height, label=label, color=colour)
        ax.bar_label(bars, labels=[f"{v:.0f} %" for v in values], fontsize=9, padding=3)
    ax.set_yticks(y, labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 112)
    ax.set_xticks(range(0, 101, 20))
    ax.tick_params(axis="x", labelsize=9)
    ax.set_xlabel("% of all connections", fontsize=9)
    ax.set_title("Did the request arrive, and did the app learn who sent it?", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=9, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)


def _pod_key(pod: str) -> tuple[int, str]:
    head, _, num = pod.rpartition("-")
    return (int(num), head) if num.isdigit() else (10**9, pod)


def plot_load_spread(results: Mapping[str, Result], ax: Axes | None = None) -> None:
    """Share of the successful connections per gateway pod, grouped bars per scenario (K14, M6).

    Args:
        results: label -> :class:`sim.Result`; the pods are the union of every scenario's
            ``pod_names``, so a pod that served nothing shows as 0 %.
        ax: the Axes to draw into; by default a new figure.

    Raises:
        ValueError: ``results`` is empty.
    """
    if not results:
        raise ValueError("results: give at least one label -> sim.Result")
    pods = sorted({p for r in results.values() for p in r.scenario.pod_names}, key=_pod_key)
    labels = list(results)
    ax = _new_axes(ax, (7.0, 3.4))
    x = np.arange(len(pods))
    width = 0.8 / len(labels)
    for i, (label, result) in enumerate(results.items()):
        conns = result.connections
        served = conns.loc[conns["outcome"] == "ok", "gateway_pod"].value_counts()
        total = int(served.sum())
        shares = [100.0 * int(served.get(p, 0)) / total if total else 0.0 for p in pods]
        offset = (i - (len(labels) - 1) / 2) * width
        bars = ax.bar(
            x + offset, shares, width, label=label, color=_BAR_COLOURS[i % len(_BAR_COLOURS)]
        )
        ax.bar_label(bars, labels=[f"{s:.0f}" for s in shares], fontsize=9, padding=2)
    nodes: dict[str, str] = {}
    for result in results.values():
        for pod, node in zip(result.scenario.pod_names, result.scenario.gateway_nodes, strict=True):
            nodes.setdefault(pod, node)
    ax.set_xticks(x, [f"{p}\n({nodes[p]})" for p in pods])
    ax.set_ylim(0, 115)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("% of successful connections")
    ax.set_title("Load per gateway pod")
    ax.legend(fontsize=9, frameon=False, loc="upper right")
    ax.spines[["top", "right"]].set_visible(False)


def plot_sweep(
    frame: pd.DataFrame,
    param: str,
    metric: str = "failover_gap_s",
    ax: Axes | None = None,
    *,
    label: str | None = None,
) -> None:
    """One dot per run of a :func:`sim.sweep.sweep` table and a line through the means.

    Args:
        frame: the table :func:`sim.sweep.sweep` returned (columns ``param``, ``seed``, ``metric``).
        param: the swept parameter (x axis; numeric values).
        metric: the summary column to plot (y axis).
        ax: the Axes to draw into; by default a new figure.
        label: legend label of the mean line; by default ``"mean of N seeds"``.

    Raises:
        ValueError: ``param`` or ``metric`` is not a column of ``frame``, or ``frame`` is empty.
    """
    missing = [c for c in (param, metric) if c not in frame.columns]
    if missing:
        raise ValueError(f"frame: missing column(s) {', '.join(missing)} (use sim.sweep.sweep)")
    if frame.empty:
        raise ValueError("frame: no rows to plot")
    ax = _new_axes(ax, (6.0, 3.6))
    x = frame[param].to_numpy(dtype=float)
    y = frame[metric].to_numpy(dtype=float)
    colour = _BAR_COLOURS[len(ax.get_lines()) // 2 % len(_BAR_COLOURS)]
    ax.plot(x, y, "o", color=colour, alpha=0.45, ms=5, label="_runs")
    means = frame.groupby(param, sort=True)[metric].mean()
    seeds = int(frame.groupby(param)[metric].size().max())
    ax.plot(
        means.index.to_numpy(dtype=float),
        means.to_numpy(dtype=float),
        "-",
        color=colour,
        lw=1.8,
        label=label if label is not None else f"mean of {seeds} seeds",
    )
    ax.set_xlabel(param)
    ax.set_ylabel(metric)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=9, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)


def rate_limit_effect(
    result: Result,
    limit_per_s: float,
    columns: Sequence[str] = ("client_ip", "gateway_client_ip"),
) -> pd.DataFrame:
    """What a per-source limit of ``limit_per_s`` requests per second would reject, per key.

    The limit is applied in fixed one-second windows to the successful connections, keyed on
    each of ``columns`` in turn: keyed on the real ``client_ip`` it touches only heavy clients;
    keyed on what the gateway sees (``gateway_client_ip``) under ``Cluster`` every client shares
    one or two SNAT sources (K1, N3), so the limit throttles everyone together.

    Returns:
        One row per column: ``key``, ``distinct_sources``, ``requests``, ``rejected`` and
        ``rejected_pct``.

    Raises:
        ValueError: ``limit_per_s`` is not a positive number, or a column is unknown.
    """
    if isinstance(limit_per_s, bool) or not isinstance(limit_per_s, int | float):
        raise ValueError(f"limit_per_s: expected a positive number, got {limit_per_s!r}")
    if not limit_per_s > 0:
        raise ValueError(f"limit_per_s: must be > 0 requests per second, got {limit_per_s!r}")
    conns = result.connections
    unknown = [c for c in columns if c not in conns.columns]
    if unknown:
        raise ValueError(f"columns: unknown column(s) {', '.join(unknown)}")
    good = conns[conns["outcome"] == "ok"]
    window = np.floor(good["t_start"].to_numpy(dtype=float)).astype(np.int64)
    rows = []
    for col in columns:
        counts = good.groupby([good[col].to_numpy(), window]).size()
        rejected = int(np.maximum(counts.to_numpy() - np.floor(limit_per_s), 0).sum())
        total = len(good)
        rows.append(
            {
                "key": col,
                "distinct_sources": int(good[col].nunique()),
                "requests": total,
                "rejected": rejected,
                "rejected_pct": round(100.0 * rejected / total, 1) if total else 0.0,
            }
        )
    return pd.DataFrame(rows)
