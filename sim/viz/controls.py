"""The explorer's controls as a pure mapping to and from a :class:`~sim.Scenario`.

:func:`scenario_from_controls` builds the scenario the controls of tutorial 07's explorer
describe, :func:`controls_from_scenario` reads the controls back from a scenario; both are
testable without widgets (:mod:`sim.viz.explorer` draws the widgets). A combination the model
does not allow is a :class:`ValueError` whose message starts with the control's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sim import presets
from sim.net.haproxy import HAProxyConfig
from sim.scenario import NodeDown, Scenario

__all__ = ["CONTROLS", "controls_from_scenario", "scenario_from_controls"]

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
