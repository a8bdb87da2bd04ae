"""The second half of a connection's path: kube-proxy's verdict delivered to the gateway pod,
the gateway, the sidecar, and the record of how the connection ended.

:class:`DataPlane` is a base class of :class:`sim.topology.Topology`, whose ``_connect`` decides
the first half (client, HAProxy, ARP or NodePort, the ingress node) and then calls
:meth:`DataPlane._deliver`. In-cluster callers (K8) start here too. The L7 elements it calls
(:class:`~sim.net.gateway.IngressGateway`, :class:`~sim.net.sidecar.Sidecar`) get real bytes,
so every PROXY header the gateway sees is decoded by :mod:`sim.proxy_protocol`.
"""

from __future__ import annotations

from typing import Any

import simpy

from sim.addresses import APP_POD_IP, VIP, VIP_PORT, caller_pod_ip
from sim.net.clients import Clients
from sim.net.haproxy import HAProxy
from sim.net.kube_proxy import FORWARD, KubeProxy
from sim.net.node import GatewayPod, Node
from sim.net.sidecar import Sidecar, SidecarResult
from sim.results import Recorder
from sim.scenario import Scenario
from sim.trace import GATEWAY_FAILURE_FACTS, HopList, ephemeral_port, gateway_rewrite, hop

__all__ = ["DataPlane"]


