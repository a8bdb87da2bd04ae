"""Failover timelines: which share of the connections succeeded, second by second, per run.

:func:`plot_timeline` draws one panel per run (small multiples on a shared time axis), so runs
that coincide stay visible, and each panel marks only its own run's control-plane events:
failures, memberlist suspect and dead (M8), elections after t = 0 (M3), VIP withdrawals,
gratuitous ARPs (M9), node NotReady (K15), HAProxy server state changes (H5). The success rate
is drawn as steps over the bins' edges: a bin's value holds from its start to its end, so a drop
starts where the failure is, not half a bin earlier.

A bin's value is the share of the connections *started* in it that succeeded (outcome ``ok``),
even if only after retransmitting their SYN (T1). Sized for the docs' column: 7 inches wide,
no text below 9 pt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from sim.results import Result

__all__ = ["EVENT_STYLES", "SUCCESS_LABEL", "plot_timeline", "success_rate"]

EVENT_STYLES: dict[str, tuple[str, str, str, str]] = {
    "node_down": ("failure (node powered off)", "#D55E00", "-", "X"),
    "pod_deleted": ("failure (pod deleted)", "#D55E00", "-", "X"),
    "pod_moved": ("failure (pod moved)", "#D55E00", "-", "X"),
    "node_up": ("node powered on", "#009E73", "-", "P"),
    "memberlist_suspect": ("memberlist suspect (M8)", "#E69F00", ":", "o"),
    "memberlist_dead": ("memberlist dead = detection (M8)", "#E69F00", "--", "s"),
    "elected": ("new VIP announcer (M3)", "#CC79A7", "-.", "D"),
    "withdrawn": ("VIP withdrawn (M3)", "#CC79A7", ":", "d"),
    "node_not_ready": ("node NotReady (K15)", "#000000", "--", "*"),
    "haproxy_check": ("HAProxy server DOWN/UP (H5)", "#666666", "-.", "h"),
}
"""Events :func:`plot_timeline` marks with a vertical line and a marker at its top: kind ->
(legend label, colour, line style, marker). Okabe-Ito colours; the markers tell coinciding
events apart (a detection and the election it triggers happen at the same instant).
``garp`` events are small triangles along the top instead (M9)."""

SUCCESS_LABEL = "connections that succeeded (% of those started in the bin)"
"""Legend label of the success-rate steps."""

_GARP = ("gratuitous ARP (M9)", "#56B4E9", "v")
_LINE = "#0072B2"
_PT = 9.0
_WIDTH_IN = 7.0


def success_rate(result: Result, bin_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(edges, rate)``: bin edges over the run and, per bin, the percentage of the
    connections started in it that succeeded (NaN for a bin in which none started)."""
    duration = float(result.scenario.duration_s)
    edges = np.arange(0.0, duration + bin_s / 2, bin_s)
    if edges[-1] < duration:
        edges = np.append(edges, duration)
    conns = result.connections
    starts = conns["t_start"].to_numpy(dtype=float)
    ok = (conns["outcome"] == "ok").to_numpy()
    sent, _ = np.histogram(starts, bins=edges)
    good, _ = np.histogram(starts[ok], bins=edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(sent > 0, 100.0 * good / np.maximum(sent, 1), np.nan)
    return edges, rate


def _panel_title(label: str, result: Result) -> str:
    summary = result.summary()
    text = f"{label}: {summary['reachability_pct']:.1f} % of connections succeeded"
    if result.scenario.failures:
        text += f", failover gap {summary['failover_gap_s']:.1f} s"
    return text


def _events(result: Result) -> list[tuple[float, str]]:
    """The run's events to mark, ``(t, kind)`` in time order (no election at t = 0)."""
    ev = result.events
    return [
        (float(t), str(kind))
        for t, kind in zip(ev["t"], ev["kind"], strict=True)
        if (kind in EVENT_STYLES or kind == "garp") and not (kind == "elected" and float(t) == 0)
    ]


def _draw_events(ax: Axes, result: Result, used: dict[str, Line2D]) -> None:
    """Mark one run's events in its own panel; ``used`` collects the legend's handles."""
    placed: list[float] = []
    garps: list[float] = []
    for t, kind in _events(result):
        if kind == "garp":
            garps.append(t)
            continue
        label, colour, style, marker = EVENT_STYLES[kind]
        ax.axvline(t, color=colour, ls=style, lw=1.4, zorder=2)
        # Events within half a second share a line position: stack their markers.
        level = sum(1 for p in placed if abs(p - t) < 0.5)
        placed.append(t)
        ax.plot(
            [t],
            [114.0 + 13.0 * level],
            marker=marker,
            color=colour,
            ms=7,
            ls="",
            clip_on=False,
            zorder=3,
        )
        used.setdefault(
            label, Line2D([], [], color=colour, ls=style, marker=marker, ms=7, label=label)
        )
    if garps:
        label, colour, marker = _GARP
        ax.plot(
            garps,
            [104.0] * len(garps),
            marker=marker,
            color=colour,
            ms=5,
            ls="",
            zorder=3,
            clip_on=False,
        )
        used.setdefault(label, Line2D([], [], color=colour, marker=marker, ls="", label=label))


def _draw_panel(
    ax: Axes, label: str, result: Result, bin_s: float, used: dict[str, Line2D]
) -> None:
    edges, rate = success_rate(result, bin_s)
    steps = np.append(rate, rate[-1])
    ax.fill_between(edges, steps, step="post", color=_LINE, alpha=0.1, lw=0, zorder=1)
    ax.plot(edges, steps, drawstyle="steps-post", color=_LINE, lw=1.8, label=label, zorder=3)
    used.setdefault(SUCCESS_LABEL, Line2D([], [], color=_LINE, lw=1.8, label=SUCCESS_LABEL))
    _draw_events(ax, result, used)
    ax.set_ylim(0, 100)
    ax.set_yticks([0, 50, 100])
    ax.set_ylabel("ok %", fontsize=_PT)
    ax.tick_params(labelsize=_PT)
    ax.set_title(_panel_title(label, result), loc="left", fontsize=_PT + 0.5, pad=30)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#e0e0e0", lw=0.8)


def _axes_for(results: Mapping[str, Result], ax: Axes | Sequence[Axes] | None) -> list[Axes]:
    if ax is None:
        n = len(results)
        fig, grid = plt.subplots(
            n, 1, figsize=(_WIDTH_IN, 1.1 + 1.65 * n + 0.5), sharex=True, squeeze=False
        )
        fig.suptitle(
            f"Connections that succeeded, by the second they started ({n} run{'s' * (n > 1)})",
            fontsize=_PT + 1.5,
        )
        return list(grid[:, 0])
    axes = [ax] if isinstance(ax, Axes) else list(ax)
    if len(axes) != len(results):
        raise ValueError(
            f"ax: give one Axes per result ({len(results)}), got {len(axes)}; "
            "or none for a new figure with one panel per run"
        )
    return axes


def plot_timeline(
    results: Mapping[str, Result],
    *,
    bin_s: float = 1.0,
    ax: Axes | Sequence[Axes] | None = None,
    xlim_s: tuple[float, float] | None = None,
) -> None:
    """Success rate per time bin, one panel per run, each with its own run's events marked.

    Args:
        results: label -> :class:`sim.Result`, one panel each, top to bottom.
        bin_s: width of a time bin in simulated seconds (> 0).
        ax: an Axes per result to draw into (one Axes for one result); by default a new
            figure with one panel per run on a shared time axis.
        xlim_s: the time window to show, ``(from, to)`` in seconds; by default the whole run.

    Raises:
        ValueError: ``results`` is empty, ``bin_s`` is not a positive number, or ``ax`` does
            not hold one Axes per result.
    """
    if not results:
        raise ValueError("results: give at least one label -> sim.Result")
    if isinstance(bin_s, bool) or not isinstance(bin_s, int | float) or not bin_s > 0:
        raise ValueError(f"bin_s: expected a positive number of seconds, got {bin_s!r}")
    own = ax is None
    axes = _axes_for(results, ax)
    used: dict[str, Line2D] = {}
    for panel, (label, result) in zip(axes, results.items(), strict=True):
        _draw_panel(panel, label, result, float(bin_s), used)
        panel.set_xlim(*(xlim_s or (0.0, float(result.scenario.duration_s))))
    axes[-1].set_xlabel(f"simulated time (s), bins of {bin_s:g} s", fontsize=_PT)
    handles = list(used.values())
    if own:
        fig = axes[0].get_figure(root=True)
        assert fig is not None
        fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=_PT, frameon=False)
        rows = -(-len(handles) // 2)
        fig.tight_layout(rect=(0.0, 0.035 + 0.2 * rows / fig.get_figheight(), 1.0, 1.0))
    else:
        axes[-1].legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(0.0, -0.3),
            ncol=2,
            fontsize=_PT,
            frameon=False,
        )
