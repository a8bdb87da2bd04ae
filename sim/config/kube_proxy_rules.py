"""The iptables rules kube-proxy (iptables mode) writes on one node for the gateway's Service.

Real component: kube-proxy's ``syncProxyRules`` (kubernetes/kubernetes
``pkg/proxy/iptables/proxier.go``, 1.28+) for one ``type: LoadBalancer`` Service with one TCP
port, ``internalTrafficPolicy: Cluster``, no ``loadBalancerSourceRanges``, no session affinity,
``--detect-local-mode=ClusterCIDR`` with ``--cluster-cidr`` = the Calico pool, default
``--nodeport-addresses`` and ``--iptables-localhost-nodeports``. :func:`iptables_save` returns
the nat and filter tables as ``iptables-save`` prints them after kube-proxy's
``iptables-restore``: chains in iptables-save's order, each rule in its canonical form
(``-d 10.0.0.100/32 -p tcp -m comment ... -m tcp --dport 80``, ``MARK --set-xmark``, the
``statistic`` probability as the kernel stores it), so it can be diffed against a real node and
applied with ``iptables-restore`` in a network namespace (tests/test_config_iptables.py does both).

Facts relied on (``FACTS.md`` and ``docs/background``):

* K1, K4, K17: with ``Cluster`` the ``KUBE-EXT-`` chain marks for masquerade first;
  ``KUBE-POSTROUTING`` masquerades marked packets with ``--random-fully``.
* K2, K3: with ``Local`` the EXT chain sends pod sources to the cluster chain, masquerades and
  reroutes node-local sources, and sends the rest to ``KUBE-SVL-`` (local endpoints only).
* K6, K7: no local endpoint under ``Local``: ``DROP`` in ``KUBE-EXTERNAL-SERVICES`` for the LB IP
  and the NodePort (``--dst-type LOCAL``); no endpoint at all: ``REJECT`` there and for the
  ClusterIP.
* K8: ``KUBE-SERVICES`` hangs off ``PREROUTING`` and ``OUTPUT``, so pods and the node itself are
  DNATed on their own node, never reaching the announcer or HAProxy.
* K10: ``healthCheckNodePort`` (``Local`` only) is ACCEPTed in the filter table.
* K12: endpoints are Ready ones; serving-terminating ones only when none is Ready, separately for
  the cluster and the local chain.
* K14: ``-m statistic --mode random --probability 1/(n-i)`` spreads new connections uniformly.
* K19: chain names are ``base32(sha256(servicePortName + protocol [+ endpoint]))[:16]``.

Left out: the rules of other Services (``default/kubernetes``, DNS), the ``mangle`` table and
kubelet's canary chains, the localhost-NodePort rule (written only when the ``nfacct`` counter
exists), IPv6, IPVS and nftables modes (K5, K16).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sim.addresses import pod_ip
from sim.config.cluster import (
    CLUSTER_CIDR,
    CLUSTER_IP,
    GATEWAY_PORT,
    HEALTH_CHECK_NODE_PORT,
    NODE_PORT,
    SERVICE_PORT_NAME,
    VIP,
    VIP_PORT,
)

if TYPE_CHECKING:
    from sim.scenario import Scenario

__all__ = [
    "Endpoint",
    "EndpointSets",
    "categorize",
    "chain_hash",
    "endpoint_chain",
    "initial_endpoints",
    "iptables_save",
    "service_chains",
]

_MARK = "0x4000"  # kube-proxy's default --iptables-masquerade-bit 14 (K4)
_PROTOCOL = "tcp"


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of the gateway's EndpointSlice, as kube-proxy sees it (K12, K18).

    ``pod`` is the pod name, ``ip`` its address, ``node`` the node it runs on; ``ready``,
    ``serving`` and ``terminating`` are the EndpointSlice conditions.
    """

    pod: str
    ip: str
    node: str
    ready: bool = True
    serving: bool = True
    terminating: bool = False

    def __post_init__(self) -> None:
        try:
            ipaddress.IPv4Address(self.ip)
        except ValueError:
            raise ValueError(f"Endpoint.ip: expected an IPv4 address, got {self.ip!r}") from None
        for name in ("ready", "serving", "terminating"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"Endpoint.{name}: expected True or False")

    @property
    def address(self) -> str:
        """``ip:port`` as kube-proxy writes it (the gateway's container port)."""
        return f"{self.ip}:{GATEWAY_PORT}"


