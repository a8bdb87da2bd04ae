"""The path of one connection with its addresses: who sent it where, and who rewrote what.

:func:`draw_paths` draws one row per scenario, read left to right as the packet travels:
client, HAProxy (when there is one), the entry node's kube-proxy, the gateway pod, the app.
Every arrow is one leg of the connection, labelled with the ``src → dst`` its sender wrote
(the source in bold where that element rewrote it), the PROXY header or ``X-Forwarded-For`` it
carries, and coloured by whose address its source is: the client, a node's SNAT address (K1,
N3), HAProxy, or a pod. Badges above an element say what it did (``DNAT``, ``SNAT``,
``+PROXY v2``, ``+XFF``, ``reads PROXY``, or how the connection ended there). The gateway's box
shows its DRA, the client address it uses (E7); the app's box the address it learns (E9, I1).

Everything comes from :func:`sim.viz.path_view.path_view`, that is from :func:`sim.trace_hops`,
the walk that decides the connection: the picture cannot disagree with the trace, and only the
legs that connection used are drawn.

The layout is in inches on a figure :data:`WIDTH_IN` wide, so at the docs' column width (about
700 px) no text is smaller than 9 pt. ``python -m sim.viz.paths OUT.png`` writes the story's
three setups (Cluster, Local, the PROXY fix) for the docs' home page.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from sim.viz.path_view import Leg, PathView, address_role, describe_address, path_view

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from sim.scenario import Scenario

__all__ = [
    "BADGE_COLOURS",
    "ROLE_COLOURS",
    "STORY",
    "WIDTH_IN",
    "draw_paths",
    "main",
]

WIDTH_IN = 7.0
"""The figure's width: the docs' column is about 700 px, so a 9-pt text stays 9 pt there."""

# Okabe-Ito hues (colour-blind safe), darkened where they are text on white.
ROLE_COLOURS: dict[str, str] = {
    "client": "#007A5A",
    "SNAT": "#C24E00",
    "HAProxy": "#005A96",
    "pod": "#555555",
}
"""Text and arrow colour per address role (:func:`sim.viz.path_view.address_role`)."""
_ROLE_LABELS = {
    "client": "the client",
    "SNAT": "a node or tunnel IP (SNAT)",
    "HAProxy": "HAProxy",
    "pod": "a pod",
}

BADGE_COLOURS: dict[str, str] = {
    "DNAT": "#0072B2",
    "SNAT": "#D55E00",
    "no SNAT": "#009E73",
    "+PROXY v1": "#CC79A7",
    "+PROXY v2": "#CC79A7",
    "reads PROXY": "#CC79A7",
    "+XFF": "#A87400",
}
"""Badge colour per rewrite; a badge for how a connection ended (``DROP``, ``400``, ...) is
black."""

_PT = 9.0  # every text but the row titles
_LINE_IN = 0.165  # one 9-pt line with its leading
_BOX_W, _BOX_H = 1.04, 0.6
_BADGE_H = 0.2
_TITLE_H = 0.46
_MARGIN = 0.06
_CENTRES = tuple(_MARGIN + _BOX_W / 2 + i * (WIDTH_IN - 2 * _MARGIN - _BOX_W) / 4 for i in range(5))
_PITCH = _CENTRES[1] - _CENTRES[0]


def _width_in(text: str, *, bold: bool = False) -> float:
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    prop = FontProperties(weight="bold" if bold else "normal")
    return float(TextPath((0, 0), text, size=_PT, prop=prop).get_extents().width) / 72.0


def _badge_rows(badges: Sequence[str]) -> list[list[str]]:
    """Badges side by side while they fit in one column's width, else on further rows."""
    rows: list[list[str]] = [[]]
    width = 0.0
    for badge in badges:
        w = _width_in(badge, bold=True) + 0.16
        if rows[-1] and width + w > _PITCH - 0.08:
            rows.append([])
            width = 0.0
        rows[-1].append(badge)
        width += w + 0.06
    return [r for r in rows if r]


_Line = tuple[str, str, bool]  # text, role ("" = neutral), bold


