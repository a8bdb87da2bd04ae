"""Tests for sim.viz.paths and sim.viz.path_view: the path picture says what the trace says,
and every figure of the tutorials is legible at the docs' column width."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

import sim
from sim import presets
from sim.viz.figures import plot_load_spread, plot_reachability, plot_timeline
from sim.viz.path_view import address_role, describe_address, path_view
from sim.viz.paths import STORY, STORY_CONN_ID, WIDTH_IN, draw_paths, main

COLUMN_PX = 700
"""The docs' content column, about 700 px: a figure is shown at most that wide."""
MIN_PT = 9.0


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def _texts(fig: Figure) -> list[Text]:
    return [t for t in fig.findobj(Text) if t.get_text().strip() and t.get_visible()]


def _smallest_pt_at_column_width(fig: Figure) -> float:
    """The smallest font of ``fig`` as a reader sees it in the docs' column (100 dpi inline)."""
    fig.canvas.draw()
    width_px = fig.get_figwidth() * 100.0
    scale = min(1.0, COLUMN_PX / width_px)
    return min(float(t.get_fontsize()) for t in _texts(fig)) * scale


def test_the_story_paths_follow_the_trace() -> None:
    for name in STORY.values():
        scenario = presets.get(name)
        view = path_view(scenario, STORY_CONN_ID)
        frame = sim.trace(scenario, STORY_CONN_ID)
        sent = frame[frame["element"] != "app sidecar (istio-proxy)"]
        assert [leg.src for leg in view.legs] == list(sent["src"])
        assert [leg.dst for leg in view.legs] == list(sent["dst"])
        assert view.ended == ""
        row = sim.simulate(scenario).connections.loc[STORY_CONN_ID]
        assert view.app_ip == row["app_remote_ip"]
        assert view.gateway_ip == row["gateway_client_ip"]


def test_badges_name_each_rewrite() -> None:
    cluster = path_view(presets.cluster, 1)
    assert cluster.badges[2] == ("DNAT", "SNAT")  # K1: masquerade even for ...
    assert cluster.app_ip == "172.16.3.0"  # ... the seed's 172.x through the tunnel (N3)
    assert describe_address(cluster.app_ip, presets.cluster) == "node-3's tunnel IP"
    local = path_view(presets.local, 1)
    assert local.badges[2] == ("DNAT", "no SNAT")  # K2
    assert local.legs[1].src_changed is False
    fix = path_view(presets.proxy_protocol, 1)
    assert fix.badges[1] == ("+PROXY v2",)  # H1
    assert fix.badges[3] == ("reads PROXY", "+XFF")  # E1, E8
    # The header rides through kube-proxy's SNAT unchanged: same client on both legs.
    assert [leg.proxy_src for leg in fix.legs] == ["", "10.0.1.34:50061", "10.0.1.34:50061", ""]
    snat_source = fix.legs[2].src.split(":")[0]
    assert fix.legs[2].src_changed
    assert address_role(snat_source, presets.proxy_protocol) == "SNAT"
    assert fix.app_ip == fix.client_ip


def test_only_the_legs_the_connection_used_are_drawn() -> None:
    naive = path_view(presets.local_naive, 0)
    assert naive.ended.startswith("DROPPED at node-1")
    assert len(naive.legs) == 1  # the client's leg; nothing after the DROP (K6)
    assert sorted(naive.elements) == [0, 2]
    assert naive.badges[2] == ("DROP",)
    broken = path_view(presets.pp_unexpected, 0)
    assert broken.badges[3] == ("400",)  # E6
    assert broken.app_ip == ""


def test_a_retransmitted_syn_shows_its_last_attempt() -> None:
    down = replace(presets.cluster, failures=(sim.NodeDown(node="node-3", at_s=0.5),))
    conns = sim.simulate(down).connections
    again = int(conns.index[(conns["syn_sent"] > 1) & (conns["outcome"] == "ok")][0])
    view = path_view(down, again)
    assert view.retransmitted
    assert view.ended == ""
    assert view.legs[1].sender.startswith("node-1")  # the new announcer, after the GARP (M9)


def test_paths_are_legible_at_column_width_and_nothing_overlaps() -> None:
    draw_paths({label: presets.get(name) for label, name in STORY.items()}, conn_id=1)
    fig = plt.gcf()
    assert fig.get_figwidth() == pytest.approx(WIDTH_IN)
    assert _smallest_pt_at_column_width(fig) >= MIN_PT
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in _texts(fig)]
    for i, (a, box_a) in enumerate(boxes):
        assert fig.bbox.contains(box_a.x0, box_a.y0) and fig.bbox.contains(box_a.x1, box_a.y1), a
        for b, box_b in boxes[i + 1 :]:
            assert not box_a.overlaps(box_b), f"{a!r} overlaps {b!r}"


def test_every_tutorial_figure_keeps_9_pt_at_column_width() -> None:
    down = replace(
        presets.cluster, duration_s=20.0, failures=(sim.NodeDown(node="node-3", at_s=5),)
    )
    local = replace(down, external_traffic_policy="Local")
    results = {"Cluster": sim.simulate(down), "Local": sim.simulate(local)}
    plot_timeline(results)
    plot_reachability(sim.summarize_results(results))
    plot_load_spread(results)
    for number in plt.get_fignums():
        assert _smallest_pt_at_column_width(plt.figure(number)) >= MIN_PT, number


def test_the_command_writes_the_home_page_picture(tmp_path: Path) -> None:
    out = tmp_path / "paths.png"
    assert main([str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["paths.jpg"]) == 2


def test_draw_paths_refuses_nothing_to_draw() -> None:
    with pytest.raises(ValueError, match=r"^scenarios: "):
        draw_paths({})