@dataclass(frozen=True)
class EndpointSets:
    """kube-proxy's view of one node's endpoints (``CategorizeEndpoints``, K12)."""

    cluster: tuple[Endpoint, ...]
    local: tuple[Endpoint, ...]
    reachable: tuple[Endpoint, ...] = field(default=())
    has_any: bool = False


def initial_endpoints(scenario: Scenario) -> list[Endpoint]:
    """The gateway pods at the start of ``scenario``, all Ready, named and addressed as the
    simulator does: ``gw-i`` on ``gateway_nodes[i-1]``, the node's next address from its block."""
    names = scenario.node_names
    serial = [0] * len(names)
    out = []
    for pod, node in zip(scenario.pod_names, scenario.gateway_nodes, strict=True):
        index = names.index(node)
        out.append(Endpoint(pod=pod, ip=pod_ip(index, serial[index]), node=node))
        serial[index] += 1
    return out


def _ordered(endpoints: Sequence[Endpoint]) -> tuple[Endpoint, ...]:
    # kube-proxy sorts a Service's endpoints by their "ip:port" string before writing them.
    return tuple(sorted(endpoints, key=lambda ep: ep.address))


def categorize(endpoints: Sequence[Endpoint], node: str, *, local_policy: bool) -> EndpointSets:
    """Which endpoints node ``node`` uses for cluster and local traffic (K12).

    Ready endpoints first; only when there is none, the serving-and-terminating ones; decided
    separately for the cluster-wide set and for this node's own set (``Local`` only).
    """
    cluster = [ep for ep in endpoints if ep.ready]
    if not cluster:
        cluster = [ep for ep in endpoints if ep.serving and ep.terminating]
    has_any = bool(cluster)
    local: list[Endpoint] = []
    if local_policy:
        mine = [ep for ep in endpoints if ep.node == node]
        local = [ep for ep in mine if ep.ready]
        if not local:
            local = [ep for ep in mine if ep.serving and ep.terminating]
    union = {ep.address: ep for ep in (*cluster, *local)}
    return EndpointSets(
        cluster=_ordered(cluster),
        local=_ordered(local),
        reachable=_ordered(list(union.values())),
        has_any=has_any,
    )


def chain_hash(text: str) -> str:
    """kube-proxy's 16-character chain suffix: ``base32(sha256(text))[:16]`` (K19)."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def service_chains(service_port_name: str = SERVICE_PORT_NAME) -> dict[str, str]:
    """The Service's chains by role: ``svc`` (cluster), ``svl`` (local), ``ext``, ``fw`` (K19)."""
    suffix = chain_hash(service_port_name + _PROTOCOL)
    return {role: f"KUBE-{role.upper()}-{suffix}" for role in ("svc", "svl", "ext", "fw")}


def endpoint_chain(address: str, service_port_name: str = SERVICE_PORT_NAME) -> str:
    """The ``KUBE-SEP-`` chain of endpoint ``ip:port`` (K19)."""
    return "KUBE-SEP-" + chain_hash(service_port_name + _PROTOCOL + address)


def _probability(n: int) -> str:
    # kube-proxy writes 1/n with 10 decimals; xt_statistic stores round(p * 2^31) and
    # iptables-save prints that back with 11 decimals (libxt_statistic.c).
    written = float(f"{1.0 / n:0.10f}")
    stored = math.floor(written * 0x80000000 + 0.5)
    return f"{stored / 0x80000000:.11f}"


def _c(text: str) -> str:
    return f'-m comment --comment "{text}"'