def _leg_lines(leg: Leg, scenario: Scenario) -> list[_Line]:
    """The label under a leg's arrow, one (text, role, bold) per line."""
    src_ip = leg.src.rpartition(":")[0] or leg.src
    lines: list[_Line] = [
        (leg.src, address_role(src_ip, scenario), leg.src_changed),
        (f"→ {leg.dst}", "", False),
    ]
    if leg.proxy_src:
        role = "pod" if leg.proxy_src == "LOCAL" else address_role(leg.proxy_src, scenario)
        lines += [("PROXY header:", role, False), (leg.proxy_src, role, False)]
    if leg.xff:
        entries = [e.strip() for e in leg.xff.split(",")]
        lines.append(("XFF:", address_role(entries[-1], scenario), False))
        lines += [(e, address_role(e, scenario), False) for e in entries]
    return lines


def _box_lines(view: PathView, slot: int, scenario: Scenario) -> list[_Line]:
    element = view.elements[slot]
    if slot == 0:
        ip = (view.client_ip, address_role(view.client_ip, scenario), False)
        if element == "client":
            return [("client", "", True), ip]
        # "caller pod on node-3" (K8)
        return [("caller pod", "", True), (element.split(" pod ", 1)[-1], "", False), ip]
    if slot == 1:
        mode = element.partition("(")[2].rstrip(")")
        return [("HAProxy", "", True), (f"mode {mode}", "", False)]
    if slot == 2:
        return [(element.split()[0], "", True), ("kube-proxy", "", False)]
    if slot == 3:
        pod = element.split()[0]
        node = dict(zip(scenario.pod_names, scenario.gateway_nodes, strict=True)).get(pod, "")
        lines: list[_Line] = [(pod, "", True), (f"on {node}", "", False)]
        if view.gateway_ip:
            lines.append((f"DRA {view.gateway_ip}", address_role(view.gateway_ip, scenario), False))
        return lines
    lines = [("app", "", True)]
    if view.app_ip:
        lines += [("learns", "", False), (view.app_ip, address_role(view.app_ip, scenario), True)]
    return lines


def _place(centres: Sequence[float], widths: Sequence[float], gap: float = 0.2) -> list[float]:
    """Label centres as close to ``centres`` as the labels' widths allow without overlapping."""
    xs = list(centres)
    lo, hi = _MARGIN, WIDTH_IN - _MARGIN
    for i, w in enumerate(widths):  # push right, past the left neighbour
        left = lo if i == 0 else xs[i - 1] + widths[i - 1] / 2 + gap
        xs[i] = max(xs[i], left + w / 2)
    for i in reversed(range(len(xs))):  # then back left, inside the figure
        right = hi if i == len(xs) - 1 else xs[i + 1] - widths[i + 1] / 2 - gap
        xs[i] = min(xs[i], right - widths[i] / 2)
    return xs


def _row_height(view: PathView, scenario: Scenario) -> tuple[float, float]:
    """(height of the row, height of its badge area), in inches."""
    badge_rows = max((len(_badge_rows(b)) for b in view.badges.values()), default=0)
    lines = max((len(_leg_lines(leg, scenario)) for leg in view.legs), default=0)
    badge_h = badge_rows * (_BADGE_H + 0.05)
    return _TITLE_H + badge_h + _BOX_H + 0.12 + lines * _LINE_IN + 0.2, badge_h


_END_VERBS = {
    "DROP": "dropped by",
    "no answer": "no answer from",
    "refused": "refused by",
    "reset": "reset by",
}


def _display(element: str, slot: int) -> str:
    """An element in words: ``node-1's kube-proxy``, ``gw-1's Envoy``, ``HAProxy``."""
    head = element.split()[0]
    if slot == 1:
        return "HAProxy"
    if slot == 2 and element.endswith("kube-proxy"):
        return f"{head}'s kube-proxy"
    if slot == 3 and "istio-ingressgateway" in element:
        return f"the gateway {head}"
    return element


