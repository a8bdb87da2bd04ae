"""The known pitfalls a user's files walk into, each with its fact ID and the line to fix.

Each rule reads the implied :class:`~sim.Scenario` and where its settings came from
(:class:`~sim.config.infer.Inference`) and says what goes wrong and why, the way the threads in
``FACTS.md`` section G describe it:

* E6: PROXY sent, but the gateway has no listener filter: every request answered 400.
* E5, K8: the filter is required, but some callers never carry a header: clients that reach the
  VIP or a NodePort directly, in-cluster callers short-circuited by kube-proxy.
* I5: ``numTrustedProxies > 0`` behind a TCP/PROXY hop: client XFF becomes trusted (spoofable);
  I4: ``mode http`` + ``forwardfor`` with ``numTrustedProxies: 0`` ignores HAProxy's XFF.
* I2, H9: ``tls_inspector`` listed before ``proxy_protocol``.
* H5: TCP checks that pass while every client fails.
* M16: ``Local`` behind an endpoint-blind announcer; K7: ``Local`` on a NodePort Service.
* H4: ``send-proxy-v2`` with an explicit check ``port`` (no PROXY on checks).
* C1: CrossSubnet versus Always: which address Cluster's SNAT shows.
* I11: the EnvoyFilter and ``gatewayTopology.proxyProtocol`` at once; I10: EnvoyFilters that do
  not reach the gateway; K10, K11: HAProxy's NodePort checks that do not match the policy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.config.findings import Pitfall, Where

if TYPE_CHECKING:
    from sim.config.infer import Inference
    from sim.scenario import Scenario

__all__ = ["find_pitfalls"]


def _at(where: Where | None, fact: str, message: str, level: str = "warning") -> Pitfall:
    w = where or Where("", 0)
    return Pitfall(fact, message, w.file, w.line, level)


def _proxy_rules(sc: Scenario, inf: Inference) -> list[Pitfall]:
    out: list[Pitfall] = []
    hap, setup = sc.haproxy, inf.haproxy
    server = setup.first.where if setup is not None else None
    server_at = Where(server.file, server.line) if server is not None else None
    tcp_check = hap is not None and hap.check and (setup is None or setup.httpchk is None)
    if hap is not None and hap.send_proxy and not sc.gateway_proxy_protocol:
        out.append(
            _at(
                server_at,
                "E6",
                f"HAProxy sends a PROXY {hap.send_proxy} header but the "
                "gateway has no proxy_protocol listener filter: the header is read as "
                "HTTP and every request gets 400 Bad Request",
            )
        )
        if tcp_check:
            out.append(
                _at(
                    server_at,
                    "H5",
                    "HAProxy's TCP check only connects, so it passes "
                    "and keeps the server UP while every client gets 400",
                )
            )
    if sc.gateway_proxy_protocol:
        out += _filter_rules(sc, inf, server_at, tcp_check)
    return out


def _filter_rules(
    sc: Scenario, inf: Inference, server_at: Where | None, tcp_check: bool
) -> list[Pitfall]:
    out: list[Pitfall] = []
    hap, filters = sc.haproxy, inf.view.filters
    pp = filters.proxy_protocol
    if hap is None:
        out.append(
            _at(
                pp,
                "E5",
                "the gateway requires a PROXY header but no HAProxy is in "
                "front: every client connects without one and is reset before HTTP",
            )
        )
    elif not hap.send_proxy:
        out.append(
            _at(
                pp,
                "E5",
                f"the gateway requires a PROXY header but HAProxy (mode "
                f"{hap.mode}) sends none: every request is reset before HTTP",
            )
        )
        if tcp_check:
            out.append(
                _at(
                    server_at,
                    "H5",
                    "HAProxy's TCP check only connects, so it passes while every client is reset",
                )
            )
    else:
        out.append(
            _at(
                pp,
                "K8",
                "the gateway requires a PROXY header (E5): pods and nodes "
                "calling the VIP are short-circuited by kube-proxy on their own node and "
                "never carry one, nor do clients that reach the VIP or a NodePort "
                "without HAProxy: all of them are reset before HTTP",
            )
        )
    if filters.envoyfilter and filters.topology_pp is not None:
        out.append(
            _at(
                filters.topology_pp,
                "I11",
                "both the EnvoyFilter and "
                "gatewayTopology.proxyProtocol add a proxy_protocol filter: the "
                "listener then expects two headers; keep only one",
            )
        )
    if filters.tls_first is not None:
        out.append(
            _at(
                filters.tls_first,
                "I2",
                "tls_inspector is listed before "
                "proxy_protocol: it reads the PROXY bytes as a TLS ClientHello (H9); "
                "list proxy_protocol first",
            )
        )
    return out


def _trust_rules(sc: Scenario, inf: Inference) -> list[Pitfall]:
    out: list[Pitfall] = []
    hap, trusted = sc.haproxy, inf.view.filters.trusted
    where = trusted.where if trusted is not None else None
    l4 = hap is None or hap.mode == "tcp"
    if sc.num_trusted_proxies > 0 and l4:
        out.append(
            _at(
                where,
                "I5",
                f"numTrustedProxies: {sc.num_trusted_proxies} behind a "
                "TCP/PROXY hop: nothing in front appends X-Forwarded-For, so a header the "
                "client sends itself becomes the trusted client address (spoofable); "
                "keep 0",
            )
        )
    if hap is not None and hap.mode == "http" and hap.forwardfor and sc.num_trusted_proxies == 0:
        out.append(
            _at(
                where,
                "I4",
                "HAProxy appends X-Forwarded-For but the gateway trusts 0 "
                "proxies: it ignores the header and takes its peer (the SNAT or HAProxy "
                "address) as the client; set numTrustedProxies: 1 (E9)",
            )
        )
    return out


def _check_rules(sc: Scenario, inf: Inference) -> list[Pitfall]:
    out: list[Pitfall] = []
    hap, setup, view = sc.haproxy, inf.haproxy, inf.view
    if hap is None or setup is None or not hap.check:
        return out
    first = setup.first
    where = Where(first.where.file, first.where.line)
    port = first.options.get("port")
    health = str(view.health_port.value) if view.health_port else "30081"
    if hap.send_proxy == "v2" and port is not None:
        if port == health:
            out.append(
                _at(
                    where,
                    "H4",
                    f"the explicit check port {port} keeps the PROXY header "
                    "off the checks: right for kube-proxy's health server, which does "
                    "not speak it",
                    "note",
                )
            )
        else:
            out.append(
                _at(
                    where,
                    "H4",
                    f"checks to the explicit port {port} carry no PROXY "
                    "header: a gateway that requires one resets them and HAProxy marks "
                    "the server DOWN (the verdict assumes checks with the header)",
                )
            )
    if hap.backend == "nodeports":
        local = sc.external_traffic_policy == "Local"
        ok = setup.httpchk is not None and port == health
        if local and not ok:
            out.append(
                _at(
                    where,
                    "K11",
                    "Local behind HAProxy's NodePort servers needs "
                    f"`option httpchk GET /healthz` with `check port {health}`: only "
                    "nodes with a Ready gateway pod answer 200; the verdict assumes it",
                )
            )
        if not local and port == health:
            out.append(
                _at(
                    where,
                    "K10",
                    f"checks on port {port}, but a Cluster Service has no "
                    "healthCheckNodePort: every check fails and HAProxy has no server",
                )
            )
    return out


def _placement_rules(sc: Scenario, inf: Inference) -> list[Pitfall]:
    out: list[Pitfall] = []
    view = inf.view
    announcer = view.announcer.where if view.announcer is not None else None
    if sc.announcer == "naive" and sc.external_traffic_policy == "Local":
        out.append(
            _at(
                announcer,
                "M16",
                "Local behind an endpoint-blind announcer: it may "
                "announce the VIP from a node without a gateway pod, which then DROPs "
                "every connection (K6)",
            )
        )
    if sc.client_target == "nodeport" and sc.external_traffic_policy == "Local":
        where = view.policy.where if view.policy is not None else None
        out.append(
            _at(
                where,
                "K7",
                "Local on a NodePort Service: a client that picks a node "
                "without a gateway pod is dropped (K6); only the nodes in "
                f"{', '.join(sorted(set(sc.gateway_nodes))) or 'none'} answer",
            )
        )
    snat_seen = sc.haproxy is None or not sc.haproxy.send_proxy
    if sc.external_traffic_policy == "Cluster" and snat_seen and not sc.gateway_proxy_protocol:
        where = view.encapsulation.where if view.encapsulation is not None else None
        if sc.encapsulation in ("VXLAN", "IPIP"):
            msg = (
                f"{sc.encapsulation} (Always): Cluster's SNAT shows the ingress node's tunnel "
                "IP (172.x) for pods on other nodes and the node IP for its own (N3)"
            )
        else:
            msg = (
                f"{sc.encapsulation}: pod traffic between nodes of one subnet leaves through "
                "the NIC, so Cluster's SNAT shows node IPs, not the 172.x tunnel IP"
            )
        out.append(_at(where, "C1", msg, "note"))
    unmet = sc.haproxy is not None and sc.haproxy.send_proxy and not sc.gateway_proxy_protocol
    for why, where in view.filters.not_applied:
        out.append(
            _at(where, "I10", f"not applied to the gateway: {why}", "warning" if unmet else "note")
        )
    return out


def find_pitfalls(sc: Scenario, inf: Inference) -> list[Pitfall]:
    """Every pitfall rule's findings for the implied scenario, warnings before notes."""
    found = [
        *_proxy_rules(sc, inf),
        *_trust_rules(sc, inf),
        *_check_rules(sc, inf),
        *_placement_rules(sc, inf),
    ]
    return sorted(found, key=lambda p: p.level != "warning")