class _Table:
    """One table in iptables-save order: built-in chains, then user chains by name."""

    def __init__(self, name: str, builtins: tuple[str, ...]) -> None:
        self.name = name
        self.builtins = builtins
        self.rules: dict[str, list[tuple[str, str]]] = {b: [] for b in builtins}

    def declare(self, *chains: str) -> None:
        for chain in chains:
            self.rules.setdefault(chain, [])

    def add(self, chain: str, rule: str, note: str = "") -> None:
        self.declare(chain)
        self.rules[chain].append((note, f"-A {chain} {rule}"))

    def render(self) -> list[str]:
        users = sorted(c for c in self.rules if c not in self.builtins)
        lines = [f"*{self.name}"]
        lines += [f":{b} ACCEPT [0:0]" for b in self.builtins]
        lines += [f":{c} - [0:0]" for c in users]
        for chain in (*self.builtins, *users):
            for note, rule in self.rules[chain]:
                lines += [f"# {n}" for n in note.splitlines()]
                lines.append(rule)
        lines.append("COMMIT")
        return lines


def _jumps(flt: _Table, nat: _Table) -> None:
    # kube-proxy prepends its jump rules (iptablesJumpChains); kubelet's own KUBE-FIREWALL jump,
    # made at boot before kube-proxy starts, therefore ends up last.
    pf = f"-m conntrack --ctstate NEW {_c('kubernetes load balancer firewall')} -j "
    new = "-m conntrack --ctstate NEW "
    flt.add("INPUT", pf + "KUBE-PROXY-FIREWALL")
    flt.add("INPUT", f"{_c('kubernetes health check service ports')} -j KUBE-NODEPORTS")
    ext = f"{new}{_c('kubernetes externally-visible service portals')} -j KUBE-EXTERNAL-SERVICES"
    flt.add("INPUT", ext)
    flt.add("INPUT", "-j KUBE-FIREWALL")
    flt.add("FORWARD", pf + "KUBE-PROXY-FIREWALL")
    flt.add("FORWARD", f"{_c('kubernetes forwarding rules')} -j KUBE-FORWARD")
    flt.add("FORWARD", f"{new}{_c('kubernetes service portals')} -j KUBE-SERVICES")
    flt.add("FORWARD", ext)
    flt.add("OUTPUT", pf + "KUBE-PROXY-FIREWALL")
    flt.add("OUTPUT", f"{new}{_c('kubernetes service portals')} -j KUBE-SERVICES")
    flt.add("OUTPUT", "-j KUBE-FIREWALL")
    portals = f"{_c('kubernetes service portals')} -j KUBE-SERVICES"
    nat.add("PREROUTING", portals, "K8: every packet entering the node, from outside or a pod")
    nat.add("OUTPUT", portals, "K8: packets the node itself sends (host-network callers)")
    nat.add("POSTROUTING", f"{_c('kubernetes postrouting rules')} -j KUBE-POSTROUTING")


def _fixed(flt: _Table, nat: _Table) -> None:
    flt.declare("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL")
    flt.declare("KUBE-PROXY-CANARY")
    flt.add(
        "KUBE-FIREWALL",
        f"! -s 127.0.0.0/8 -d 127.0.0.0/8 {_c('block incoming localnet connections')} "
        "-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
        "route_localnet is on for localhost NodePorts; this rule closes the hole it opens",
    )
    flt.add("KUBE-FORWARD", "-m conntrack --ctstate INVALID -j DROP")
    flt.add(
        "KUBE-FORWARD",
        f"{_c('kubernetes forwarding rules')} -m mark --mark {_MARK}/{_MARK} -j ACCEPT",
    )
    flt.add(
        "KUBE-FORWARD",
        f"{_c('kubernetes forwarding conntrack rule')} -m conntrack "
        "--ctstate RELATED,ESTABLISHED -j ACCEPT",
    )
    nat.declare("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-PROXY-CANARY")
    nat.add("KUBE-MARK-MASQ", f"-j MARK --set-xmark {_MARK}/{_MARK}", "K1: the masquerade mark")
    nat.add("KUBE-POSTROUTING", f"-m mark ! --mark {_MARK}/{_MARK} -j RETURN")
    nat.add("KUBE-POSTROUTING", f"-j MARK --set-xmark {_MARK}/0x0")
    nat.add(
        "KUBE-POSTROUTING",
        f"{_c('kubernetes service traffic requiring SNAT')} -j MASQUERADE --random-fully",
        "K4, N1: marked packets take the egress device's address (node IP or Calico tunnel IP);\n"
        "K17: --random-fully also picks a random source port",
    )