def _titles(label: str, view: PathView, scenario: Scenario) -> tuple[str, str]:
    """The row's heading (what the app learns, or where the connection ended) and setup."""
    if view.ended:
        last = max(view.elements)
        end = view.badges[last][-1]
        verb = _END_VERBS.get(end, f"answered {end} by")
        head = f"{label}: {verb} {_display(view.elements[last], last)}"
    else:
        head = f"{label}: the app learns {view.app_ip}, {describe_address(view.app_ip, scenario)}"
    parts = [f"externalTrafficPolicy {scenario.external_traffic_policy}"]
    if scenario.haproxy is not None:
        send = scenario.haproxy.send_proxy
        proxy = f", send-proxy-{send}" if send else ""
        parts.append(f"HAProxy mode {scenario.haproxy.mode}{proxy}")
    if scenario.gateway_proxy_protocol:
        parts.append("gateway PROXY filter")
    parts.append(f"connection {view.conn_id}" + " (its last SYN, T1)" * view.retransmitted)
    return head, " · ".join(parts)


def _draw_box(ax: Axes, slot: int, lines: Sequence[_Line], y: float) -> None:
    from matplotlib.patches import FancyBboxPatch

    x = _CENTRES[slot]
    box = FancyBboxPatch(
        (x - _BOX_W / 2, y),
        _BOX_W,
        _BOX_H,
        boxstyle="round,pad=0,rounding_size=0.06",
        facecolor="#f4f4f4",
        edgecolor="#808080",
        lw=1.0,
    )
    ax.add_patch(box)
    first = y + _BOX_H / 2 + (len(lines) - 1) * _LINE_IN / 2
    for i, (text, role, bold) in enumerate(lines):
        colour = ROLE_COLOURS.get(role, "#222222")
        ax.text(
            x,
            first - i * _LINE_IN,
            text,
            ha="center",
            va="center",
            fontsize=_PT,
            c=colour,
            weight="bold" if bold else "normal",
        )


def _draw_badges(ax: Axes, slot: int, badges: Sequence[str], y: float) -> None:
    """Badges in rows above the box whose top edge is at ``y``."""
    stacked = _badge_rows(badges)
    rows = len(stacked)
    for r, row in enumerate(stacked):
        widths = [_width_in(b, bold=True) + 0.16 for b in row]
        x = _CENTRES[slot] - (sum(widths) + 0.06 * (len(row) - 1)) / 2
        mid = y + 0.06 + _BADGE_H / 2 + (rows - 1 - r) * (_BADGE_H + 0.05)
        for badge, w in zip(row, widths, strict=True):
            colour = BADGE_COLOURS.get(badge, "#000000")
            bbox = {"boxstyle": "round,pad=0.2", "fc": colour, "ec": "none"}
            ax.text(
                x + w / 2,
                mid,
                badge,
                ha="center",
                va="center",
                fontsize=_PT,
                c="white",
                weight="bold",
                bbox=bbox,
            )
            x += w + 0.06


def _draw_legs(ax: Axes, view: PathView, scenario: Scenario, box_y: float) -> None:
    slots = sorted(view.elements)
    labels = [_leg_lines(leg, scenario) for leg in view.legs]
    targets = [next(s for s in slots if s > leg.slot) for leg in view.legs]
    widths = [max(_width_in(t, bold=b) for t, _, b in lines) for lines in labels]
    wanted = [
        (_CENTRES[leg.slot] + _CENTRES[to]) / 2 for leg, to in zip(view.legs, targets, strict=True)
    ]
    mid_y = box_y + _BOX_H / 2
    for leg, to, lines, x in zip(view.legs, targets, labels, _place(wanted, widths), strict=True):
        colour = ROLE_COLOURS.get(lines[0][1], "#222222")
        ax.annotate(
            "",
            xy=(_CENTRES[to] - _BOX_W / 2, mid_y),
            xytext=(_CENTRES[leg.slot] + _BOX_W / 2, mid_y),
            arrowprops={
                "arrowstyle": "-|>",
                "color": colour,
                "lw": 2.2,
                "shrinkA": 1.5,
                "shrinkB": 1.5,
                "mutation_scale": 14,
            },
        )
        y = box_y - 0.12 - _LINE_IN / 2
        for text, role, bold in lines:
            colour = ROLE_COLOURS.get(role, "#222222")
            weight = "bold" if bold else "normal"
            ax.text(x, y, text, ha="center", va="center", fontsize=_PT, c=colour, weight=weight)
            y -= _LINE_IN


