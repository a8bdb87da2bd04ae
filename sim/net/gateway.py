"""The Istio ingress gateway (Envoy) as it handles the first bytes of one connection.

Real component modelled: one ``istio-ingressgateway`` pod's Envoy, plaintext HTTP/1.1 gateway
listener, optionally with the ``envoy.filters.listener.proxy_protocol`` listener filter that
``gatewayTopology.proxyProtocol`` (or the seed's EnvoyFilter) adds, and the HTTP connection
manager Istio configures for gateways. Plain Python; the simulator calls :meth:`handle` once per
accepted connection.

Facts relied on (``FACTS.md``):

* E1: the filter takes source/destination from a v1 or v2 header and uses them as the remote
  (and local) address; a protocol error or an unsupported family closes the connection. Envoy's
  ``lenV2Address`` accepts only AF_INET/AF_INET6 for a v2 PROXY command, so v2 PROXY with
  UNSPEC or UNIX is closed here too; v1 ``PROXY UNKNOWN`` keeps the real peer (Envoy's v1 parser).
* E3: v2 LOCAL (HAProxy's health checks, H4) keeps the real peer address.
* E4/E5: with the filter on, bytes that are not a PROXY header (or an incomplete header that
  would wait out ``listener_filters_timeout``) close the connection before any HTTP processing:
  outcome ``reset``, no HTTP response, no access-log line.
* E6: without the filter, PROXY bytes are read as HTTP and fail: ``400 Bad Request``.
* I1, E8, E9: gateway listeners have ``use_remote_address: true`` and
  ``xff_num_trusted_hops = numTrustedProxies``. The trusted client address is the connection's
  remote address for N=0, else the N-th entry from the right of the *incoming* XFF (fallback to
  the remote address if there are fewer entries or the entry is not an IP). Envoy then appends
  the connection's remote address (after PROXY) to XFF; the HCM's downstream remote address
  (``%DOWNSTREAM_REMOTE_ADDRESS%``, E7) is the trusted client address, port 0 when it came from
  XFF. Several incoming XFF lines are combined, and the new entry appended, with a bare ``","``
  as Envoy's ``HeaderMapImpl::appendToHeader`` and ``Utility::appendXff`` do (Istio's own docs
  show ``98.1.2.3,10.244.0.1``), so ``xff_out`` is e.g. ``"10.0.1.7,172.16.1.0"``.
* E10, I4: ``x-envoy-external-address`` = the trusted client address, for external requests.
  Simplification: every request is treated as external, which is Envoy's behaviour from 1.33 on
  (empty default internal-address list). With older defaults (all RFC 1918 internal) a request
  that arrives without XFF from a 10.x/172.x peer (the Cluster SNAT case) counts as internal and
  gets no ``x-envoy-external-address``.
* I5: with N>0 a client-supplied XFF entry becomes the trusted address (spoofable).

Left out: TLS and the TLS inspector, ``allow_requests_without_proxy_protocol``, TLV rules, the
loopback special case of E8 (Envoy appends its local address for a loopback peer), other headers
Envoy adds (``x-request-id``, ``x-forwarded-proto``, ``x-envoy-attempt-count``...), routing, and
the 15021 status port (I3).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

from sim.addresses import APP_POD_IP, APP_PORT, GATEWAY_PORT, ephemeral_port
from sim.net.http import HTTPRequestError, parse_request_head
from sim.path import Action, Flow, Packet, Step, Verdict, new_packet
from sim.proxy_protocol import Command, Family, ProxyHeader, ProxyProtocolError, decode

__all__ = ["GatewayResult", "IngressGateway"]

_V1_SIGNATURE = b"PROXY "
_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_INET_FAMILIES = frozenset((Family.TCP4, Family.TCP6, Family.UDP4, Family.UDP6))
# Fields the gateway sets itself: client-sent copies are replaced (E10: set for edge requests).
_REPLACED = frozenset(("x-forwarded-for", "x-envoy-external-address"))

FAILURE_FACTS = {
    # What each failure reason means, for the hop where the connection ended.
    "proxy_header_missing": "E5: the filter requires a header; closed before HTTP",
    "proxy_header_invalid": "E1: a header the filter cannot use; closed",
    "proxy_header_unexpected": "E6: PROXY bytes read as HTTP; 400",
    "bad_request": "E6: not a valid HTTP request; 400",
}
"""The fact behind each failure reason of :meth:`IngressGateway.handle`."""


@dataclass(frozen=True, slots=True)
class GatewayResult:
    """What the gateway did with one connection.

    ``outcome``: ``"ok"``, ``"reset"`` (closed before HTTP, E5/E1) or ``"http_400"`` (E6 or a
    malformed request). ``reason``: ``""``, ``"proxy_header_missing"``,
    ``"proxy_header_invalid"``, ``"proxy_header_unexpected"`` or ``"bad_request"``.
    ``client_ip``/``client_port``: the downstream remote address after PROXY/XFF processing
    (E7, E9; port 0 when taken from XFF). ``external_address``: ``x-envoy-external-address``
    (``""`` if not set). ``xff_out``: the ``X-Forwarded-For`` sent to the app (``""`` if none).
    ``header``: what the proxy_protocol filter decoded. ``upstream_request``: the request bytes
    forwarded to the app's sidecar (``b""`` unless ok).
    """

    outcome: str
    reason: str
    client_ip: str
    client_port: int
    external_address: str
    xff_out: str
    header: ProxyHeader | None
    upstream_request: bytes


@lru_cache(maxsize=65536)
def _normalized_ip(text: str) -> str | None:
    # Envoy parses an XFF entry with parseInternetAddressNoThrow; an entry that is not an IP
    # yields no trusted address (fallback to the peer). Entries repeat across connections.
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


_address_text = lru_cache(maxsize=65536)(str)  # str(IPv4Address) costs ~0.7 us; addresses repeat


def _looks_like_proxy(data: bytes) -> bool:
    """Whether ``data`` starts with (a prefix of) a v1 or v2 PROXY signature."""
    if not data:
        return False
    return _V1_SIGNATURE.startswith(data[:6]) or _V2_SIGNATURE.startswith(data[:12])


def trusted_from_xff(xff: str, hops: int) -> str | None:
    """The ``hops``-th address from the right of ``xff`` (E9), or ``None`` (fall back to peer).

    Mirrors Envoy's ``getLastAddressFromXFF``: split on commas, trim whitespace, parse as IP.
    """
    if hops < 1 or not xff:
        return None
    entries = xff.split(",")
    if len(entries) < hops:
        return None
    return _normalized_ip(entries[-hops].strip(" \t"))


class IngressGateway:
    """One ingress gateway pod's Envoy (I1, I2).

    ``proxy_protocol``: whether the listener has the proxy_protocol filter (strict, I2).
    ``num_trusted_proxies``: ``gatewayTopology.numTrustedProxies`` (I4), >= 0.
    ``stats`` counts filter results under Envoy's stat names (E2): ``found``,
    ``not_found_disallowed``, ``error``.
    """

    def __init__(
        self, *, pod: str, pod_ip: str, proxy_protocol: bool, num_trusted_proxies: int
    ) -> None:
        if not isinstance(proxy_protocol, bool):
            raise ValueError(f"IngressGateway: proxy_protocol={proxy_protocol!r} must be a bool")
        n = num_trusted_proxies
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"IngressGateway: num_trusted_proxies={n!r} must be an integer >= 0")
        self.pod = pod
        self.pod_ip = pod_ip
        self.proxy_protocol = proxy_protocol
        self.num_trusted_proxies = n
        self.stats = {"found": 0, "not_found_disallowed": 0, "error": 0}

    def _fail(self, outcome: str, reason: str, peer_ip: str, peer_port: int) -> GatewayResult:
        return GatewayResult(outcome, reason, peer_ip, peer_port, "", "", None, b"")

    def handle(self, data: bytes, *, peer_ip: str, peer_port: int) -> GatewayResult:
        """Process the first bytes of an accepted connection from ``peer_ip:peer_port``.

        ``data`` is everything the peer sent first: an optional PROXY header followed by a
        complete HTTP/1.1 request head. An incomplete head counts as a bad request (the model
        has no notion of waiting for more bytes).
        """
        remote_ip, remote_port = peer_ip, peer_port
        header: ProxyHeader | None = None
        rest = data
        if self.proxy_protocol:
            if not _looks_like_proxy(data):
                # E5: strict filter, no signature -> closed before HTTP (E2 stat).
                self.stats["not_found_disallowed"] += 1
                return self._fail("reset", "proxy_header_missing", peer_ip, peer_port)
            try:
                decoded = decode(data)
            except ProxyProtocolError:
                decoded = None
            if decoded is None:
                # Malformed (E1), or a valid prefix that would wait out the 15 s
                # listener_filters_timeout and then be closed (E2, E4).
                self.stats["error"] += 1
                return self._fail("reset", "proxy_header_invalid", peer_ip, peer_port)
            header, consumed = decoded
            if header.command is Command.PROXY and header.family in _INET_FAMILIES:
                remote_ip, remote_port = _address_text(header.src_addr), header.src_port or 0
            elif header.command is Command.PROXY and header.version == 2:
                # E1: Envoy closes a v2 PROXY header whose family is not AF_INET/AF_INET6.
                self.stats["error"] += 1
                return self._fail("reset", "proxy_header_invalid", peer_ip, peer_port)
            # else LOCAL (E3) or v1 UNKNOWN: keep the real peer address.
            self.stats["found"] += 1
            rest = data[consumed:]
        try:
            head = parse_request_head(rest)
        except HTTPRequestError:
            head = None
        if head is None:
            # E6: without the filter, PROXY bytes fail the HTTP/1 codec -> 400 + close.
            unexpected = not self.proxy_protocol and _looks_like_proxy(data)
            reason = "proxy_header_unexpected" if unexpected else "bad_request"
            return GatewayResult("http_400", reason, remote_ip, remote_port, "", "", header, b"")

        headers = head.headers
        xff_lines = [value for name, value in headers if name == "x-forwarded-for"]
        incoming = ",".join(xff_lines)
        client_ip, client_port = remote_ip, remote_port
        if self.num_trusted_proxies:
            trusted = trusted_from_xff(incoming, self.num_trusted_proxies)
            if trusted is not None:
                client_ip, client_port = trusted, 0
        xff_out = f"{incoming},{remote_ip}" if incoming else remote_ip  # E8
        added = f"x-forwarded-for: {xff_out}\r\nx-envoy-external-address: {client_ip}\r\n\r\n"
        length = head.length
        if xff_lines or any(name in _REPLACED for name, _ in headers):
            lines = [f"{head.method} {head.target} {head.version}"]
            lines.extend(f"{name}: {value}" for name, value in headers if name not in _REPLACED)
            upstream = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        else:
            # Nothing to drop: forward the head as received (names keep their case; Envoy would
            # lower-case them on HTTP/1 output, which no receiver here depends on).
            upstream = rest[: length - 2]
        upstream += added.encode("latin-1") + rest[length:]
        return GatewayResult("ok", "", client_ip, client_port, client_ip, xff_out, header, upstream)

    def forward(self, packet: Packet, flow: Flow) -> Packet | Verdict:
        """Envoy handles the connection ``packet`` opens: the request it sends to the app.

        :meth:`handle` decides; this hands the result on as the next leg (from the pod to the
        app pod, on a source port the model does not track) or as the verdict, and sets
        ``flow.gateway_client_ip`` and ``flow.x_envoy_external_address``.
        """
        gw = self.handle(packet.data, peer_ip=packet.src_ip, peer_port=packet.src_port)
        flow.gateway_client_ip = gw.client_ip
        if gw.outcome != "ok":
            action = Action.RESET if gw.outcome == "reset" else Action.ANSWERED
            detail = f"{gw.outcome}: {gw.reason} ({FAILURE_FACTS[gw.reason]})"
            if flow.hops is not None:
                seen = Packet(gw.client_ip, gw.client_port, self.pod_ip, GATEWAY_PORT)
                flow.hop(f"{self.pod} istio-ingressgateway", seen, Step(action, detail))
            return Verdict(gw.outcome, gw.reason, False, action, detail)
        flow.x_envoy_external_address = gw.external_address
        out = new_packet(
            (self.pod_ip, ephemeral_port(flow.conn_id), APP_POD_IP, APP_PORT, gw.upstream_request)
        )
        if flow.hops is not None:
            steps = []
            if gw.header is not None:
                what = f"proxy_protocol filter: {gw.header.command.name} header (E1, E3)"
                steps.append(Step(Action.ACCEPTED, what))
            dra = f"DRA = {gw.client_ip}:{gw.client_port}, direct peer = {packet.src_ip} (E7)"
            steps.append(Step(Action.ACCEPTED, dra))
            xff = f"XFF appended (E8), x-envoy-external-address = {gw.external_address} (E10)"
            steps.append(Step(Action.TRANSFORMED, xff))
            flow.hop(f"{self.pod} istio-ingressgateway", out, *steps)
        return out

    def accepts_check(self, data: bytes, *, peer_ip: str, peer_port: int) -> bool:
        """A TCP health-check connection (HAProxy ``check``, H5): always ``True``.

        The check succeeds once the TCP handshake completes, before Envoy's listener filter has
        read anything, so it passes whatever the bytes are, even when a client connection
        carrying the same bytes would be reset or answered 400 (H5, E5, E6). With the filter on,
        the LOCAL header (E3) is still decoded and counted in :attr:`stats`; garbage is counted
        as an error, never raised.
        """
        if self.proxy_protocol:
            if not _looks_like_proxy(data):
                self.stats["not_found_disallowed"] += 1
            else:
                try:
                    ok = decode(data) is not None
                except ProxyProtocolError:
                    ok = False
                self.stats["found" if ok else "error"] += 1
        return True