def _filter_service(flt: _Table, sets: EndpointSets, local_policy: bool) -> None:
    spn = SERVICE_PORT_NAME
    if not sets.has_any:
        note = "K6: no usable endpoint anywhere: REJECT (the client sees connection refused)"
        target, why = "REJECT --reject-with icmp-port-unreachable", f"{spn} has no endpoints"
        flt.add(
            "KUBE-SERVICES",
            f"-d {CLUSTER_IP}/32 -p tcp {_c(why)} -m tcp --dport {VIP_PORT} -j {target}",
            note,
        )
    elif local_policy and not sets.local:
        note = "K6, K7: Local and no local endpoint: DROP (the client times out)"
        target, why = "DROP", f"{spn} has no local endpoints"
    else:
        target = why = note = ""
    if target:
        flt.add(
            "KUBE-EXTERNAL-SERVICES",
            f"-d {VIP}/32 -p tcp {_c(why)} -m tcp --dport {VIP_PORT} -j {target}",
            note,
        )
        flt.add(
            "KUBE-EXTERNAL-SERVICES",
            f"-p tcp {_c(why)} -m addrtype --dst-type LOCAL -m tcp --dport {NODE_PORT} -j {target}",
        )
    if local_policy:
        flt.add(
            "KUBE-NODEPORTS",
            f"-p tcp {_c(spn + ' health check node port')} -m tcp "
            f"--dport {HEALTH_CHECK_NODE_PORT} -j ACCEPT",
            "K10, K11: kube-proxy's own /healthz server (200 with local Ready endpoints, else 503)",
        )


def _balance(nat: _Table, chain: str, endpoints: Sequence[Endpoint], note: str) -> None:
    n = len(endpoints)
    for i, ep in enumerate(endpoints):
        stat = ""
        if i < n - 1:
            stat = f" -m statistic --mode random --probability {_probability(n - i)}"
        nat.add(
            chain,
            f"{_c(f'{SERVICE_PORT_NAME} -> {ep.address}')}{stat} -j {endpoint_chain(ep.address)}",
            note if i == 0 else "",
        )


def _external(nat: _Table, ch: dict[str, str], sets: EndpointSets, local_policy: bool) -> None:
    spn, ext = SERVICE_PORT_NAME, ch["ext"]
    if not local_policy:
        nat.add(
            ext,
            f"{_c(f'masquerade traffic for {spn} external destinations')} -j KUBE-MARK-MASQ",
            "K1: Cluster marks for masquerade BEFORE an endpoint is chosen, local or not",
        )
        nat.add(ext, f"-j {ch['svc']}")
        return
    nat.add(
        ext,
        f"-s {CLUSTER_CIDR} {_c(f'pod traffic for {spn} external destinations')} -j {ch['svc']}",
        "K2a: a pod calling the VIP gets Cluster semantics, without masquerade",
    )
    nat.add(
        ext,
        f"{_c(f'masquerade LOCAL traffic for {spn} external destinations')} "
        "-m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
        "K2b: the node itself is masqueraded and sent to the cluster chain",
    )
    nat.add(
        ext,
        f"{_c(f'route LOCAL traffic for {spn} external destinations')} "
        f"-m addrtype --src-type LOCAL -j {ch['svc']}",
    )
    if sets.local:
        nat.add(ext, f"-j {ch['svl']}", "K2, K3: the rest keep the client IP, local pods only")


