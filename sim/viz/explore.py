"""Tables for tutorials 05-07 and the interactive explorer of tutorial 07.

* :func:`log_table`: what each log shows, per setup and gateway pod, like FACTS.md section C4:
  the gateway's ``%DOWNSTREAM_REMOTE_ADDRESS%`` next to its direct peer (E7), the
  ``X-Forwarded-For`` the application receives (E8) and the sidecar's remote address (E9, I1),
  every address labelled with whose it is (client, node IP, tunnel IP, HAProxy, ...).
* :func:`client_visibility`: per setup, how often each of those addresses is the real client.
* :func:`summary_table`: :meth:`sim.Result.summary` of several runs as one rounded table.
* :func:`outcomes_by_window`: outcome counts per time window, to set next to HAProxy's health
  check events (H5).
* :func:`scenario_from_controls` / :func:`controls_from_scenario`: the explorer's controls as a
  pure mapping to and from a :class:`~sim.Scenario`, testable without widgets.
* :func:`explorer` (:class:`Explorer`): ipywidgets controls that re-run the simulation and
  redraw the summary table and the timeline; ipywidgets is imported only when it is built (it
  is in the ``lab`` extra, not a core dependency).

The module only reads results and builds scenarios; it models nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

import matplotlib.pyplot as plt
import pandas as pd

from sim import presets
from sim.addresses import HAPROXY_IP, SIDECAR_INBOUND_IP
from sim.net.haproxy import HAProxyConfig
from sim.results import Result
from sim.scenario import NodeDown, Scenario
from sim.topology import simulate
from sim.viz.figures import plot_timeline

__all__ = [
    "CONTROLS",
    "Explorer",
    "address_roles",
    "client_visibility",
    "controls_from_scenario",
    "explorer",
    "log_table",
    "outcomes_by_window",
    "scenario_from_controls",
    "show_state",
    "summary_table",
]

LOG_COLUMNS = (
    "setup",
    "gateway pod",
    "client",
    "gateway DRA",
    "gateway direct peer",
    "XFF at app",
    "sidecar DRA",
)
"""Columns of :func:`log_table` (DRA = Envoy's ``%DOWNSTREAM_REMOTE_ADDRESS%``)."""

CONTROLS = (
    "policy",
    "placement",
    "announcer",
    "haproxy_mode",
    "send_proxy",
    "gateway_proxy_protocol",
    "failure_node",
    "failure_at_s",
)
"""The explorer's controls, in display order; the keyword names of
:func:`scenario_from_controls`."""

_POLICIES = ("Cluster", "Local")
_ANNOUNCERS = ("metallb", "naive")
_HAPROXY_MODES = ("none", "tcp", "http")
_SEND_PROXY = ("none", "v1", "v2")
_NO_FAILURE = "none"


def address_roles(result: Result) -> dict[str, str]:
    """Map every address of a run to whose it is: ``client``, ``node-3 node IP``, ...

    Node and tunnel addresses come from :attr:`Result.nodes` (N2, N3), pod addresses from
    :attr:`Result.pods`, clients and in-cluster callers (K8) from :attr:`Result.connections`;
    HAProxy's address and the sidecar's inbound bind address (I8) are fixed.
    """
    roles: dict[str, str] = {HAPROXY_IP: "HAProxy", SIDECAR_INBOUND_IP: "sidecar (I8)"}
    for node, node_ip, tunnel_ip in result.nodes[["node", "node_ip", "tunnel_ip"]].itertuples(
        index=False
    ):
        roles[str(node_ip)] = f"{node} node IP"
        roles[str(tunnel_ip)] = f"{node} tunnel IP"
    for pod, pod_ip in result.pods[["pod", "pod_ip"]].itertuples(index=False):
        roles[str(pod_ip)] = f"{pod} pod IP"
    conns = result.connections
    if len(conns):
        inside = conns["path"] == "in_cluster"
        for ip in conns.loc[inside, "client_ip"].unique():
            roles[str(ip)] = "in-cluster caller"
        for ip in conns.loc[~inside, "client_ip"].unique():
            roles[str(ip)] = "client"
    return roles


def _labelled(value: str, roles: Mapping[str, str]) -> str:
    """``"a, b"`` -> ``"a (role), b (role)"``; addresses without a known role stay bare."""
    if not value:
        return "-"
    parts = [p.strip() for p in value.split(",")]
    return ", ".join(f"{p} ({roles[p]})" if p in roles else p for p in parts)


def log_table(results: Mapping[str, Result]) -> pd.DataFrame:
    """What each log shows, one row per setup and gateway pod (FACTS C4), addresses labelled.

    For every gateway pod of every run, the first connection that reached that pod (a
    successful one if there is any) gives: the client's address; the gateway's
    ``%DOWNSTREAM_REMOTE_ADDRESS%`` and ``%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%`` (E7); the
    ``X-Forwarded-For`` the sidecar and the application receive (E8, I7); and the sidecar's
    remote address, the last XFF entry (E9, I1). ``-`` marks a field the connection never set
    (for instance no XFF because the gateway answered 400 itself).

    Args:
        results: ``label -> Result``; labels become the ``setup`` column.

    Returns:
        A DataFrame with the columns of :data:`LOG_COLUMNS`.
    """
    rows: list[tuple[str, ...]] = []
    for label, result in results.items():
        roles = address_roles(result)
        conns = result.connections
        if not len(conns):
            continue
        reached = conns[conns["gateway_pod"] != ""]
        for pod in sorted(reached["gateway_pod"].unique()):
            mine = reached[reached["gateway_pod"] == pod]
            ok = mine[mine["outcome"] == "ok"]
            row = (ok if len(ok) else mine).iloc[0]
            rows.append(
                (
                    label,
                    f"{pod} on {row['gateway_node']}",
                    _labelled(str(row["client_ip"]), roles),
                    _labelled(str(row["gateway_client_ip"]), roles),
                    _labelled(str(row["gateway_direct_ip"]), roles),
                    _labelled(str(row["xff_at_app"]), roles),
                    _labelled(str(row["app_remote_ip"]), roles),
                )
            )
    return pd.DataFrame(rows, columns=list(LOG_COLUMNS))


VISIBILITY_FIELDS = {
    "gateway direct peer": "gateway_direct_ip",
    "gateway DRA": "gateway_client_ip",
    "x-envoy-external-address": "x_envoy_external_address",
    "first XFF entry at app": "xff_first",
    "sidecar DRA": "app_remote_ip",
}
"""Columns of :func:`client_visibility` and the connection field each one reads."""


def client_visibility(results: Mapping[str, Result]) -> pd.DataFrame:
    """Per setup, how often each logged address is the real client (% of successful requests).

    Columns (:data:`VISIBILITY_FIELDS`): the gateway's direct peer and DRA (E7), the
    ``x-envoy-external-address`` it set (E10, I4), the first ``X-Forwarded-For`` entry the app
    receives, and the sidecar's DRA, the last entry (E9, I1). A setup where no request
    succeeded gets NaN. Rounded to 0.1.

    Args:
        results: ``label -> Result``; labels become the index (named ``setup``).
    """
    rows: list[dict[str, float]] = []
    for result in results.values():
        ok = result.connections[result.connections["outcome"] == "ok"]
        client = ok["client_ip"]
        fields = {
            "gateway_direct_ip": ok["gateway_direct_ip"],
            "gateway_client_ip": ok["gateway_client_ip"],
            "x_envoy_external_address": ok["x_envoy_external_address"],
            "xff_first": ok["xff_at_app"].str.split(",").str[0].str.strip(),
            "app_remote_ip": ok["app_remote_ip"],
        }
        rows.append(
            {
                label: float(100.0 * (fields[field] == client).mean()) if len(ok) else float("nan")
                for label, field in VISIBILITY_FIELDS.items()
            }
        )
    return pd.DataFrame(rows, index=pd.Index(list(results), name="setup")).round(1)


_SUMMARY_ORDER = ("connections", "ok", "reachability_pct", "client_ip_seen_pct", "failover_gap_s")


def summary_table(results: Mapping[str, Result]) -> pd.DataFrame:
    """The runs' :meth:`~sim.Result.summary` as one table, one row per label, rounded to 0.1.

    Like :func:`sim.compare`, but for results already simulated: absent ``share_*`` and
    ``failed_*`` columns are 0, and ``failed_*`` columns come last, sorted by name.

    Args:
        results: ``label -> Result``; labels become the index (named ``setup``).
    """
    frame = pd.DataFrame(
        [r.summary() for r in results.values()],
        index=pd.Index(list(results), name="setup"),
    ).drop(columns="name")
    shares = sorted(c for c in frame.columns if c.startswith("share_"))
    failed = sorted(c for c in frame.columns if c.startswith("failed_"))
    frame[shares] = frame[shares].fillna(0.0)
    frame[failed] = frame[failed].fillna(0).astype("int64")
    return frame[[*_SUMMARY_ORDER, *shares, *failed]].round(1)


def outcomes_by_window(result: Result, window_s: float = 10.0) -> pd.DataFrame:
    """Connections per outcome in consecutive windows of ``window_s`` simulated seconds.

    The index is the window's start (``from_s``); one column per outcome that occurred.

    Raises:
        ValueError: ``window_s`` is not a positive number.
    """
    if isinstance(window_s, bool) or not isinstance(window_s, int | float) or window_s <= 0:
        raise ValueError(f"window_s: expected a positive number of seconds, got {window_s!r}")
    conns = result.connections
    start = (conns["t_start"].astype(float) // window_s * window_s).round(6)
    table = pd.crosstab(start.rename("from_s"), conns["outcome"])
    table.columns.name = None
    return table


def _choice(control: str, value: object, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(
            f"{control}: {value!r} is not allowed; allowed: " + ", ".join(map(repr, allowed))
        )
    return value


_CONTROL_DEFAULTS: dict[str, Any] = {
    "policy": "Cluster",
    "placement": ("node-2", "node-3"),
    "announcer": "metallb",
    "haproxy_mode": "none",
    "send_proxy": "none",
    "gateway_proxy_protocol": False,
    "failure_node": _NO_FAILURE,
    "failure_at_s": 20.0,
}
"""Every control of the explorer and its default."""


def scenario_from_controls(*, base: Scenario = presets.cluster, **controls: Any) -> Scenario:
    """The :class:`~sim.Scenario` the explorer's controls describe (no widgets involved).

    Every control is a keyword argument; an unknown one is a :class:`ValueError` naming it.

    Args:
        policy: ``externalTrafficPolicy``, ``"Cluster"`` or ``"Local"`` (K1, K2).
        placement: the nodes of the gateway pods (``gw-1`` on the first, ...); may be empty
            (the Service then has no endpoints, K6).
        announcer: ``"metallb"`` (endpoint-aware, M3) or ``"naive"`` (M16).
        haproxy_mode: ``"none"`` (clients reach the VIP directly), ``"tcp"`` or ``"http"``
            (with ``option forwardfor``, H7).
        send_proxy: ``"none"``, ``"v1"`` or ``"v2"`` (H1; only with ``haproxy_mode="tcp"``).
        gateway_proxy_protocol: the gateway's proxy_protocol listener filter (E1, I2).
        failure_node: ``"none"`` or the node to power off (``NodeDown``).
        failure_at_s: when that node goes down; ignored without a failure node.
        base: the scenario every other field (nodes, clients, rate, duration, seed, timers)
            comes from.

    ``num_trusted_proxies`` follows the HAProxy mode: 1 behind ``mode http`` (HAProxy appends
    XFF, I4), 0 otherwise (a TCP hop appends nothing, so trusting one would trust the client's
    own XFF, I5).

    Raises:
        ValueError: a control has a value that is not allowed, or controls contradict each
            other; the message starts with the control's name.
    """
    unknown = sorted(set(controls) - set(_CONTROL_DEFAULTS))
    if unknown:
        raise ValueError(
            f"{unknown[0]}: not a control; allowed: {', '.join(_CONTROL_DEFAULTS)}, base"
        )
    values = {**_CONTROL_DEFAULTS, **controls}
    return _scenario_of(base, values)


def _scenario_of(base: Scenario, values: dict[str, Any]) -> Scenario:
    policy, placement = values["policy"], values["placement"]
    announcer, haproxy_mode = values["announcer"], values["haproxy_mode"]
    send_proxy, gateway_proxy_protocol = values["send_proxy"], values["gateway_proxy_protocol"]
    failure_node, failure_at_s = values["failure_node"], values["failure_at_s"]
    policy = _choice("policy", policy, _POLICIES)
    announcer = _choice("announcer", announcer, _ANNOUNCERS)
    haproxy_mode = _choice("haproxy_mode", haproxy_mode, _HAPROXY_MODES)
    send_proxy = _choice("send_proxy", "none" if send_proxy is None else send_proxy, _SEND_PROXY)
    if send_proxy != "none" and haproxy_mode != "tcp":
        raise ValueError(
            f"send_proxy: {send_proxy!r} needs haproxy_mode 'tcp' (got {haproxy_mode!r}): "
            "only HAProxy in mode tcp writes a PROXY header here (H1, H7)"
        )
    if not isinstance(gateway_proxy_protocol, bool):
        raise ValueError(
            f"gateway_proxy_protocol: expected True or False, got {gateway_proxy_protocol!r}"
        )
    if isinstance(placement, str) or not isinstance(placement, Sequence):
        raise ValueError(f"placement: expected a sequence of node names, got {placement!r}")
    nodes = base.node_names
    for node in placement:
        _choice("placement", node, nodes)
    failures: tuple[NodeDown, ...] = ()
    if failure_node != _NO_FAILURE:
        failure_node = _choice("failure_node", failure_node, (_NO_FAILURE, *nodes))
        at = failure_at_s
        if isinstance(at, bool) or not isinstance(at, int | float):
            raise ValueError(f"failure_at_s: expected a number of seconds, got {at!r}")
        if not 0 <= at < base.duration_s:
            raise ValueError(
                f"failure_at_s: must be from 0 to below the run's duration "
                f"({base.duration_s} s), got {at!r}"
            )
        failures = (NodeDown(node=failure_node, at_s=float(at)),)
    haproxy = None
    if haproxy_mode != "none":
        # forwardfor keeps HAProxyConfig's default (True): it only acts in mode http (H7).
        haproxy = HAProxyConfig(
            mode=haproxy_mode, send_proxy=None if send_proxy == "none" else send_proxy
        )
    return replace(
        base,
        name="explore",
        external_traffic_policy="Cluster" if policy == "Cluster" else "Local",
        gateway_nodes=tuple(placement),
        announcer="metallb" if announcer == "metallb" else "naive",
        haproxy=haproxy,
        gateway_proxy_protocol=gateway_proxy_protocol,
        num_trusted_proxies=1 if haproxy_mode == "http" else 0,
        failures=failures,
    )


def _default_failure_s(scenario: Scenario) -> float:
    """The failure time the controls show when none is set: 20 s, or half a shorter run."""
    return min(20.0, float(scenario.duration_s) / 2)


def controls_from_scenario(scenario: Scenario) -> dict[str, Any]:
    """The control values that describe ``scenario`` (the inverse of
    :func:`scenario_from_controls`, for the fields the controls cover).

    Raises:
        ValueError: the scenario has failures the controls cannot express (anything but at most
            one ``NodeDown`` without ``up_at_s``; the message names ``failures``), or clients
            or HAProxy aimed at the NodePorts (``client_target``, ``haproxy.backend``).
    """
    if scenario.client_target != "vip":
        raise ValueError(
            f"client_target: the explorer's clients use the VIP, got {scenario.client_target!r}"
        )
    if scenario.haproxy is not None and scenario.haproxy.backend != "vip":
        raise ValueError(
            f"haproxy.backend: the explorer's HAProxy uses the VIP, got "
            f"{scenario.haproxy.backend!r}"
        )
    failures = scenario.failures
    if len(failures) > 1 or (
        failures and (not isinstance(failures[0], NodeDown) or failures[0].up_at_s is not None)
    ):
        raise ValueError(
            f"failures: the explorer expresses at most one NodeDown without up_at_s, "
            f"got {failures!r}"
        )
    haproxy = scenario.haproxy
    first = failures[0] if failures else None
    return {
        "policy": scenario.external_traffic_policy,
        "placement": tuple(scenario.gateway_nodes),
        "announcer": scenario.announcer,
        "haproxy_mode": "none" if haproxy is None else haproxy.mode,
        "send_proxy": "none"
        if haproxy is None or haproxy.send_proxy is None
        else haproxy.send_proxy,
        "gateway_proxy_protocol": scenario.gateway_proxy_protocol,
        "failure_node": first.node if isinstance(first, NodeDown) else _NO_FAILURE,
        "failure_at_s": first.at_s if isinstance(first, NodeDown) else _default_failure_s(scenario),
    }


def show_state(result: Result, label: str = "explore") -> None:
    """Display one run's :func:`summary_table` and its timeline (:func:`plot_timeline`).

    Draws into the current output (a notebook cell or an ``ipywidgets.Output``) and returns
    ``None``.
    """
    import IPython.display

    # IPython's display() has no annotations; it takes any object and returns None.
    display = cast("Callable[[object], None]", IPython.display.display)
    display(summary_table({label: result}))
    _, ax = plt.subplots(figsize=(9, 3))
    plot_timeline({label: result}, ax=ax)
    plt.show()


class Explorer:
    """ipywidgets controls that re-run :func:`sim.simulate` and redraw on every change.

    Attributes:
        controls: one widget per name of :data:`CONTROLS`.
        widget: the whole explorer (controls, a status line, the output area); display it.
        scenario: the last scenario simulated; ``result``: its :class:`~sim.Result`.
        error: the message of the last invalid combination of controls, ``""`` if none.
    """

    def __init__(self, initial: Scenario = presets.cluster) -> None:
        import ipywidgets as w

        self.base = initial
        values = controls_from_scenario(initial)
        nodes = initial.node_names
        toggles = {"style": {"button_width": "80px"}}
        self.controls: dict[str, Any] = {
            "policy": w.ToggleButtons(
                options=list(_POLICIES), description="traffic policy", **toggles
            ),
            "placement": w.SelectMultiple(
                options=list(nodes), description="gateway pods on", rows=min(len(nodes), 5)
            ),
            "announcer": w.ToggleButtons(
                options=list(_ANNOUNCERS), description="announcer", **toggles
            ),
            "haproxy_mode": w.ToggleButtons(
                options=list(_HAPROXY_MODES), description="HAProxy mode", **toggles
            ),
            "send_proxy": w.ToggleButtons(
                options=list(_SEND_PROXY), description="send-proxy", **toggles
            ),
            "gateway_proxy_protocol": w.Checkbox(description="gateway proxy_protocol filter"),
            "failure_node": w.Dropdown(options=[_NO_FAILURE, *nodes], description="NodeDown of"),
            "failure_at_s": w.FloatSlider(
                min=0.0,
                # A failure at the very end of a run still fits (the slider would clamp it).
                max=max(float(initial.duration_s) - 1.0, float(values["failure_at_s"])),
                step=1.0,
                description="at (s)",
                continuous_update=False,
            ),
        }
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
        for control in self.controls.values():
            control.observe(self._changed, names="value")
        self.widget = w.VBox(
            [*(self.controls[name] for name in CONTROLS), self.status, self.output]
        )
        self.update()

    def values(self) -> dict[str, Any]:
        """The controls' current values, keyed like :func:`scenario_from_controls`."""
        return {name: control.value for name, control in self.controls.items()}

    def _changed(self, _change: object) -> None:
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
        self.result = simulate(scenario)
        self.status.value = f"simulated {len(self.result.connections)} connections"
        self.output.clear_output(wait=True)
        with self.output:
            show_state(self.result)


def explorer(initial: Scenario = presets.cluster) -> Any:
    """An :class:`Explorer` for ``initial``, returned as its ``ipywidgets`` widget to display."""
    return Explorer(initial).widget