def _draw_row(ax: Axes, label: str, view: PathView, scenario: Scenario, top: float) -> None:
    """One scenario's row; ``top`` is its upper edge, in inches from the bottom."""
    _height, badge_h = _row_height(view, scenario)
    head, sub = _titles(label, view, scenario)
    ax.text(_MARGIN, top - 0.04, head, ha="left", va="top", fontsize=10.5, weight="bold")
    ax.text(_MARGIN, top - 0.25, sub, ha="left", va="top", fontsize=_PT, c="#555555")
    box_y = top - _TITLE_H - badge_h - _BOX_H
    for slot in view.elements:
        _draw_box(ax, slot, _box_lines(view, slot, scenario), box_y)
        if slot in view.badges:
            _draw_badges(ax, slot, view.badges[slot], box_y + _BOX_H)
    _draw_legs(ax, view, scenario, box_y)


def _draw_key(ax: Axes, y: float) -> None:
    """The colour key and how to read the rows, at the bottom."""
    ax.text(_MARGIN, y, "source is", ha="left", va="center", fontsize=_PT, weight="bold")
    x = _MARGIN + _width_in("source is", bold=True) + 0.15
    for role, text in _ROLE_LABELS.items():
        ax.plot([x, x + 0.24], [y, y], color=ROLE_COLOURS[role], lw=2.5, solid_capstyle="butt")
        ax.text(x + 0.3, y, text, ha="left", va="center", fontsize=_PT, c=ROLE_COLOURS[role])
        x += 0.45 + _width_in(text)
    note = (
        "Bold source: rewritten by the element the arrow leaves. DRA: the client address the "
        "gateway uses (E7);\nthe app learns the last X-Forwarded-For entry (E9, I1)."
    )
    ax.text(_MARGIN, y - 0.2, note, ha="left", va="top", fontsize=_PT, c="#333333", linespacing=1.3)


def draw_paths(
    scenarios: Mapping[str, Scenario],
    *,
    conn_id: int | Mapping[str, int | None] | None = None,
    ax: Axes | None = None,
) -> None:
    """Draw the path of one connection per scenario, one row each, with its addresses.

    Args:
        scenarios: row label -> :class:`sim.Scenario`, drawn top to bottom.
        conn_id: the connection to follow in every scenario, or a label -> id mapping;
            ``None`` follows the first successful one, as :func:`sim.trace` does.
        ax: the Axes to draw into (its figure :data:`WIDTH_IN` wide and as tall as the rows);
            by default a new figure sized to the rows.

    Raises:
        ValueError: ``scenarios`` is empty, or a ``conn_id`` is not a connection of its run.
    """
    import matplotlib.pyplot as plt

    if not scenarios:
        raise ValueError("scenarios: give at least one label -> sim.Scenario")
    ids = conn_id if isinstance(conn_id, Mapping) else dict.fromkeys(scenarios, conn_id)
    views = {label: path_view(sc, ids.get(label)) for label, sc in scenarios.items()}
    heights = [_row_height(views[label], sc)[0] for label, sc in scenarios.items()]
    key_h = 0.72
    total = sum(heights) + key_h
    if ax is None:
        fig = plt.figure(figsize=(WIDTH_IN, total))
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, WIDTH_IN)
    ax.set_ylim(0, total)
    ax.set_axis_off()
    top = total
    for (label, scenario), height in zip(scenarios.items(), heights, strict=True):
        _draw_row(ax, label, views[label], scenario, top)
        top -= height
    _draw_key(ax, key_h - 0.14)


STORY: dict[str, str] = {"Cluster": "cluster", "Local": "local", "the PROXY fix": "proxy_protocol"}
"""The rows ``python -m sim.viz.paths`` draws: label -> preset."""
STORY_CONN_ID = 1
"""The connection it follows: with seed 0, connection 1 goes to gw-1 on node-2, so under
``Cluster`` it crosses the tunnel and shows the seed's ``172.x`` (N3)."""


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sim.viz.paths OUT.png``: the story's three paths (PNG at 200 dpi, or SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim import presets

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not args[0].endswith((".png", ".svg")):
        print("usage: python -m sim.viz.paths OUT.png|OUT.svg", file=sys.stderr)
        return 2
    draw_paths({label: presets.get(name) for label, name in STORY.items()}, conn_id=STORY_CONN_ID)
    meta = {"Software": None} if args[0].endswith(".png") else {"Date": None}
    plt.savefig(args[0], dpi=200, metadata=meta)
    plt.close("all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
