"""Stop-gap configs for the lab until ``sim.config`` (issue 10) lands; then this file goes.

Same interface as issue 10's ``sim.config``: :class:`Endpoint`, :func:`initial_endpoints`,
:func:`iptables_save` and :func:`haproxy_cfg`. The rules follow kube-proxy's iptables layout
(``pkg/proxy/iptables/proxier.go``: K1, K2, K4, K6, K10, K17) for the one gateway Service; the
HAProxy configuration follows H1, H4, H5, H7. :mod:`sim.lab.kube_proxy` and
:mod:`sim.lab.haproxy` use ``sim.config`` as soon as it exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.addresses import (
    GATEWAY_PORT,
    HAPROXY_IP,
    HAPROXY_PORT,
    HEALTH_CHECK_NODE_PORT,
    NODE_PORT,
    VIP,
    VIP_PORT,
    node_ip,
    pod_ip,
)

__all__ = ["Endpoint", "haproxy_cfg", "initial_endpoints", "iptables_save"]

_SVC = "istio-system/istio-ingressgateway:http2"
_MASQ = "0x4000/0x4000"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One EndpointSlice entry of the gateway Service (K12, K18)."""

    pod: str
    ip: str
    node: str
    ready: bool = True
    serving: bool = True
    terminating: bool = False


def initial_endpoints(scenario: Any) -> list[Endpoint]:
    """The gateway pods at time 0, with the addresses the simulator hands out."""
    serial: dict[str, int] = {}
    out = []
    for pod, node in zip(scenario.pod_names, scenario.gateway_nodes, strict=True):
        index = int(node.split("-")[1]) - 1
        out.append(Endpoint(pod, pod_ip(index, serial.get(node, 0)), node))
        serial[node] = serial.get(node, 0) + 1
    return out


def _usable(endpoints: list[Endpoint]) -> list[Endpoint]:
    ready = [e for e in endpoints if e.ready]
    return ready or [e for e in endpoints if e.serving and e.terminating]  # K12


