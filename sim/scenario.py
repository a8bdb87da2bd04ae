"""What to simulate: the :class:`Scenario` and its failure events.

A scenario is a frozen, keyword-only dataclass validated on construction; variants come from
:func:`dataclasses.replace` (which validates again). Every rejected value raises
:class:`ValueError` with a message that names the field and says what is allowed. The defaults of
the timing fields are the real components' defaults, with their fact IDs next to them (and in
``docs/reference/scenario.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from sim.addresses import MAX_CLIENTS, MAX_NODES
from sim.net.haproxy import HAProxyConfig

MAX_CONNECTIONS = 20_000_000
"""Upper bound on ``rate_per_s * duration_s``, the expected number of connections of a run."""

__all__ = ["DeletePod", "Failure", "HAProxyConfig", "MovePod", "NodeDown", "Scenario"]


def _check_time(field: str, value: object, *, positive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{field}: expected a finite number of seconds, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{field}: must be > 0 seconds, got {value!r}")
    if value < 0:
        raise ValueError(f"{field}: must be >= 0 seconds, got {value!r}")


def _check_name(field: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field}: expected a non-empty name, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeDown:
    """Power a node off at ``at_s`` (and on again at ``up_at_s``, if given).

    A powered-off node drops every packet: its speaker stops answering memberlist probes (M8),
    its kube-proxy stops forwarding and its pods stop serving; connections in flight through it
    die (K14). Its endpoints stay Ready for ``node_monitor_grace_period_s`` (K15). Powered on
    again, its pods and speaker start after ``pod_start_s``.
    """

    node: str
    at_s: float
    up_at_s: float | None = None

    def __post_init__(self) -> None:
        _check_name("NodeDown.node", self.node)
        _check_time("NodeDown.at_s", self.at_s)
        if self.up_at_s is not None:
            _check_time("NodeDown.up_at_s", self.up_at_s)
            if self.up_at_s <= self.at_s:
                raise ValueError(
                    f"NodeDown.up_at_s: must be later than at_s ({self.at_s}), got {self.up_at_s}"
                )


@dataclass(frozen=True, slots=True, kw_only=True)
class DeletePod:
    """Delete a gateway pod at ``at_s``: gracefully (the default) or forced.

    Graceful (``force=False``, as ``kubectl delete pod``, a drain or a scale-down, K18): the pod
    turns Terminating, its endpoint ``ready: false``, ``serving: true``. kube-proxy stops
    choosing it while any Ready endpoint exists and falls back to it only when none is (K12);
    MetalLB keeps announcing from its node (M4); the healthCheckNodePort answers 503 once only
    terminating endpoints remain (K11). It keeps serving for ``Scenario.termination_drain_s``
    (Istio's ``terminationDrainDuration``), then exits; connections still open then are reset.

    Forced (``force=True``, ``--force --grace-period=0``): gone at once, its connections in flight
    reset.

    Either way the Deployment's ReplicaSet creates the replacement at once on the same node (or,
    if that node is down, on the live node with the fewest gateway pods); it keeps the name, gets
    a new address from the node's block and becomes Ready after ``pod_start_s``.
    """

    pod: str
    at_s: float
    force: bool = False

    def __post_init__(self) -> None:
        _check_name("DeletePod.pod", self.pod)
        _check_time("DeletePod.at_s", self.at_s)
        if not isinstance(self.force, bool):
            raise ValueError(f"DeletePod.force: expected True or False, got {self.force!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MovePod:
    """Move a gateway pod to ``to_node`` at ``at_s``: a rollout with surge (K18).

    The new pod starts on ``to_node`` at ``at_s`` (same name, an address from that node's
    block); once it is Ready, the old pod turns Terminating, drains for
    ``Scenario.termination_drain_s`` and exits, as with a graceful :class:`DeletePod`. Under
    ``Cluster`` no connection is lost; under ``Local`` the VIP follows the endpoint, which resets
    the flows in flight through the old node (M17).
    """

    pod: str
    to_node: str
    at_s: float

    def __post_init__(self) -> None:
        _check_name("MovePod.pod", self.pod)
        _check_name("MovePod.to_node", self.to_node)
        _check_time("MovePod.at_s", self.at_s)


Failure = NodeDown | DeletePod | MovePod
"""Any failure event a :class:`Scenario` accepts."""

_POLICIES = ("Cluster", "Local")
ENCAPSULATIONS = ("VXLAN", "IPIP", "VXLANCrossSubnet", "IPIPCrossSubnet", "None")
"""Allowed values of :attr:`Scenario.encapsulation` (Calico IPPool modes, C1)."""
_ANNOUNCERS = ("metallb", "naive")
_POSITIVE_TIMES = (
    "probe_interval_s",
    "probe_timeout_s",
    "garp_interval_s",
    "garp_duration_s",
    "node_monitor_grace_period_s",
    "pod_eviction_timeout_s",
    "listener_filters_timeout_s",
    "client_timeout_s",
    "request_time_s",
    "duration_s",
)
_NONNEGATIVE_TIMES = ("endpoint_update_delay_s", "pod_start_s", "termination_drain_s")


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """One simulated setup: topology, traffic, failures and the components' timers.

    See ``docs/reference/scenario.md`` for every field with its default, allowed values and the
    fact it comes from. Build variants with :func:`dataclasses.replace`.
    """

    name: str = "custom"
    nodes: int = 3
    gateway_nodes: tuple[str, ...] = ("node-2",)
    external_traffic_policy: Literal["Cluster", "Local"] = "Cluster"
    announcer: Literal["metallb", "naive"] = "metallb"
    haproxy: HAProxyConfig | None = None
    gateway_proxy_protocol: bool = False
    num_trusted_proxies: int = 0
    clients: int = 50
    client_xff: str | None = None
    in_cluster_share: float = 0.0
    client_target: Literal["vip", "nodeport"] = "vip"
    rate_per_s: float = 50.0
    duration_s: float = 60.0
    failures: tuple[NodeDown | DeletePod | MovePod, ...] = ()
    seed: int = 0
    # Calico IPPool encapsulation (C1, N3): Always modes send pod traffic to other nodes through
    # the tunnel device, CrossSubnet (nodes share one L2 subnet here) and None through the NIC.
    encapsulation: Literal["VXLAN", "IPIP", "VXLANCrossSubnet", "IPIPCrossSubnet", "None"] = "VXLAN"
    # memberlist DefaultLANConfig (M8)
    probe_interval_s: float = 1.0
    probe_timeout_s: float = 0.5
    suspicion_mult: int = 4
    suspicion_max_timeout_mult: int = 6
    # MetalLB gratuitous ARP schedule after a takeover (M9)
    garp_interval_s: float = 1.1
    garp_duration_s: float = 5.0
    # node lifecycle controller (K15)
    node_monitor_grace_period_s: float = 40.0
    pod_eviction_timeout_s: float = 300.0
    # Envoy listener filters (E4)
    listener_filters_timeout_s: float = 15.0
    # A real client's connect timeout (curl's common --connect-timeout 10), T1
    client_timeout_s: float = 10.0
    request_time_s: float = 0.02
    endpoint_update_delay_s: float = 1.0
    pod_start_s: float = 5.0
    # Istio's terminationDrainDuration: a Terminating gateway pod keeps serving this long (K18)
    termination_drain_s: float = 5.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ValueError(f"name: expected a string, got {self.name!r}")
        self._check_int("nodes", self.nodes, 1, MAX_NODES)
        self._check_gateway_nodes()
        if self.external_traffic_policy not in _POLICIES:
            raise ValueError(
                f"external_traffic_policy: {self.external_traffic_policy!r} is not allowed; "
                "allowed: 'Cluster', 'Local'"
            )
        if self.encapsulation not in ENCAPSULATIONS:
            raise ValueError(
                f"encapsulation: {self.encapsulation!r} is not allowed; allowed: "
                + ", ".join(repr(e) for e in ENCAPSULATIONS)
            )
        if self.announcer not in _ANNOUNCERS:
            raise ValueError(
                f"announcer: {self.announcer!r} is not allowed; allowed: 'metallb', 'naive'"
            )
        if self.haproxy is not None and not isinstance(self.haproxy, HAProxyConfig):
            raise ValueError(
                f"haproxy: expected None or a sim.HAProxyConfig, got {type(self.haproxy).__name__}"
            )
        if not isinstance(self.gateway_proxy_protocol, bool):
            raise ValueError(
                "gateway_proxy_protocol: expected True or False, "
                f"got {self.gateway_proxy_protocol!r}"
            )
        self._check_int("num_trusted_proxies", self.num_trusted_proxies, 0, 64)
        self._check_int("clients", self.clients, 1, MAX_CLIENTS)
        self._check_client_xff()
        share = self.in_cluster_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise ValueError(f"in_cluster_share: expected a number from 0 to 1, got {share!r}")
        if self.client_target not in ("vip", "nodeport"):
            raise ValueError(
                f"client_target: allowed values are 'vip' (the MetalLB VIP) and 'nodeport' "
                f"(each node's NodePort), got {self.client_target!r}"
            )
        if self.client_target == "nodeport" and self.haproxy is not None:
            raise ValueError(
                "client_target: 'nodeport' is modelled for clients without HAProxy in front; "
                "set haproxy=None (HAProxy's backend is the VIP)"
            )
        rate = self.rate_per_s
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
            raise ValueError(f"rate_per_s: expected a positive number, got {rate!r}")
        if rate <= 0:
            raise ValueError(f"rate_per_s: must be > 0 connections per second, got {rate!r}")
        for field in _POSITIVE_TIMES:
            _check_time(field, getattr(self, field), positive=True)
        for field in _NONNEGATIVE_TIMES:
            _check_time(field, getattr(self, field))
        expected = self.rate_per_s * self.duration_s
        if expected > MAX_CONNECTIONS:
            raise ValueError(
                f"rate_per_s x duration_s: {expected:.3g} connections expected, at most "
                f"{MAX_CONNECTIONS:,} allowed (every connection is a row of the result; 1M "
                "takes about 20 s and a few GB of memory)"
            )
        if self.probe_timeout_s >= self.probe_interval_s:
            raise ValueError(
                f"probe_timeout_s: must be shorter than probe_interval_s "
                f"({self.probe_interval_s}), got {self.probe_timeout_s} (memberlist, M8)"
            )
        self._check_int("suspicion_mult", self.suspicion_mult, 1, 100)
        self._check_int("suspicion_max_timeout_mult", self.suspicion_max_timeout_mult, 1, 100)
        self._check_int("seed", self.seed, 0, 2**63 - 1)
        self._check_failures()

    @staticmethod
    def _check_int(field: str, value: object, low: int, high: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{field}: expected an integer from {low} to {high}, got {value!r}")
        if not low <= value <= high:
            raise ValueError(f"{field}: must be from {low} to {high}, got {value}")

    @property
    def node_names(self) -> tuple[str, ...]:
        """The node names, ``node-1`` .. ``node-N``."""
        return tuple(f"node-{i + 1}" for i in range(self.nodes))

    @property
    def pod_names(self) -> tuple[str, ...]:
        """The gateway pod names, ``gw-1`` .. ``gw-k``, one per entry of ``gateway_nodes``."""
        return tuple(f"gw-{i + 1}" for i in range(len(self.gateway_nodes)))

    def _allowed_nodes(self) -> str:
        names = self.node_names
        return ", ".join(names) if len(names) <= 6 else f"node-1 .. node-{len(names)}"

    def _check_gateway_nodes(self) -> None:
        if not isinstance(self.gateway_nodes, tuple):
            raise ValueError(
                f"gateway_nodes: expected a tuple of node names, got {self.gateway_nodes!r}"
            )
        if len(self.gateway_nodes) > 100:
            raise ValueError(f"gateway_nodes: at most 100 replicas, got {len(self.gateway_nodes)}")
        known = set(self.node_names)
        for i, node in enumerate(self.gateway_nodes):
            if node not in known:
                raise ValueError(
                    f"gateway_nodes[{i}]: unknown node {node!r}; allowed: {self._allowed_nodes()}"
                )

    def _check_client_xff(self) -> None:
        xff = self.client_xff
        if xff is None:
            return
        if not isinstance(xff, str) or not xff.strip():
            raise ValueError(f"client_xff: expected None or a non-empty string, got {xff!r}")
        if not xff.isascii() or any(c in xff for c in "\r\n\0"):
            raise ValueError(
                "client_xff: must be printable ASCII without CR, LF or NUL (it becomes an "
                f"X-Forwarded-For header line), got {xff!r}"
            )

    def _check_failures(self) -> None:
        if not isinstance(self.failures, tuple):
            raise ValueError(
                f"failures: expected a tuple of NodeDown/DeletePod/MovePod, got {self.failures!r}"
            )
        nodes = set(self.node_names)
        pods = set(self.pod_names)
        for i, event in enumerate(self.failures):
            where = f"failures[{i}]"
            at = getattr(event, "at_s", None)
            if isinstance(at, int | float) and at >= self.duration_s:
                raise ValueError(
                    f"{where}.at_s: {at:g} s is not within the run "
                    f"(duration_s={self.duration_s:g}): a failure event must start before the end"
                )
            if isinstance(event, NodeDown):
                if event.node not in nodes:
                    raise ValueError(
                        f"{where}.node: unknown node {event.node!r}; "
                        f"allowed: {self._allowed_nodes()}"
                    )
            elif isinstance(event, DeletePod | MovePod):
                if event.pod not in pods:
                    allowed = ", ".join(self.pod_names) or "(none: gateway_nodes is empty)"
                    raise ValueError(f"{where}.pod: unknown pod {event.pod!r}; allowed: {allowed}")
                if isinstance(event, MovePod) and event.to_node not in nodes:
                    raise ValueError(
                        f"{where}.to_node: unknown node {event.to_node!r}; "
                        f"allowed: {self._allowed_nodes()}"
                    )
            else:
                raise ValueError(
                    f"{where}: expected a sim.NodeDown, sim.DeletePod or sim.MovePod, "
                    f"got {type(event).__name__}"
                )