def _nat_service(nat: _Table, sets: EndpointSets, local_policy: bool) -> None:
    spn, ch = SERVICE_PORT_NAME, service_chains()
    if sets.has_any:
        nat.add(
            "KUBE-SERVICES",
            f"-d {CLUSTER_IP}/32 -p tcp {_c(spn + ' cluster IP')} -m tcp --dport {VIP_PORT} "
            f"-j {ch['svc']}",
        )
        nat.add(
            "KUBE-SERVICES",
            f"-d {VIP}/32 -p tcp {_c(spn + ' loadbalancer IP')} -m tcp --dport {VIP_PORT} "
            f"-j {ch['ext']}",
            "K1, K8: the MetalLB VIP, from outside and from pods or the node itself",
        )
        nat.add(
            "KUBE-NODEPORTS",
            f"-p tcp {_c(spn)} -m tcp --dport {NODE_PORT} -j {ch['ext']}",
            "K7: the NodePort on every node address, same external chain as the VIP",
        )
        nat.add(
            ch["svc"],
            f"! -s {CLUSTER_CIDR} -d {CLUSTER_IP}/32 -p tcp {_c(spn + ' cluster IP')} -m tcp "
            f"--dport {VIP_PORT} -j KUBE-MARK-MASQ",
            "off-cluster sources reaching the ClusterIP are masqueraded",
        )
        _external(nat, ch, sets, local_policy)
        _balance(nat, ch["svc"], sets.cluster, "K12, K14: cluster-wide endpoints, uniform choice")
        if sets.local:
            _balance(nat, ch["svl"], sets.local, "K2, K12, K14: this node's endpoints only")
        for ep in sets.reachable:
            sep = endpoint_chain(ep.address)
            nat.add(
                sep,
                f"-s {ep.ip}/32 {_c(spn)} -j KUBE-MARK-MASQ",
                f"{ep.pod} on {ep.node}: hairpin traffic from the pod to itself is masqueraded",
            )
            nat.add(sep, f"-p tcp {_c(spn)} -m tcp -j DNAT --to-destination {ep.address}")
    nat.add(
        "KUBE-SERVICES",
        f"{_c('kubernetes service nodeports; NOTE: this must be the last rule in this chain')} "
        "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS",
    )


def _header(scenario: Scenario, node: str, endpoints: Sequence[Endpoint]) -> list[str]:
    policy = scenario.external_traffic_policy
    eps = ", ".join(
        f"{ep.pod}={ep.ip}@{ep.node}"
        + ("" if ep.ready else " (terminating)" if ep.terminating else " (not ready)")
        for ep in endpoints
    )
    return [
        f"# kube-proxy (iptables mode) rules on {node} for Service {SERVICE_PORT_NAME},",
        f"# externalTrafficPolicy: {policy}, srcip-lab scenario {scenario.name!r}.",
        f"# Endpoints: {eps or '(none)'}.",
        "# The same layout kube-proxy 1.28+ writes (pkg/proxy/iptables/proxier.go), in",
        "# iptables-save order. Compare with a node (other Services' rules show up as extra",
        "# lines there; drop '#' lines and counters on both sides):",
        "#   iptables-save -t filter > node.txt; iptables-save -t nat >> node.txt",
        "#   diff <(grep -v '^#' iptables-save.txt) \\",
        "#        <(grep -v '^#' node.txt | sed 's/\\[[0-9]*:[0-9]*\\]/[0:0]/')",
        "# Apply in a network namespace: ip netns exec NS iptables-restore < iptables-save.txt",
    ]


def iptables_save(
    scenario: Scenario, node: str, endpoints: Sequence[Endpoint] | None = None
) -> str:
    """The ``iptables-save`` text (filter and nat) kube-proxy writes on ``node``.

    Args:
        scenario: gives the traffic policy (and, with ``endpoints=None``, the pods).
        node: the node name (``node-1`` ...), which decides which endpoints are local.
        endpoints: the gateway's EndpointSlice; ``None`` = :func:`initial_endpoints`. Endpoint
            selection follows K12, so a caller can re-render after pods change.

    Raises:
        ValueError: ``node`` is not a node of the scenario.
    """
    if node not in scenario.node_names:
        raise ValueError(f"node: unknown node {node!r}; allowed: {', '.join(scenario.node_names)}")
    eps = initial_endpoints(scenario) if endpoints is None else list(endpoints)
    local_policy = scenario.external_traffic_policy == "Local"
    sets = categorize(eps, node, local_policy=local_policy)
    flt = _Table("filter", ("INPUT", "FORWARD", "OUTPUT"))
    nat = _Table("nat", ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"))
    _jumps(flt, nat)
    _fixed(flt, nat)
    _filter_service(flt, sets, local_policy)
    _nat_service(nat, sets, local_policy)
    lines = [*_header(scenario, node, eps), *flt.render(), *nat.render()]
    return "\n".join(lines) + "\n"
