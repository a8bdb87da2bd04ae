"""The simulator's architecture as a picture: the elements, who calls whom, where a packet goes.

:func:`draw_architecture` draws it; ``python -m sim.viz.architecture FILE.svg`` writes the SVG
that ``docs/background/index.md`` shows (a test checks that the picture names every element
module of :mod:`sim.net` and that the committed file is current).

Top row, the data plane: the packet's path, one box per element with its module and main class,
arrows labelled with what crosses them (a :class:`~sim.path.Packet`, rewritten or not). Bottom
row, the control plane: the objects that own SimPy processes and change the state the data plane
reads (ARP entries, endpoints, node power, HAProxy's server state), dashed arrows for "updates".
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["BOXES", "draw_architecture"]

# (key, title, "module: class", x, y), in data units of a 17.5 x 8.6 canvas.
BOXES: tuple[tuple[str, str, str, float, float], ...] = (
    ("client", "client", "net.clients\nClients", 1.1, 5.8),
    ("haproxy", "HAProxy", "net.haproxy\nHAProxy", 3.6, 5.8),
    ("segment", "L2 segment (ARP)", "net.segment\nSegment", 6.1, 5.8),
    ("node", "entry node", "net.node\nNode", 8.6, 5.8),
    ("kube_proxy", "kube-proxy", "net.kube_proxy\nKubeProxy", 11.1, 5.8),
    ("pod", "gateway pod", "net.node.GatewayPod\nnet.gateway.IngressGateway", 13.6, 5.8),
    ("sidecar", "app sidecar", "net.sidecar\nSidecar", 16.1, 5.8),
    ("caller", "in-cluster caller", "Topology.walk\n(K8)", 11.1, 7.6),
    ("checker", "HAProxy checks", "net.haproxy_checks\nHealthChecker", 3.6, 3.6),
    ("speaker", "MetalLB speaker", "net.metallb\nL2Speaker", 6.1, 3.6),
    ("endpoints", "EndpointSlices", "net.endpoints\nEndpointSlices", 11.1, 3.6),
    ("memberlist", "memberlist", "net.memberlist\nMemberlist", 3.6, 1.7),
    ("lifecycle", "node lifecycle", "net.node_lifecycle\nNodeLifecycleController", 8.6, 1.7),
    ("deployment", "gateway Deployment", "net.deployment\nGatewayDeployment", 13.6, 1.7),
    ("failures", "failure events", "failures\nFailureInjector", 8.6, 0.1),
)

# Data plane: (from, to, label). Control plane updates: (from, to, label), drawn dashed.
_PATH = (
    ("client", "haproxy", "Packet"),
    ("haproxy", "segment", "+PROXY\nor XFF"),
    ("segment", "node", "ARP\nentry"),
    ("node", "kube_proxy", "if\npowered"),
    ("kube_proxy", "pod", "DNAT,\nSNAT"),
    ("pod", "sidecar", "+XFF"),
    ("caller", "kube_proxy", "short-circuit"),
)
_UPDATES = (
    ("checker", "haproxy", "server UP / DOWN"),
    ("speaker", "segment", "gratuitous ARP"),
    ("endpoints", "kube_proxy", "endpoint table"),
    ("endpoints", "speaker", "re-elect"),
    ("memberlist", "speaker", "dead / joined"),
    ("lifecycle", "endpoints", "NotReady (K15)"),
    ("deployment", "endpoints", "Ready changes"),
    ("failures", "memberlist", "speaker stops"),
    ("failures", "lifecycle", "power off"),
    ("failures", "deployment", "delete, move"),
)
_W, _H = 1.95, 1.0
_BLUE, _ORANGE = "#08519c", "#d94801"
_SIZE = (17.5, 8.6)


def draw_architecture(ax: Axes | None = None) -> None:
    """Draw the architecture into ``ax`` (a new 17.5 x 8.6 inch figure by default)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    if ax is None:
        _fig, ax = plt.subplots(figsize=_SIZE)
    where = {key: (x, y) for key, _t, _c, x, y in BOXES}
    for key, title, code, x, y in BOXES:
        data = y > 5
        face = "#deebf7" if data else "#fee6ce"
        if key == "caller":
            face = "#efefef"
        ax.add_patch(
            FancyBboxPatch(
                (x - _W / 2, y - _H / 2),
                _W,
                _H,
                boxstyle="round,pad=0.04",
                facecolor=face,
                edgecolor="#444444",
                linewidth=1.0,
            )
        )
        ax.text(x, y + 0.25, title, ha="center", va="center", fontsize=10.5, weight="bold")
        ax.text(x, y - 0.15, code, ha="center", va="center", fontsize=7.5, family="monospace")
    for src, dst, label in _PATH:
        _arrow(ax, where[src], where[dst], label, dashed=False)
    for src, dst, label in _UPDATES:
        _arrow(ax, where[src], where[dst], label, dashed=True)
    from matplotlib.lines import Line2D

    ax.legend(
        handles=[
            Line2D([], [], color=_BLUE, label="data plane: where a packet goes (Topology.walk)"),
            Line2D([], [], color=_ORANGE, ls="--", label="control plane: updates what it reads"),
        ],
        loc="upper left",
        fontsize=9,
        frameon=False,
    )
    ax.set_xlim(0.0, 17.2)
    ax.set_ylim(-0.5, 8.2)
    ax.set_axis_off()


def _arrow(
    ax: Axes, src: tuple[float, float], dst: tuple[float, float], label: str, *, dashed: bool
) -> None:
    (x0, y0), (x1, y1) = src, dst
    # Leave and enter the boxes at their edges: horizontally for a row, vertically otherwise.
    if abs(y1 - y0) < 0.3:
        start = (x0 + _W / 2 * (1 if x1 > x0 else -1), y0)
        end = (x1 - _W / 2 * (1 if x1 > x0 else -1), y1)
    else:
        start = (x0, y0 + _H / 2 * (1 if y1 > y0 else -1))
        end = (x1, y1 - _H / 2 * (1 if y1 > y0 else -1))
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops={
            "arrowstyle": "-|>",
            "color": _ORANGE if dashed else _BLUE,
            "linestyle": "--" if dashed else "-",
            "linewidth": 1.2,
            "shrinkA": 2,
            "shrinkB": 2,
        },
    )
    mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    ax.text(
        mid[0],
        mid[1] + (0.12 if abs(end[1] - start[1]) < 0.3 else 0.0),
        label,
        ha="center",
        va="bottom" if abs(end[1] - start[1]) < 0.3 else "center",
        fontsize=7.5,
        color="#333333",
        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 0.5},
    )


def main(argv: list[str] | None = None) -> int:
    """Write the picture to the SVG file given as the only argument."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m sim.viz.architecture FILE.svg", file=sys.stderr)
        return 2
    plt.rcParams["svg.hashsalt"] = "srcip-lab"  # stable element ids: the file diffs cleanly
    plt.rcParams["svg.fonttype"] = "none"  # text stays text (searchable, selectable)
    fig, ax = plt.subplots(figsize=_SIZE)
    draw_architecture(ax)
    fig.tight_layout()
    fig.savefig(args[0], format="svg", metadata={"Date": None})
    plt.close(fig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
