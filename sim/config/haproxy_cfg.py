"""The ``haproxy.cfg`` that implements a scenario's :class:`~sim.HAProxyConfig`.

Real component: HAProxy 2.2+ (checked with Debian's 2.6 by ``haproxy -c -f``,
tests/test_config_haproxy.py). One frontend on ``HAPROXY_IP:HAPROXY_PORT`` and one backend whose
servers are the MetalLB VIP or every node's NodePort, in ``mode tcp`` (with ``send-proxy`` /
``send-proxy-v2`` and ``proxy-v2-options``) or ``mode http`` with ``option forwardfor``. The file
runs in the foreground (no ``daemon``; ``haproxy -f haproxy.cfg -db``) and logs to stdout, as the
real-kernel lab runs it inside a network namespace.

Facts relied on: H1, H2 (PROXY header and its TLVs), H4 (no PROXY on checks with an explicit
``port``), H5 (``check inter fall rise``; a plain check is a TCP connect), H7 (``mode http`` +
``option forwardfor``), H10 (check timing: ``timeout connect``, ``timeout check``, ``fastinter``,
``downinter``), K10 and K11 (``option httpchk GET /healthz`` on the ``healthCheckNodePort`` under
``Local``), K7 (NodePorts on every node), section E (HAProxy to every node's NodePort).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.addresses import HAPROXY_IP, HAPROXY_PORT, node_ip
from sim.config.cluster import HEALTH_CHECK_NODE_PORT, NODE_PORT, VIP, VIP_PORT

if TYPE_CHECKING:
    from sim.net.haproxy import HAProxyConfig
    from sim.scenario import Scenario

__all__ = ["BACKEND", "FRONTEND", "haproxy_cfg", "haproxy_time"]

FRONTEND = "fe_gateway"
"""Name of the generated frontend."""
BACKEND = "be_gateway"
"""Name of the generated backend."""


def haproxy_time(seconds: float) -> str:
    """A duration as HAProxy writes it: ``2s``, ``500ms`` or ``1500us`` (whole units only)."""
    us = round(seconds * 1_000_000)
    if us % 1_000_000 == 0:
        return f"{us // 1_000_000}s"
    if us % 1000 == 0:
        return f"{us // 1000}ms"
    return f"{us}us"


def _server_options(cfg: HAProxyConfig, *, check_port: int | None) -> str:
    words: list[str] = []
    if cfg.check:
        words.append("check")
        if check_port is not None:
            words += ["port", str(check_port)]
        words += ["inter", haproxy_time(cfg.inter_s), "fall", str(cfg.fall), "rise", str(cfg.rise)]
        if cfg.fastinter_s is not None:
            words += ["fastinter", haproxy_time(cfg.fastinter_s)]
        if cfg.downinter_s is not None:
            words += ["downinter", haproxy_time(cfg.downinter_s)]
    if cfg.send_proxy == "v1":
        words.append("send-proxy")
    elif cfg.send_proxy == "v2":
        words.append("send-proxy-v2")
        if cfg.proxy_v2_options:
            words += ["proxy-v2-options", ",".join(cfg.proxy_v2_options)]
    return " ".join(words)


def _global(stats_socket: str | None) -> list[str]:
    lines = [
        "global",
        "    # No `daemon`: run in the foreground (haproxy -f haproxy.cfg -db), log to stdout.",
        "    log stdout format raw local0 info",
    ]
    if stats_socket is not None:
        lines.append(f"    stats socket {stats_socket} mode 600 level admin")
    return lines


def _defaults(cfg: HAProxyConfig) -> list[str]:
    lines = ["", "defaults"]
    if cfg.mode == "http":
        lines += [
            "    # H7: mode http parses every request; the client IP can travel only in a header.",
            "    mode http",
            "    option httplog",
        ]
    else:
        lines += [
            "    # H7: mode tcp relays bytes; the client IP can travel only in a PROXY header.",
            "    mode tcp",
            "    option tcplog",
        ]
    lines += [
        "    log global",
        "    # H10: a check against a server that does not answer waits for these timeouts.",
        f"    timeout connect {haproxy_time(cfg.timeout_connect_s)}",
    ]
    if cfg.timeout_check_s is not None:
        lines.append(f"    timeout check {haproxy_time(cfg.timeout_check_s)}")
    lines += ["    timeout client 30s", "    timeout server 30s"]
    return lines


def _backend(scenario: Scenario, cfg: HAProxyConfig) -> list[str]:
    lines = ["", f"backend {BACKEND}"]
    if cfg.mode == "http" and cfg.forwardfor:
        lines += [
            "    # H7: append `x-forwarded-for: <client>` (a client-sent one is kept in front);",
            "    # the gateway trusts it only with numTrustedProxies: 1 (I4, E9).",
            "    option forwardfor",
        ]
    check = "# H5: `check` alone is a TCP connect: it passes even when the gateway rejects\n"
    check += "    # every request (E5, E6)."
    if cfg.backend == "vip":
        lines += [
            "    # One server, the MetalLB VIP: MetalLB's announcer decides which node gets it.",
        ]
        if cfg.check:
            lines.append(f"    {check}")
        if cfg.send_proxy:
            lines.append(f"    # H1: the PROXY {cfg.send_proxy} header carries the client address.")
            if cfg.send_proxy == "v2":
                lines.append("    # H4: its checks send a 16-byte v2 LOCAL header.")
        options = _server_options(cfg, check_port=None)
        lines.append(f"    server vip {VIP}:{VIP_PORT} {options}".rstrip())
        return lines
    local = scenario.external_traffic_policy == "Local"
    lines += [
        "    # Section E: every node's NodePort, MetalLB bypassed (K7).",
        "    balance roundrobin",
    ]
    if local and cfg.check:
        lines += [
            "    # K10, K11: ask kube-proxy's health server on the healthCheckNodePort: 200",
            "    # only on nodes with a Ready gateway pod. H4: the explicit `port` keeps PROXY",
            "    # off the checks (that server does not speak it).",
            "    option httpchk GET /healthz",
        ]
    elif cfg.check:
        lines.append(f"    {check}")
    port = HEALTH_CHECK_NODE_PORT if local else None
    for i, name in enumerate(scenario.node_names):
        options = _server_options(cfg, check_port=port)
        lines.append(f"    server {name} {node_ip(i)}:{NODE_PORT} {options}".rstrip())
    return lines


def haproxy_cfg(scenario: Scenario, *, stats_socket: str | None = None) -> str:
    """A complete ``haproxy.cfg`` for ``scenario.haproxy`` (accepted by ``haproxy -c -f``).

    Args:
        scenario: a scenario with ``haproxy`` set.
        stats_socket: path of an admin stats socket to add to ``global``; ``None`` (default)
            writes none.

    Raises:
        ValueError: the scenario has no HAProxy (``haproxy=None``).
    """
    cfg = scenario.haproxy
    if cfg is None:
        raise ValueError("haproxy: the scenario has no HAProxy (haproxy=None): no haproxy.cfg")
    head = [
        f"# haproxy.cfg for srcip-lab scenario {scenario.name!r}, written by `srcip-lab config`.",
        "# Check it with: haproxy -c -f haproxy.cfg",
    ]
    frontend = ["", f"frontend {FRONTEND}"]
    if cfg.send_proxy:
        frontend.append("    # H1: this address:port is the destination of every PROXY header.")
    frontend += [f"    bind {HAPROXY_IP}:{HAPROXY_PORT}", f"    default_backend {BACKEND}"]
    lines = [*head, *_global(stats_socket), *_defaults(cfg), *frontend, *_backend(scenario, cfg)]
    return "\n".join(lines) + "\n"
