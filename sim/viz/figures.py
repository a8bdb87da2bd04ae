"""Figures and small tables for the tutorials: reachability, failover timelines, load, topology.

Every ``plot_*``/``draw_*`` function draws into the given ``Axes`` (or a new figure) and returns
``None``, so a notebook cell leaves no text repr behind (TOOLCHAIN: a trailing ``;`` does not
hide it under nbval). The functions only read :class:`sim.Result` DataFrames and
:func:`sim.compare` tables; they never model anything themselves.

* :func:`plot_reachability`: per scenario, "the request got through" next to "the app saw the
  real client IP" (``reachability_pct``, ``client_ip_seen_pct``).
* :func:`plot_timeline`: success rate per time bin, with the control-plane events of
  :attr:`sim.Result.events` marked: failures, memberlist suspect/dead (M8), elections (M3),
  gratuitous ARPs (M9), NotReady (K15), HAProxy check changes (H5).
* :func:`plot_load_spread`: share of successful connections per gateway pod (K14, M6).
* :func:`plot_sweep`: a :func:`sim.sweep.sweep` table, one metric against the swept parameter.
* :func:`draw_topology`: client -> (HAProxy) -> VIP -> nodes -> gateway pods -> app.
* :func:`rate_limit_effect`: what a per-source rate limit keyed on each address column would
  reject (the seed's "every client looks like 172.x", N3).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from sim.addresses import HAPROXY_IP, VIP, node_ip
from sim.results import Result
from sim.scenario import Scenario

__all__ = [
    "EVENT_STYLES",
    "draw_topology",
    "plot_load_spread",
    "plot_reachability",
    "plot_sweep",
    "plot_timeline",
    "rate_limit_effect",
]

EVENT_STYLES: dict[str, tuple[str, str, str]] = {
    "node_down": ("failure (node powered off)", "#d62728", "-"),
    "pod_deleted": ("failure (pod deleted)", "#d62728", "-"),
    "pod_moved": ("failure (pod moved)", "#d62728", "-"),
    "node_up": ("node powered on", "#2ca02c", "-"),
    "memberlist_suspect": ("memberlist suspect (M8)", "#ff7f0e", ":"),
    "memberlist_dead": ("memberlist dead = detection (M8)", "#ff7f0e", "--"),
    "elected": ("election: new announcer (M3)", "#9467bd", "-."),
    "withdrawn": ("VIP withdrawn (M3)", "#9467bd", ":"),
    "node_not_ready": ("node NotReady (K15)", "#8c564b", "--"),
    "haproxy_check": ("HAProxy server state (H5)", "#7f7f7f", "-."),
}
"""Events drawn as vertical lines by :func:`plot_timeline`: kind -> (legend label, colour,
line style). ``garp`` events are drawn as triangles at the top instead (M9)."""

_GARP_LABEL = "gratuitous ARP (M9)"
_NODE_SIZE = 2600
_BAR_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3")


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


def plot_reachability(table: pd.DataFrame, ax: Axes | None = None) -> None:
    """Grouped bars per scenario: ``reachability_pct`` and ``client_ip_seen_pct`` (0-100 %).

    Args:
        table: rows of :func:`sim.compare` (or :meth:`sim.Result.summary_frame`), labelled by
            their ``scenario`` column, or ``name`` when there is none.
        ax: the Axes to draw into; by default a new figure.

    Raises:
        ValueError: a required column is missing.
    """
    missing = [c for c in ("reachability_pct", "client_ip_seen_pct") if c not in table.columns]
    if missing:
        raise ValueError(f"table: missing column(s) {', '.join(missing)} (use sim.compare)")
    labels = _labels(table)
    ax = _new_axes(ax, (max(5.0, 1.6 * len(labels) + 2.0), 3.6))
    x = np.arange(len(labels))
    width = 0.38
    series = (
        ("reachability_pct", "request reached the app", "#4c72b0"),
        ("client_ip_seen_pct", "app saw the real client IP", "#55a868"),
    )
    for i, (col, label, colour) in enumerate(series):
        values = table[col].to_numpy(dtype=float)
        bars = ax.bar(x + (i - 0.5) * width, values, width, label=label, color=colour)
        ax.bar_label(bars, labels=[f"{v:.0f}" for v in values], fontsize=8, padding=2)
    # Long scenario names collide when horizontal: slant them.
    ax.set_xticks(x, labels, rotation=20, ha="right")
    ax.set_ylim(0, 115)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("% of connections")
    ax.set_title("Reachability and client IP seen by the app, per scenario")
    ax.legend(loc="upper center", ncol=2, fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)


def _success_rate(result: Result, bin_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres and the percentage of connections started in each bin that succeeded."""
    duration = float(result.scenario.duration_s)
    edges = np.arange(0.0, duration + bin_s, bin_s)
    conns = result.connections
    starts = conns["t_start"].to_numpy(dtype=float)
    ok = (conns["outcome"] == "ok").to_numpy()
    sent, _ = np.histogram(starts, bins=edges)
    good, _ = np.histogram(starts[ok], bins=edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(sent > 0, 100.0 * good / np.maximum(sent, 1), np.nan)
    return (edges[:-1] + edges[1:]) / 2.0, rate


def plot_timeline(
    results: Mapping[str, Result], *, bin_s: float = 1.0, ax: Axes | None = None
) -> None:
    """Success rate (ok / sent per bin, %) over simulated time, one line per scenario.

    Control-plane events of every result are marked (the same event at the same time in several
    results is drawn once): failures, memberlist suspect and dead (M8), elections after t = 0
    (M3), node NotReady (K15) and HAProxy check changes (H5) as vertical lines (styles in
    :data:`EVENT_STYLES`); gratuitous ARPs (M9) as triangles at the top.

    Args:
        results: label -> :class:`sim.Result`.
        bin_s: width of a time bin in simulated seconds (> 0).
        ax: the Axes to draw into; by default a new figure.

    Raises:
        ValueError: ``results`` is empty or ``bin_s`` is not a positive number.
    """
    if not results:
        raise ValueError("results: give at least one label -> sim.Result")
    if isinstance(bin_s, bool) or not isinstance(bin_s, int | float) or not bin_s > 0:
        raise ValueError(f"bin_s: expected a positive number of seconds, got {bin_s!r}")
    ax = _new_axes(ax, (10.0, 4.0))
    for i, (label, result) in enumerate(results.items()):
        centres, rate = _success_rate(result, float(bin_s))
        ax.plot(centres, rate, label=label, color=_BAR_COLOURS[i % len(_BAR_COLOURS)], lw=1.8)

    seen: set[tuple[str, float]] = set()
    used: dict[str, tuple[str, str]] = {}
    garp_t: list[float] = []
    for result in results.values():
        for t, kind in zip(result.events["t"], result.events["kind"], strict=True):
            key = (str(kind), round(float(t), 6))
            if key in seen:
                continue
            seen.add(key)
            if kind == "garp":
                garp_t.append(float(t))
            elif kind in EVENT_STYLES and not (kind == "elected" and float(t) == 0.0):
                label, colour, style = EVENT_STYLES[str(kind)]
                ax.axvline(float(t), color=colour, ls=style, lw=1.2, alpha=0.9)
                used.setdefault(label, (colour, style))
    handles: list[Line2D] = [ln for ln in ax.get_lines() if not str(ln.get_label()).startswith("_")]
    for label, (colour, style) in used.items():
        handles.append(Line2D([], [], color=colour, ls=style, label=label))
    if garp_t:
        ax.plot(garp_t, [103.0] * len(garp_t), "v", color="#17becf", ms=7, ls="", label=_GARP_LABEL)
        handles.append(ax.get_lines()[-1])
    ax.set_ylim(-3, 108)
    ax.set_xlim(0, max(float(r.scenario.duration_s) for r in results.values()))
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel(f"successful connections per {bin_s:g} s (%)")
    ax.set_title("Success rate over time")
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
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
    ax = _new_axes(ax, (max(5.0, 1.2 * len(pods) * len(labels) / 2 + 3.0), 3.6))
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
        ax.bar_label(bars, labels=[f"{s:.0f}" for s in shares], fontsize=8, padding=2)
    nodes: dict[str, str] = {}
    for result in results.values():
        for pod, node in zip(result.scenario.pod_names, result.scenario.gateway_nodes, strict=True):
            nodes.setdefault(pod, node)
    ax.set_xticks(x, [f"{p}\n({nodes[p]})" for p in pods])
    ax.set_ylim(0, 115)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("% of successful connections")
    ax.set_title("Load per gateway pod")
    ax.legend(fontsize=8, frameon=False, loc="upper right")
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
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)