def iptables_save(scenario: Any, node: str, endpoints: list[Endpoint] | None = None) -> str:
    """kube-proxy's rules for the gateway Service on ``node`` (``iptables-save`` format)."""
    eps = initial_endpoints(scenario) if endpoints is None else list(endpoints)
    local_policy = scenario.external_traffic_policy == "Local"
    cluster = _usable(eps)
    local = _usable([e for e in eps if e.node == node])
    nat = [
        "-A PREROUTING -j KUBE-SERVICES",
        "-A OUTPUT -j KUBE-SERVICES",
        "-A POSTROUTING -j KUBE-POSTROUTING",
        f"-A KUBE-POSTROUTING -m mark ! --mark {_MASQ} -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
        "-A KUBE-POSTROUTING -j MASQUERADE --random-fully",  # K4, K17
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
    ]
    filt = [
        "-A INPUT -m conntrack --ctstate NEW -j KUBE-EXTERNAL-SERVICES",
        "-A INPUT -j KUBE-NODEPORTS",
        "-A FORWARD -m conntrack --ctstate NEW -j KUBE-EXTERNAL-SERVICES",
        "-A FORWARD -j KUBE-FORWARD",
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        f"-A KUBE-FORWARD -m mark --mark {_MASQ} -j ACCEPT",
        "-A KUBE-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    ]
    if local_policy:
        filt.append(f"-A KUBE-NODEPORTS -p tcp -m tcp --dport {HEALTH_CHECK_NODE_PORT} -j ACCEPT")
    chains = ["KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-MARK-MASQ", "KUBE-NODEPORTS"]
    if not cluster:
        target = "REJECT --reject-with icmp-port-unreachable"  # K6: no endpoints at all
        filt += _external_filter(target)
    else:
        if local_policy and not local:
            filt += _external_filter("DROP")  # K6: none on this node
        chains += ["KUBE-EXT-GW", "KUBE-SVC-GW"]
        nat += [
            f"-A KUBE-SERVICES -d {VIP}/32 -p tcp -m tcp --dport {VIP_PORT} -j KUBE-EXT-GW",
            f"-A KUBE-NODEPORTS -p tcp -m tcp --dport {NODE_PORT} -j KUBE-EXT-GW",
        ]
        if local_policy:  # K2
            chains.append("KUBE-SVL-GW")
            nat += [
                "-A KUBE-EXT-GW -s 172.16.0.0/16 -j KUBE-SVC-GW",
                "-A KUBE-EXT-GW -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
                "-A KUBE-EXT-GW -m addrtype --src-type LOCAL -j KUBE-SVC-GW",
                "-A KUBE-EXT-GW -j KUBE-SVL-GW",
            ]
            nat += _spread("KUBE-SVL-GW", local)
        else:  # K1: mark before the endpoint is chosen
            nat += ["-A KUBE-EXT-GW -j KUBE-MARK-MASQ", "-A KUBE-EXT-GW -j KUBE-SVC-GW"]
        nat += _spread("KUBE-SVC-GW", cluster)
        for e in {e.pod: e for e in cluster + local}.values():
            chains.append(f"KUBE-SEP-{e.pod.upper()}")
            nat += [
                f"-A KUBE-SEP-{e.pod.upper()} -s {e.ip}/32 -j KUBE-MARK-MASQ",
                f"-A KUBE-SEP-{e.pod.upper()} -p tcp -m tcp -j DNAT "
                f"--to-destination {e.ip}:{GATEWAY_PORT}",
            ]
    nat.append("-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    head_nat = ["*nat"] + [f":{c} ACCEPT [0:0]" for c in ("PREROUTING", "INPUT", "OUTPUT")]
    head_nat += [":POSTROUTING ACCEPT [0:0]"] + [f":{c} - [0:0]" for c in chains]
    head_f = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    head_f += [f":{c} - [0:0]" for c in ("KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD")]
    head_f.append(":KUBE-NODEPORTS - [0:0]")
    lines = [f"# kube-proxy rules for {_SVC} on {node} (interim)"]
    lines += head_f + filt + ["COMMIT"] + head_nat + nat + ["COMMIT"]
    return "\n".join(lines) + "\n"


def _external_filter(target: str) -> list[str]:
    return [
        f"-A KUBE-EXTERNAL-SERVICES -d {VIP}/32 -p tcp -m tcp --dport {VIP_PORT} -j {target}",
        "-A KUBE-EXTERNAL-SERVICES -m addrtype --dst-type LOCAL -p tcp -m tcp "
        f"--dport {NODE_PORT} -j {target}",
    ]


def _spread(chain: str, eps: list[Endpoint]) -> list[str]:
    """kube-proxy's uniform choice (K14): probability 1/(n-i) for the i-th of n endpoints."""
    out = []
    for i, e in enumerate(eps):
        left = len(eps) - i
        prob = "" if left == 1 else f"-m statistic --mode random --probability {1 / left:.11f} "
        out.append(f"-A {chain} {prob}-j KUBE-SEP-{e.pod.upper()}")
    return out


def haproxy_cfg(scenario: Any) -> str:
    """The external HAProxy's configuration (H1, H4, H5, H7, section E)."""
    hap = scenario.haproxy
    inter = f"inter {hap.inter_s * 1000:g}ms fall {hap.fall} rise {hap.rise}"
    proxy = {"v1": " send-proxy", "v2": " send-proxy-v2"}.get(hap.send_proxy or "", "")
    lines = [
        "global",
        "    log stderr format raw local0 info",
        "    nbthread 1",
        "defaults",
        f"    mode {hap.mode}",
        "    log global",
        f"    timeout connect {hap.timeout_connect_s * 1000:g}ms",
        "    timeout client 30s",
        "    timeout server 30s",
    ]
    if hap.timeout_check_s is not None:
        lines.append(f"    timeout check {hap.timeout_check_s * 1000:g}ms")
    if hap.mode == "http" and hap.forwardfor:
        lines.append("    option forwardfor")
    lines += ["frontend fe", f"    bind {HAPROXY_IP}:{HAPROXY_PORT}", "    default_backend be"]
    lines += ["backend be"]
    check = f" check {inter}" if hap.check else ""
    if hap.backend == "nodeports":
        local = scenario.external_traffic_policy == "Local"
        lines.append("    balance roundrobin")
        if local and hap.check:
            lines.append("    option httpchk GET /healthz")
            check += f" port {HEALTH_CHECK_NODE_PORT}"
        for i, name in enumerate(scenario.node_names):
            lines.append(f"    server {name} {node_ip(i)}:{NODE_PORT}{proxy}{check}")
    else:
        lines.append(f"    server vip {VIP}:{VIP_PORT}{proxy}{check}")
    return "\n".join(lines) + "\n"