class DataPlane:
    """Delivery to the gateway and the app; :class:`~sim.topology.Topology` sets these up."""

    scenario: Scenario
    env: simpy.Environment
    rec: Recorder
    nodes: list[Node]
    names: list[str]
    pods: list[GatewayPod]
    kube_proxy: KubeProxy
    clients: Clients
    haproxy: HAProxy | None
    sidecar: Sidecar
    _sidecar_memo: dict[tuple[bytes, str], SidecarResult]
    _live: list[int]
    _u_caller: list[float]
    _u_endpoint: list[float]
    _caller_ports: list[int]
    _service: list[float]

    def _connect_in_cluster(self, k: int, t: float, hops: HopList | None) -> tuple[Any, ...]:
        # K8: kube-proxy on the caller's own node DNATs the VIP; no HAProxy, no ARP. The LB IP
        # rule jumps to the Service's EXT chain: with Cluster its first rule marks every packet
        # for masquerade, pod sources included (K1); with Local, pod sources go to the cluster
        # policy chain without the mark (K2a, K3).
        live = self._live
        caller = live[int(self._u_caller[k] * len(live))] if live else 0
        cip = caller_pod_ip(caller)
        cport = self._caller_ports[caller]
        self._caller_ports[caller] = cport + 1 if cport < 60999 else 32768
        name = self.names[caller]
        data = self.clients.request
        if hops is not None:
            hops.append(hop(f"caller pod on {name}", cip, cport, VIP, VIP_PORT, "", data))
        verdict, pod_index = self.kube_proxy.route_in_cluster(self._u_endpoint[k])
        if verdict != FORWARD:
            return self._fail(
                k, cip, cport, t, t, "refused", "reject_no_endpoints", "in_cluster", name
            )
        pod = self.pods[pod_index]
        if self.kube_proxy.local_policy:
            snat = ""
            peer_ip = cip
            what = "no SNAT for a pod source under Local (K2a, K3)"
        else:
            # K1: masqueraded like external traffic, to the caller node's egress device (N1-N3).
            peer_ip = snat = self.nodes[caller].masquerade_ip(pod.node)
            what = f"MASQUERADE to {snat} (Cluster marks pod sources too, K1, N3)"
        if hops is not None:
            hops.append(
                hop(
                    f"{name} kube-proxy",
                    peer_ip,
                    cport,
                    pod.ip,
                    8080,
                    f"DNAT VIP -> {pod.name} (short-circuit on the caller's node, K8); {what}",
                    data,
                )
            )
        return self._deliver(
            k, t, cip, cport, "in_cluster", name, pod, peer_ip, cport, snat, data, hops
        )

    def _deliver(
        self,
        k: int,
        t: float,
        cip: str,
        cport: int,
        path: str,
        entry: str,
        pod: GatewayPod,
        peer_ip: str,
        peer_port: int,
        snat: str,
        data: bytes,
        hops: HopList | None,
    ) -> tuple[Any, ...]:
        """The DNATed packet reaches the gateway pod's node; Envoy and the sidecar take over."""
        pod_node = self.names[pod.node]
        if not self.nodes[pod.node].up or not pod.running:
            reason = "dead_node" if not self.nodes[pod.node].up else "pod_gone"
            if hops is not None:
                hops.append(
                    hop(
                        f"{pod.name} on {pod_node}",
                        peer_ip,
                        peer_port,
                        pod.ip,
                        8080,
                        f"no answer ({reason}): the client times out",
                    )
                )
            return (
                k,
                cip,
                cport,
                t,
                t + self.scenario.client_timeout_s,
                "timeout",
                reason,
                path,
                entry,
                pod.name,
                pod_node,
                snat,
                "",
                "",
                "",
                "",
                "",
            )
        gw = pod.gateway.handle(data, peer_ip=peer_ip, peer_port=peer_port)
        if gw.outcome != "ok":
            outcome = gw.outcome
            if outcome == "reset" and path == "haproxy" and self._http_mode():
                outcome = "http_502"  # HAProxy answers an empty server reply with 502
            if hops is not None:
                hops.append(
                    hop(
                        f"{pod.name} istio-ingressgateway",
                        gw.client_ip,
                        gw.client_port,
                        pod.ip,
                        8080,
                        f"{gw.outcome}: {gw.reason} ({GATEWAY_FAILURE_FACTS[gw.reason]})",
                    )
                )
            return (
                k,
                cip,
                cport,
                t,
                t,
                outcome,
                gw.reason,
                path,
                entry,
                pod.name,
                pod_node,
                snat,
                peer_ip,
                gw.client_ip,
                "",
                "",
                "",
            )
        # The sidecar is a pure function of (request bytes, peer): memoise it. The gateway's
        # output repeats per client, so this saves a request parse per connection.
        key = (gw.upstream_request, pod.ip)
        side = self._sidecar_memo.get(key)
        if side is None:
            if len(self._sidecar_memo) >= 65536:
                self._sidecar_memo.clear()
            side = self._sidecar_memo[key] = self.sidecar.handle(
                gw.upstream_request, peer_ip=pod.ip
            )
        if hops is not None:
            hops.append(
                hop(
                    f"{pod.name} istio-ingressgateway",
                    pod.ip,
                    ephemeral_port(k),
                    APP_POD_IP,
                    8080,
                    gateway_rewrite(gw, peer_ip),
                    gw.upstream_request,
                )
            )
            hops.append(
                hop(
                    "app sidecar (istio-proxy)",
                    side.app_peer_ip,
                    ephemeral_port(k, 1),
                    "127.0.0.1",
                    8080,
                    f"DRA = {side.remote_ip}:{side.remote_port} (last XFF entry, E9, I1); "
                    "the app's socket peer is 127.0.0.6 (I8)",
                    gw.upstream_request,
                )
            )
        return (
            k,
            cip,
            cport,
            t,
            t + self._service[k],
            "ok",
            "",
            path,
            entry,
            pod.name,
            pod_node,
            snat,
            peer_ip,
            gw.client_ip,
            gw.external_address,
            side.xff,
            side.remote_ip,
        )

    def _http_mode(self) -> bool:
        return self.haproxy is not None and self.haproxy.config.mode == "http"

    def _fail(
        self,
        k: int,
        cip: str,
        cport: int,
        t: float,
        t_end: float,
        outcome: str,
        reason: str,
        path: str,
        entry: str,
    ) -> tuple[Any, ...]:
        return (
            k,
            cip,
            cport,
            t,
            t_end,
            outcome,
            reason,
            path,
            entry,
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
        )
