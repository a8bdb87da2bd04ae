"""The app pod's Istio sidecar (Envoy inbound listener) and what the app itself sees.

Real component modelled: the ``istio-proxy`` container's inbound HTTP listener in front of the
application (sidecar mode), receiving the request the ingress gateway forwarded.

Facts relied on (``FACTS.md``):

* I1: sidecar inbound listeners have ``use_remote_address: false`` and ``xff_num_trusted_hops``
  0, so the sidecar passes ``X-Forwarded-For`` through unchanged.
* E9: with ``use_remote_address=false, N=0`` the trusted client address, stored as the downstream
  remote address (``%DOWNSTREAM_REMOTE_ADDRESS%``), is the **last** XFF entry (port 0) when XFF
  holds one; otherwise the real peer, i.e. the gateway pod (or an in-cluster caller).
* I7: the sidecar access log prints ``%REQ(X-FORWARDED-FOR)%`` and the downstream remote address.
* I8: the application's own socket peer is the sidecar's passthrough bind address
  ``127.0.0.6``, never the client: the app must read XFF or ``x-envoy-external-address``.

Left out: mTLS between gateway and sidecar (it does not change addresses), inbound
``x-forwarded-client-cert`` handling, and the app's response.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.addresses import ephemeral_port
from sim.net.gateway import trusted_from_xff
from sim.net.http import HTTPRequestError, parse_request_head
from sim.path import Action, Flow, Packet, Step, new_packet

__all__ = ["APP_SOCKET_PEER_IP", "Sidecar", "SidecarResult"]

#: The app container's socket peer: Istio's InboundPassthroughBindIpv4 (I8).
APP_SOCKET_PEER_IP = "127.0.0.6"


@dataclass(frozen=True, slots=True)
class SidecarResult:
    """What the sidecar saw: ``remote_ip``/``remote_port`` = its downstream remote address (E9;
    port 0 when taken from XFF), ``xff`` = the ``X-Forwarded-For`` it received (``""`` if none),
    ``app_peer_ip`` = the app's socket peer (I8)."""

    remote_ip: str
    xff: str
    remote_port: int = 0
    app_peer_ip: str = APP_SOCKET_PEER_IP


class Sidecar:
    """One app pod's sidecar inbound listener (``use_remote_address=false``, N=0; I1)."""

    def __init__(self, *, pod: str = "", pod_ip: str = "") -> None:
        self.pod = pod
        self.pod_ip = pod_ip
        # handle() is a pure function of (request bytes, peer): forward() memoises it, since the
        # gateway's output repeats per client and a run sends millions of requests.
        self._memo: dict[tuple[bytes, str], SidecarResult] = {}

    def forward(self, packet: Packet, flow: Flow) -> Packet:
        """The gateway's request reaches the app pod: the sidecar hands it to the application.

        Sets ``flow.xff_at_app`` and ``flow.app_remote_ip`` (E9, I1); the last leg is from the
        sidecar's passthrough address to the application (I8).
        """
        key = (packet.data, packet.src_ip)
        side = self._memo.get(key)
        if side is None:
            if len(self._memo) >= 65536:
                self._memo.clear()
            side = self._memo[key] = self.handle(packet.data, peer_ip=packet.src_ip)
        flow.xff_at_app, flow.app_remote_ip = side.xff, side.remote_ip
        out = new_packet(
            (
                side.app_peer_ip,
                ephemeral_port(flow.conn_id, 1),
                "127.0.0.1",
                packet.dst_port,
                packet.data,
            )
        )
        if flow.hops is not None:
            dra = f"DRA = {side.remote_ip}:{side.remote_port} (last XFF entry, E9, I1)"
            app = f"the app's socket peer is {side.app_peer_ip} (I8)"
            flow.hop(
                "app sidecar (istio-proxy)",
                out,
                Step(Action.ACCEPTED, dra),
                Step(Action.DELIVERED, app),
            )
        return out

    def handle(self, request: bytes, *, peer_ip: str, peer_port: int = 0) -> SidecarResult:
        """Process the request forwarded by ``peer_ip:peer_port`` (the gateway pod).

        Raises :class:`~sim.net.http.HTTPRequestError` if ``request`` is not a complete, valid
        request head (the real sidecar would answer 400; the gateway never forwards such bytes).
        """
        head = parse_request_head(request)
        if head is None:
            raise HTTPRequestError("sidecar: request head is incomplete", offset=len(request))
        # Several XFF lines are one list; Envoy's header map joins them with "," (see gateway).
        xff = ",".join(value for name, value in head.headers if name == "x-forwarded-for")
        last = trusted_from_xff(xff, 1)  # E9: use_remote_address=false, N=0 -> last entry
        if last is not None:
            return SidecarResult(last, xff, 0)
        return SidecarResult(peer_ip, xff, peer_port)