def _announcers(result: Result) -> list[tuple[float, str]]:
    ev = result.events
    rows = ev[ev["kind"] == "elected"]
    return [(float(t), str(n)) for t, n in zip(rows["t"], rows["node"], strict=True)]


def _column(names: Sequence[str], x: float) -> dict[str, tuple[float, float]]:
    n = len(names)
    return {name: (x, (n - 1) / 2.0 - i) for i, name in enumerate(names)}


def draw_topology(
    scenario: Scenario, *, result: Result | None = None, ax: Axes | None = None
) -> None:
    """Draw the path client -> (HAProxy) -> MetalLB VIP -> nodes -> gateway pods -> app.

    Every node and gateway pod of ``scenario`` is drawn. A node forwards to the pods on itself
    (solid) and, under ``Cluster``, to the pods on other nodes through the tunnel (dashed, SNAT
    to the tunnel IP, N3); under ``Local`` only to its own pods (K2, K6). With ``result``, the
    node announcing the VIP at t = 0 is outlined in red and later announcers in purple (M3);
    nodes powered off by a failure are grey.

    Args:
        scenario: the :class:`sim.Scenario` to draw.
        result: its :class:`sim.Result`, to mark the announcer(s) and dead nodes.
        ax: the Axes to draw into; by default a new figure.
    """
    graph, pos, layers, tunnel_edges = _topology_graph(scenario)
    pod_node = dict(zip(scenario.pod_names, scenario.gateway_nodes, strict=True))
    ax = _new_axes(ax, (2.0 * len(layers) + 1.0, max(3.0, 0.9 * max(map(len, layers)) + 1.5)))
    labels = {"client": f"{scenario.clients} clients", "VIP": f"MetalLB VIP\n{VIP}", "app": "app"}
    if scenario.haproxy is not None:
        labels["HAProxy"] = f"HAProxy\n{HAPROXY_IP}"
    for i, name in enumerate(scenario.node_names):
        labels[name] = f"{name}\n{node_ip(i)}"
    for pod, node in pod_node.items():
        labels[pod] = f"{pod}\non {node}"
    colours = {n: "#c6dbef" for n in graph.nodes}
    colours.update({p: "#c7e9c0" for p in scenario.pod_names})
    colours.update({"VIP": "#fdd0a2", "HAProxy": "#fdae6b", "client": "#eeeeee", "app": "#dadaeb"})
    edge_colours = {n: "#999999" for n in graph.nodes}
    legend: list[Line2D] = []
    idle: list[tuple[str, str]] = []
    if result is not None:
        legend, idle = _mark_result(scenario, result, colours, edge_colours)
    order = list(graph.nodes)
    nx.draw_networkx_nodes(
        graph,
        pos,
        ax=ax,
        nodelist=order,
        node_size=_NODE_SIZE,
        node_shape="s",
        node_color=[colours[n] for n in order],
        edgecolors=[edge_colours[n] for n in order],
        linewidths=[3.0 if edge_colours[n] != "#999999" else 1.0 for n in order],
    )
    nx.draw_networkx_labels(graph, pos, labels=labels, ax=ax, font_size=7.5)
    solid = [e for e in graph.edges if e not in set(tunnel_edges) | set(idle)]
    nx.draw_networkx_edges(graph, pos, edgelist=solid, ax=ax, node_size=_NODE_SIZE, arrows=True)
    for edges, style, alpha in ((tunnel_edges, "dashed", 0.5), (idle, "dotted", 0.3)):
        if edges:
            nx.draw_networkx_edges(
                graph, pos, edgelist=edges, ax=ax, node_size=_NODE_SIZE, style=style, alpha=alpha
            )
    if tunnel_edges:
        legend.append(Line2D([], [], color="black", ls="--", alpha=0.5, label="via tunnel (N3)"))
    if idle:
        legend.append(Line2D([], [], color="black", ls=":", alpha=0.3, label="not announcing"))
    policy = scenario.external_traffic_policy
    ax.set_title(f"{scenario.name}: externalTrafficPolicy {policy}, announcer {scenario.announcer}")
    if legend:
        ax.legend(
            handles=legend, loc="lower center", bbox_to_anchor=(0.5, -0.16), ncol=4, fontsize=8
        )
    ax.margins(x=0.08, y=0.15)
    ax.set_axis_off()


