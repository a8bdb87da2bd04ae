"""The HAProxy part of :mod:`sim.config.infer`: which backend, and the HAProxyConfig fields.

Real component: HAProxy 2.x as :mod:`sim.config.haproxy_model` reads it. The servers decide
``backend``: at the Service's VIP and port, ``"vip"``; at its NodePort or the nodes' addresses,
``"nodeports"`` (FACTS section E, K7). The first server's options (``default-server``
included) give the PROXY and check settings (H1, H2, H5, H10); every server must agree on PROXY
and ``check``, since the model has one setting for all of them.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from sim.addresses import HAPROXY_IP, HAPROXY_PORT
from sim.config.findings import Assumed, ExplainError, Inferred, Where
from sim.config.haproxy_model import HAProxySetup, modelled_v2_options, parse_time
from sim.config.k8s_model import ClusterView

if TYPE_CHECKING:
    from sim.config.infer import Inference

__all__ = ["infer_haproxy", "user_vip"]


def _first_ip(text: str) -> str:
    first = text.split("-")[0].strip()
    try:
        net = ipaddress.ip_network(first, strict=False)
    except ValueError:
        return first
    return str(net.network_address)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def user_vip(view: ClusterView) -> str | None:
    if view.vip is not None:
        return str(view.vip.value)
    return _first_ip(str(view.pool_vip.value)) if view.pool_vip is not None else None


def _backend(inf: Inference, setup: HAProxySetup) -> str:
    view = inf.view
    vip, port = user_vip(view), view.service_port.value if view.service_port else None
    node_port = view.node_port.value if view.node_port else None
    node_ips = {ip for _name, ip, _w in view.nodes if ip}
    kinds = set()
    bind_port = setup.bind[1] if setup.bind else None
    for server in setup.servers:
        target = server.port or bind_port
        if vip is not None and server.host == vip and target in (port, *view.service_ports):
            kinds.add("vip")
        elif target in (node_port, *view.node_ports) or server.host in node_ips:
            kinds.add("nodeports")
        elif not _is_ip(server.host) and target in (port, *view.service_ports):
            kinds.add("vip")
            inf.assumed.append(
                Assumed(
                    "haproxy.backend",
                    "vip",
                    f"server {server.name} names {server.host}: assumed to resolve to the VIP",
                )
            )
        elif view.service is None and vip is None:
            kinds.add("vip" if len(setup.servers) == 1 and server.count == 1 else "nodeports")
        else:
            raise ExplainError(
                server.where.file,
                server.where.line,
                f"server {server.name} {server.host}:{target} is neither the Service's VIP "
                f"({vip}:{port}) nor its NodePort ({node_port}) on a node",
            )
    if len(kinds) > 1:
        first = setup.servers[0].where
        raise ExplainError(
            first.file, first.line, "a backend mixing the VIP and NodePorts is not modelled"
        )
    return kinds.pop()


def _line(directive: Any, fallback: Where) -> Where:
    return Where(directive.file, directive.line) if directive is not None else fallback


def _uniform(setup: HAProxySetup) -> None:
    first = setup.first
    for server in setup.servers[1:]:
        for flag in ("check", "send-proxy", "send-proxy-v2", "send-proxy-v2-ssl"):
            if (flag in server.options) != (flag in first.options):
                raise ExplainError(
                    server.where.file,
                    server.where.line,
                    f"servers differ in {flag!r}: srcip-lab models one setting for every server",
                )


def _haproxy_fields(setup: HAProxySetup, backend: str) -> dict[str, Any]:
    _uniform(setup)
    first = setup.first
    opts = first.options
    send = "v1" if "send-proxy" in opts else None
    if any(k.startswith("send-proxy-v2") for k in opts):
        send = "v2"
    if send is not None and setup.mode == "http":
        raise ExplainError(
            first.where.file, first.where.line, "send-proxy with mode http is not modelled (H7)"
        )
    kept, _dropped = modelled_v2_options(first)
    out: dict[str, Any] = {
        "mode": setup.mode,
        "send_proxy": send,
        "backend": backend,
        "check": "check" in opts,
        "proxy_v2_options": kept if send == "v2" else (),
    }
    if setup.mode == "http":
        out["forwardfor"] = setup.forwardfor is not None
    for key, name in (
        ("inter", "inter_s"),
        ("fastinter", "fastinter_s"),
        ("downinter", "downinter_s"),
    ):
        if key in opts:
            out[name] = parse_time(opts[key], first.where)
    for key in ("fall", "rise"):
        if key in opts:
            if not opts[key].isdigit():
                raise ExplainError(
                    first.where.file, first.where.line, f"{key}: expected a whole number"
                )
            out[key] = int(opts[key])
    for line, name in (
        (setup.timeout_connect, "timeout_connect_s"),
        (setup.timeout_check, "timeout_check_s"),
    ):
        if line is not None:
            out[name] = parse_time(line.words[-1], line)
    return out


def _provenance(inf: Inference, setup: HAProxySetup, out: dict[str, Any]) -> None:
    first = setup.first
    w = Where(first.where.file, first.where.line)
    places = {
        "mode": (
            setup.mode_where,
            f"`mode {setup.mode}`" if setup.mode_where else "HAProxy's default mode tcp",
        ),
        "backend": (
            Where(setup.backend.file, setup.backend.line),
            f"where backend {setup.backend.name!r}'s servers point",
        ),
        "forwardfor": (_line(setup.forwardfor, w), "`option forwardfor` (H7)"),
        "timeout_connect_s": (_line(setup.timeout_connect, w), "`timeout connect` (H10)"),
        "timeout_check_s": (_line(setup.timeout_check, w), "`timeout check` (H10)"),
    }
    for key, value in out.items():
        where, why = places.get(key, (w, f"server {first.name!r} options (H1, H2, H5)"))
        where = where or w
        inf.inferred.append(Inferred(f"haproxy.{key}", value, where.file, where.line, why))
    for key, name, default in (("inter", "inter_s", 2.0), ("fall", "fall", 3), ("rise", "rise", 2)):
        if key not in first.options and out["check"]:
            inf.assumed.append(
                Assumed(f"haproxy.{name}", default, "not set: HAProxy's default (H5)")
            )
    if setup.timeout_connect is None:
        inf.assumed.append(
            Assumed(
                "haproxy.timeout_connect_s",
                5.0,
                "no `timeout connect` (HAProxy warns and waits forever): the model's 5 s",
            )
        )


def infer_haproxy(inf: Inference) -> str | None:
    from sim.net.haproxy import HAProxyConfig

    setup = inf.haproxy
    if setup is None:
        inf.fields["haproxy"] = None
        inf.assumed.append(
            Assumed("haproxy", None, "no haproxy.cfg: clients reach the VIP directly")
        )
        return None
    backend = _backend(inf, setup)
    inf.backend_where = Where(setup.backend.file, setup.backend.line)
    fields = _haproxy_fields(setup, backend)
    _provenance(inf, setup, fields)
    inf.fields["haproxy"] = HAProxyConfig(**fields)
    if setup.bind is not None:
        inf.address(
            "HAProxy frontend",
            f"{HAPROXY_IP}:{HAPROXY_PORT}",
            f"{'*' if setup.bind[0] == '0.0.0.0' else setup.bind[0]}:{setup.bind[1]}",
        )
    return backend
