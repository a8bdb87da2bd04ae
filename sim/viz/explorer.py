"""The interactive explorer of tutorial 07: ipywidgets controls that re-run the simulation.

:class:`Explorer` maps its controls to a scenario with
:func:`sim.viz.explore.scenario_from_controls`, simulates it and redraws
:func:`show_state` (a compact summary and the timeline). While a run is under way its status
line says so, so a reader sees that something is happening; changes made meanwhile queue up.
Every control has its label in one column on the left, wide enough for the longest one.
Runs are serialized, and the figure is drawn outside pyplot's global state: JupyterLab may
deliver widget messages on another kernel thread than the cells'.
ipywidgets is imported only when an explorer is built: it is in the ``lab`` extra, not a core
dependency.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import Any, cast

from sim import presets
from sim.results import Result
from sim.scenario import Scenario
from sim.topology import simulate
from sim.viz.controls import (
    _ANNOUNCERS,
    _HAPROXY_MODES,
    _NO_FAILURE,
    _POLICIES,
    _SEND_PROXY,
    CONTROLS,
    controls_from_scenario,
    scenario_from_controls,
)
from sim.viz.explore import compact_summary
from sim.viz.timeline import plot_timeline

__all__ = ["LABELS", "RUNNING", "Explorer", "explorer", "show_state"]

LABELS: dict[str, str] = {
    "policy": "externalTrafficPolicy",
    "placement": "gateway pods on",
    "announcer": "VIP announcer",
    "haproxy_mode": "HAProxy mode",
    "send_proxy": "HAProxy send-proxy",
    "gateway_proxy_protocol": "gateway PROXY filter",
    "failure_node": "power off node",
    "failure_at_s": "at (simulated s)",
}
"""The label shown left of each control, by the name in :data:`CONTROLS`."""
RUNNING = "<b>running…</b> simulating"
"""The start of the status line while a run is under way."""
_LABEL_WIDTH = "180px"


def show_state(result: Result, label: str = "explore") -> None:
    """Display one run's :func:`~sim.viz.explore.compact_summary` (as a column) and timeline.

    Draws into the current output (a notebook cell or an ``ipywidgets.Output``) and returns
    ``None``.
    """
    import IPython.display
    from matplotlib.figure import Figure

    # IPython's display() has no annotations; it takes any object and returns None.
    display = cast("Callable[[object], None]", IPython.display.display)
    # One run: its summary as a column (metric -> value), narrow enough for any output area.
    display(compact_summary({label: result}).T)
    # A Figure outside pyplot's registry: the explorer's callbacks may run on another kernel
    # thread (JupyterLab sends widget messages to a subshell), and pyplot's global figures are
    # not thread-safe: a plt.show() in one thread would display (and close) another's
    # half-drawn figure.
    figure = Figure(figsize=(7.0, 2.6))
    plot_timeline({label: result}, ax=figure.add_subplot())
    # As a PNG of its own: a bare Figure renders as an image only where pyplot's inline backend
    # has been set up, which a callback cannot rely on.
    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=100, bbox_inches="tight")
    image = cast("Callable[..., object]", IPython.display.Image)
    display(image(data=png.getvalue(), format="png"))


def _build_controls(initial: Scenario, values: dict[str, Any]) -> dict[str, Any]:
    import ipywidgets as w

    nodes = initial.node_names
    toggles = {"style": {"button_width": "84px"}}
    return {
        "policy": w.ToggleButtons(options=list(_POLICIES), **toggles),
        "placement": w.SelectMultiple(options=list(nodes), rows=min(len(nodes), 5)),
        "announcer": w.ToggleButtons(options=list(_ANNOUNCERS), **toggles),
        "haproxy_mode": w.ToggleButtons(options=list(_HAPROXY_MODES), **toggles),
        "send_proxy": w.ToggleButtons(options=list(_SEND_PROXY), **toggles),
        "gateway_proxy_protocol": w.Checkbox(indent=False),
        "failure_node": w.Dropdown(options=[_NO_FAILURE, *nodes]),
        "failure_at_s": w.FloatSlider(
            min=0.0,
            # A failure at the very end of a run still fits (the slider would clamp it).
            max=max(float(initial.duration_s) - 1.0, float(values["failure_at_s"])),
            step=1.0,
            continuous_update=False,
        ),
    }


class Explorer:
    """ipywidgets controls that re-run :func:`sim.simulate` and redraw on every change.

    Attributes:
        controls: one widget per name of :data:`CONTROLS`.
        widget: the whole explorer (one labelled row per control, a status line, the output
            area); display it.
        scenario: the last scenario simulated; ``result``: its :class:`~sim.Result`.
        error: the message of the last invalid combination of controls, ``""`` if none.
    """

    def __init__(self, initial: Scenario = presets.cluster) -> None:
        import ipywidgets as w

        self.base = initial
        values = controls_from_scenario(initial)
        nodes = initial.node_names
        self.controls: dict[str, Any] = _build_controls(initial, values)
        for name, control in self.controls.items():
            value = values[name]
            control.value = (
                tuple(sorted(set(value), key=nodes.index)) if name == "placement" else value
            )
        self.status = w.HTML()
        self.output = w.Output()
        self.scenario: Scenario | None = None
        self.result: Result | None = None
        self.error = ""
        self._lock = threading.Lock()
        for control in self.controls.values():
            control.observe(self._changed, names="value")
        label = w.Layout(width=_LABEL_WIDTH)
        rows = [w.HBox([w.Label(LABELS[n], layout=label), self.controls[n]]) for n in CONTROLS]
        self.widget = w.VBox([*rows, self.status, self.output])
        self.update()

    def values(self) -> dict[str, Any]:
        """The controls' current values, keyed like :func:`scenario_from_controls`."""
        return {name: control.value for name, control in self.controls.items()}

    def _changed(self, _change: object) -> None:
        # Widget callbacks may arrive on several kernel threads (JupyterLab's subshells): one
        # run at a time, each with the controls' values as they are when it starts.
        with self._lock:
            self.update()

    def update(self) -> None:
        """Rebuild the scenario from the controls, simulate it and redraw the output."""
        values = self.values()
        self.controls["failure_at_s"].disabled = values["failure_node"] == _NO_FAILURE
        try:
            scenario = scenario_from_controls(base=self.base, **values)
        except ValueError as exc:
            self.error = str(exc)
            self.status.value = f"<b>Invalid combination</b>: {self.error}"
            self.output.clear_output()
            return
        self.error = ""
        self.scenario = scenario
        seconds = f"{scenario.duration_s:g}"
        # Sent to the browser at once, so it shows while the run below takes its time.
        self.status.value = f"{RUNNING} {seconds} s of traffic…"
        self.result = simulate(scenario)
        self.status.value = (
            f"simulated {len(self.result.connections)} connections in {seconds} s of traffic"
        )
        self.output.clear_output(wait=True)
        with self.output:
            show_state(self.result)


def explorer(initial: Scenario = presets.cluster) -> Any:
    """An :class:`Explorer` for ``initial``, returned as its ``ipywidgets`` widget to display."""
    return Explorer(initial).widget