def _topology_graph(
    scenario: Scenario,
) -> tuple[nx.DiGraph, dict[str, tuple[float, float]], list[list[str]], list[tuple[str, str]]]:
    """The graph :func:`draw_topology` draws: ``(graph, positions, layers, tunnel_edges)``."""
    graph = nx.DiGraph()
    layers: list[list[str]] = [["client"]]
    if scenario.haproxy is not None:
        layers.append(["HAProxy"])
    layers += [["VIP"], list(scenario.node_names), list(scenario.pod_names), ["app"]]
    pos: dict[str, tuple[float, float]] = {}
    for x, names in enumerate(layers):
        pos.update(_column(names, float(x)))
    graph.add_nodes_from(pos)
    chain = [layer[0] for layer in layers[: layers.index(list(scenario.node_names))]]
    graph.add_edges_from(itertools.pairwise(chain))
    graph.add_edges_from(("VIP", n) for n in scenario.node_names)
    pod_node = dict(zip(scenario.pod_names, scenario.gateway_nodes, strict=True))
    local_edges = [(n, p) for p, n in pod_node.items()]
    tunnel_edges = (
        [(n, p) for n in scenario.node_names for p, pn in pod_node.items() if pn != n]
        if scenario.external_traffic_policy == "Cluster"
        else []
    )
    graph.add_edges_from(local_edges + tunnel_edges)
    graph.add_edges_from((p, "app") for p in scenario.pod_names)
    return graph, pos, layers, tunnel_edges


def _mark_result(
    scenario: Scenario,
    result: Result,
    colours: dict[str, str],
    edge_colours: dict[str, str],
) -> tuple[list[Line2D], list[tuple[str, str]]]:
    """Colour the announcers and dead nodes of ``result``; return the legend and idle edges."""
    legend: list[Line2D] = []
    down = {str(n) for n in result.events.loc[result.events["kind"] == "node_down", "node"]}
    for name in down:
        colours[name] = "#bdbdbd"
    for t, node in _announcers(result):
        edge_colours[node] = "#d62728" if t == 0.0 else "#9467bd"
    legend.append(_marker("#d62728", "announces the VIP at t = 0 (M3)"))
    if any(t > 0 for t, _ in _announcers(result)):
        legend.append(_marker("#9467bd", "takes over the VIP later (M3, M8)"))
    if down:
        legend.append(_marker("#bdbdbd", "powered off (NodeDown)", face=True))
    # Only the announcer answers ARP for the VIP (M3): the other VIP edges carry nothing until
    # a takeover.
    announcers = {node for _, node in _announcers(result)}
    idle = [("VIP", n) for n in scenario.node_names if n not in announcers]
    return legend, idle


def _marker(colour: str, label: str, *, face: bool = False) -> Line2D:
    return Line2D(
        [],
        [],
        marker="s",
        ls="",
        ms=10,
        markerfacecolor=colour if face else "white",
        markeredgecolor=colour,
        markeredgewidth=2.5,
        label=label,
    )


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
