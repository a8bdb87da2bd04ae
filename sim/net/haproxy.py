"""The external HAProxy in front of the cluster: what it writes upstream, and its checks.

Real component modelled: HAProxy 2.x with one frontend and one backend whose servers are either
the single VIP:port (``backend="vip"``) or every node's NodePort (``backend="nodeports"``,
``balance roundrobin``, FACTS section E), in ``mode tcp`` (optionally ``send-proxy`` /
``send-proxy-v2`` with ``proxy-v2-options``) or ``mode http`` with ``option forwardfor``. This
module is plain Python; the SimPy wiring (check timers, connection routing) lives in the
simulator.

Facts relied on (``FACTS.md``):

* H1: the PROXY header carries the addresses of the *client-side* connection: source = client,
  destination = the frontend address HAProxy accepted it on (lab-verified here with 2.6.12:
  destination port = the frontend's bind port).
* H2, H3: v1 text line / v2 binary header, and the ``proxy-v2-options`` TLVs. Lab (2.6.12) for
  ``proxy-v2-options ssl,unique-id,authority,crc32c`` on a plaintext ``mode tcp`` frontend: TLVs in
  the order CRC32C, UNIQUE_ID (empty: no ``unique-id-format`` configured), SSL (client flags 0,
  verify 0: the client connection is not TLS); no AUTHORITY TLV (there is no SNI without TLS).
* H4: health checks carry a v2 **LOCAL** header (16 bytes without options; the lab shows the CRC32C
  and SSL TLVs are added to it when those options are set, 31 bytes). With ``send-proxy`` (v1) the
  lab shows the check connection's *own* addresses, e.g. ``PROXY TCP4 <haproxy> <server> <sport>
  <dport>``, not ``PROXY UNKNOWN``: HAProxy 2.6 builds the v1 line from the check connection.
* H5: ``check`` without an application check is a TCP connect; ``inter``/``fall``/``rise``
  (defaults 2 s / 3 / 2). The health counter follows HAProxy's ``check.c``: it runs from 0 to
  ``rise + fall - 1``, a server is UP while it is ``>= rise``, and a new server starts at
  ``rise`` ("up, but will fall down at first failure"), so the *first* failed check after start
  marks it DOWN; later, ``fall`` consecutive failures are needed. Every server has its own
  counter.
* H4 with an explicit check ``port`` (the healthCheckNodePort pattern, K10, K11): no PROXY header
  on the check (lab, 2.6.12: ``check port <p> send-proxy-v2`` + ``option httpchk GET /healthz``
  sends exactly ``GET /healthz HTTP/1.0\r\n\r\n``).
* H7: ``mode http`` + ``option forwardfor`` appends one ``x-forwarded-for: <client>`` line after
  the last header and keeps a client-sent one. HAProxy 2.x (HTX) also lower-cases every header
  name on the way out (lab: ``Host`` left as ``host``); :meth:`HAProxy.upstream_bytes` does the
  same.

* H10: a check that gets no answer fails only at its timeout, and the next starts ``inter``
  (``fastinter`` while in between states, ``downinter`` while DOWN) after it ended
  (:meth:`HAProxy.check_timeout_s`, :meth:`HAProxy.check_interval`; the timer runs in
  :mod:`sim.net.haproxy_checks`); the server-side connection retransmits its SYN and retries
  after ``timeout connect`` (``retries 3``, :meth:`HAProxy.syn_offsets`).

Left out: ``mode http`` with ``send-proxy`` (legal in HAProxy, not modelled: rejected by
:class:`HAProxyConfig`), ``if-none``/``except`` on ``forwardfor``, TLS termination, ``observe``,
agent checks, ``check-send-proxy``, ``option redispatch`` (a retry goes to the same server),
HAProxy's own 503/close after its last retry (the client's ``client_timeout_s`` ends first with
the defaults), server weights (e.g. from kube-proxy's ``X-Load-Balancing-Endpoint-Weight``,
K11), balancing algorithms other than an unweighted ``roundrobin``, keep-alive reuse.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from sim.net.http import HTTPRequestError, parse_request_head
from sim.net.tcp import syn_retransmissions
from sim.path import Action, Flow, Packet, Step, Verdict, new_packet
from sim.proxy_protocol import TLV, Command, Family, ProxyHeader, TLVType, encode

__all__ = ["HTTPCHK_REQUEST", "HAProxy", "HAProxyConfig", "Server"]

_MODES = ("tcp", "http")
_SEND_PROXY = (None, "v1", "v2")
_V2_OPTIONS = ("crc32c", "unique-id", "authority", "ssl")
_BACKENDS = ("vip", "nodeports")

HTTPCHK_REQUEST = b"GET /healthz HTTP/1.0\r\n\r\n"
"""What ``option httpchk GET /healthz`` sends (lab, HAProxy 2.6.12: HTTP/1.0, no headers, and no
PROXY header in front when the server line has an explicit check ``port``, H4)."""

# PP2_TYPE_SSL value for a plaintext client connection: client flags 0 (no PP2_CLIENT_SSL), verify
# 0, no sub-TLVs (lab, HAProxy 2.6.12: `20 0005 00 00000000`).
_SSL_PLAINTEXT = TLV(type=TLVType.SSL, value=b"\x00\x00\x00\x00\x00")
# Placeholder whose value encode(crc32c=True) recomputes (codec contract); HAProxy puts it first.
_CRC_PLACEHOLDER = TLV(type=TLVType.CRC32C, value=b"\x00\x00\x00\x00")
_EMPTY_UNIQUE_ID = TLV(type=TLVType.UNIQUE_ID, value=b"")


@dataclass(frozen=True, slots=True, kw_only=True)
class HAProxyConfig:
    """How the external HAProxy talks to the VIP (FACTS H1-H7).

    ``mode``: ``"tcp"`` (L4 relay) or ``"http"`` (parses HTTP). ``send_proxy``: ``None``,
    ``"v1"`` (``send-proxy``) or ``"v2"`` (``send-proxy-v2``); only with ``mode="tcp"``.
    ``forwardfor``: ``option forwardfor`` (only meaningful with ``mode="http"``). ``check``,
    ``inter_s``, ``fall``, ``rise``: the server's TCP health check (H5).
    ``proxy_v2_options``: subset of ``crc32c``, ``unique-id``, ``authority``, ``ssl`` (H2), only
    with ``send_proxy="v2"``. ``backend``: ``"vip"`` (one server, the MetalLB VIP) or
    ``"nodeports"`` (one server per node, ``<node IP>:<NodePort>``, ``balance roundrobin`` over
    the UP ones, MetalLB bypassed; FACTS section E, K7, K10, K11).
    ``timeout_connect_s`` (``timeout connect``, default 5 s), ``timeout_check_s`` (``timeout
    check``; ``None`` = unset), ``fastinter_s`` and ``downinter_s`` (``None`` = ``inter``): the
    timers of a health check against a server that does not answer (H10).
    """

    mode: str = "tcp"
    send_proxy: str | None = None
    forwardfor: bool = True
    check: bool = True
    inter_s: float = 2.0
    fall: int = 3
    rise: int = 2
    proxy_v2_options: tuple[str, ...] = ()
    backend: Literal["vip", "nodeports"] = "vip"
    timeout_connect_s: float = 5.0
    timeout_check_s: float | None = None
    fastinter_s: float | None = None
    downinter_s: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(f"HAProxyConfig.mode={self.mode!r}: allowed values are 'tcp', 'http'")
        if self.backend not in _BACKENDS:
            raise ValueError(
                f"HAProxyConfig.backend={self.backend!r}: allowed values are 'vip' (one server, "
                "the MetalLB VIP) and 'nodeports' (one server per node's NodePort)"
            )
        if self.send_proxy not in _SEND_PROXY:
            raise ValueError(
                f"HAProxyConfig.send_proxy={self.send_proxy!r}: allowed values are None, 'v1', 'v2'"
            )
        if self.send_proxy is not None and self.mode == "http":
            raise ValueError(
                f"HAProxyConfig.send_proxy={self.send_proxy!r} with mode='http': HAProxy accepts "
                "it, but this model does not (an HTTP-aware hop carries the client in "
                "X-Forwarded-For, H7); use mode='tcp' with send_proxy, or mode='http' with "
                "send_proxy=None"
            )
        if not isinstance(self.forwardfor, bool) or not isinstance(self.check, bool):
            raise ValueError("HAProxyConfig.forwardfor and HAProxyConfig.check must be bool")
        if isinstance(self.inter_s, bool) or not isinstance(self.inter_s, int | float):
            raise ValueError(f"HAProxyConfig.inter_s={self.inter_s!r}: must be a number > 0")
        if not self.inter_s > 0 or self.inter_s == float("inf"):
            raise ValueError(f"HAProxyConfig.inter_s={self.inter_s!r}: must be finite and > 0")
        for name in ("timeout_connect_s", "timeout_check_s", "fastinter_s", "downinter_s"):
            value = getattr(self, name)
            if value is None and name != "timeout_connect_s":
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 < value < float("inf")
            ):
                allowed = "a number of seconds > 0" + (
                    "" if name == "timeout_connect_s" else " or None"
                )
                raise ValueError(f"HAProxyConfig.{name}={value!r}: must be {allowed}")
        for name in ("fall", "rise"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"HAProxyConfig.{name}={value!r}: must be an integer >= 1")
        options = self.proxy_v2_options
        if not isinstance(options, tuple):
            raise ValueError(
                f"HAProxyConfig.proxy_v2_options={options!r}: must be a tuple of option names"
            )
        unknown = [o for o in options if o not in _V2_OPTIONS]
        if unknown:
            raise ValueError(
                f"HAProxyConfig.proxy_v2_options: unknown option(s) {unknown!r}; allowed: "
                + ", ".join(repr(o) for o in _V2_OPTIONS)
            )
        if len(set(options)) != len(options):
            raise ValueError(f"HAProxyConfig.proxy_v2_options={options!r}: repeated option")
        if options and self.send_proxy != "v2":
            raise ValueError(
                f"HAProxyConfig.proxy_v2_options={options!r} needs send_proxy='v2' "
                f"(got send_proxy={self.send_proxy!r}): the options are PROXY v2 TLVs (H2)"
            )


@lru_cache(maxsize=65536)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    # Client addresses repeat across connections; parsing each once keeps upstream_bytes lean.
    return ipaddress.ip_address(text)


def _parse_ip(text: str, name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return _address(text)
    except ValueError:
        raise ValueError(f"HAProxy: {name}={text!r} is not an IP address") from None


def _check_port(port: int, name: str) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"HAProxy: {name}={port!r} must be an integer port 0..65535")


_RETRIES = 3
"""HAProxy's ``retries`` default: connection attempts after the first one."""


Server = tuple[str, str, int]
"""A backend server as ``(name, ip, port)``: ``("VIP", VIP, 80)``, or a node and its NodePort."""


class HAProxy:
    """One HAProxy instance: frontend ``frontend_ip:frontend_port`` and its backend's servers.

    ``ip`` is HAProxy's own address (the source of its server-side and check connections).
    ``servers`` is the number of servers (numbered ``0 .. servers - 1``, addresses known to the
    caller) or the servers themselves as :data:`Server` tuples, which :meth:`forward` needs.
    ``ports`` allocates the ephemeral source port of each server-side connection (HAProxy's
    kernel); :meth:`forward` needs it too.
    """

    def __init__(
        self,
        config: HAProxyConfig,
        *,
        ip: str,
        frontend_ip: str,
        frontend_port: int,
        servers: int | Sequence[Server] = 1,
        ports: Callable[[], int] | None = None,
    ) -> None:
        if not isinstance(config, HAProxyConfig):
            raise ValueError(
                f"HAProxy: config must be an HAProxyConfig, got {type(config).__name__}"
            )
        _check_port(frontend_port, "frontend_port")
        count = servers if isinstance(servers, int) else len(servers)
        if isinstance(servers, bool) or count < 1:
            raise ValueError(f"HAProxy: servers={servers!r} must be an integer >= 1")
        self.config = config
        self.ip = ip
        self._ip = _parse_ip(ip, "ip")
        self.frontend_ip = frontend_ip
        self.frontend_port = frontend_port
        self._frontend = _parse_ip(frontend_ip, "frontend_ip")
        self._family = Family.TCP4 if self._frontend.version == 4 else Family.TCP6
        self._version = {"v1": 1, "v2": 2}.get(config.send_proxy or "", 0)
        self._servers: tuple[Server, ...] = () if isinstance(servers, int) else tuple(servers)
        self._ports = ports
        self._http = config.mode == "http"
        self._roundrobin = config.backend == "nodeports"
        options = config.proxy_v2_options
        self._crc = "crc32c" in options
        self._unique_id = "unique-id" in options
        self._ssl = "ssl" in options
        # H4: v2 checks are LOCAL; the connection-independent TLVs still ride along (lab).
        check_tlvs = self._tlvs(with_stream=False)
        self._check_v2 = encode(
            ProxyHeader(version=2, command=Command.LOCAL, family=Family.UNSPEC, tlvs=check_tlvs),
            crc32c=self._crc,
        )
        self._stream_tlvs = self._tlvs(with_stream=True) if self._version == 2 else ()
        self._forwardfor = config.mode == "http" and config.forwardfor
        # HAProxy: a new server is "up, but will fall down at first failure" (H5).
        self._health = [config.rise] * count
        self._health_max = config.rise + config.fall - 1
        self._up = count  # how many servers are UP
        self._last = -1  # the server roundrobin picked last

    def _tlvs(self, *, with_stream: bool) -> tuple[TLV, ...]:
        # Order as HAProxy 2.6 writes them (lab): CRC32C, UNIQUE_ID, SSL. UNIQUE_ID only exists on
        # connections that belong to a stream, i.e. not on health checks. AUTHORITY needs SNI,
        # which a plaintext frontend never has, so "authority" adds nothing here (H2).
        tlvs: list[TLV] = []
        if self._crc:
            tlvs.append(_CRC_PLACEHOLDER)
        if self._unique_id and with_stream:
            tlvs.append(_EMPTY_UNIQUE_ID)
        if self._ssl:
            tlvs.append(_SSL_PLAINTEXT)
        return tuple(tlvs)

    def server(self, index: int) -> Server:
        """Server number ``index`` as ``(name, ip, port)`` (needs ``servers=`` as tuples)."""
        return self._servers[index]

    @property
    def servers(self) -> int:
        """How many servers the backend has."""
        return len(self._health)

    @property
    def server_up(self) -> bool:
        """Whether HAProxy considers at least one server UP (H5); ``True`` at start.

        With one server (``backend="vip"``) that is the VIP's state.
        """
        return self._up > 0

    def is_up(self, server: int) -> bool:
        """Whether HAProxy considers server number ``server`` UP (H5)."""
        return self._health[server] >= self.config.rise

    def pick(self) -> int:
        """``balance roundrobin``: the next UP server after the one picked last; ``-1`` if none.

        With equal weights HAProxy's roundrobin serves the servers in turn and skips those that
        are DOWN; this is that order (weights are not modelled).
        """
        health = self._health
        n = len(health)
        rise = self.config.rise
        i = self._last
        for _ in range(n):
            i = i + 1 if i + 1 < n else 0
            if health[i] >= rise:
                self._last = i
                return i
        return -1

    def forward(self, packet: Packet, flow: Flow) -> Packet | Verdict:
        """A client connection reaches the frontend: the server-side connection's first packet.

        ``503`` (``mode http``) or a reset (``mode tcp``) at once when no server is UP (H5).
        Otherwise a new connection from HAProxy's own address to the server (the VIP, or by
        ``roundrobin`` a node's NodePort), carrying :meth:`upstream_bytes` (H1, H7).
        """
        if not self._up:
            return self._no_server(packet, flow)
        assert self._ports is not None, "HAProxy.forward needs ports= (the port allocator)"
        src_port = self._ports()
        server = self.pick() if self._roundrobin else 0
        flow.server = server
        name, server_ip, server_port = self._servers[server]
        data = self.upstream_bytes(
            client_ip=packet.src_ip,
            client_port=packet.src_port,
            request=packet.data,
            src_port=src_port,
            server_ip=server_ip,
            server_port=server_port,
        )
        out = new_packet((self.ip, src_port, server_ip, server_port, data))
        if flow.hops is not None:
            steps = [Step(Action.TRANSFORMED, s) for s in self._rewrite()]
            if self._roundrobin:
                what = (
                    f"server {name} ({server_ip}:{server_port}) by roundrobin over the UP "
                    "servers, MetalLB bypassed (section E)"
                )
                steps.append(Step(Action.FORWARDED, what))
            flow.hop(f"haproxy ({self.config.mode})", out, *steps)
        return out

    def _no_server(self, packet: Packet, flow: Flow) -> Verdict:
        what = "every server DOWN (H5)" if self._roundrobin else "server DOWN (H5)"
        if self._http:
            verdict = Verdict("http_503", "haproxy_no_server", False, Action.ANSWERED, what)
        else:
            verdict = Verdict("reset", "haproxy_no_server", False, Action.RESET, what)
        if flow.hops is not None:
            flow.hop(
                "haproxy", Packet(self.ip, self.frontend_port, "", 0), Step(verdict.action, what)
            )
        return verdict

    def _rewrite(self) -> tuple[str, ...]:
        # What HAProxy did to the addresses, for its hop (H1, H7).
        cfg = self.config
        if self._http:
            if cfg.forwardfor:
                return (
                    "new connection from HAProxy (full proxy)",
                    "appends x-forwarded-for: <client> (H7)",
                )
            return ("new connection from HAProxy (full proxy)",)
        if cfg.send_proxy:
            return (
                "new connection from HAProxy",
                f"PROXY {cfg.send_proxy} header carries the client (H1)",
            )
        return ("new connection from HAProxy", "the client address is lost (H7)")

    def relay(self, verdict: Verdict, flow: Flow) -> Verdict:
        """The verdict HAProxy's client gets when the server-side connection ended in ``verdict``.

        Adds HAProxy's hop to the trace when it changes what the client sees
        (:meth:`relay_outcome`).
        """
        seen = self.relay_outcome(verdict.outcome)
        if seen == verdict.outcome:
            return verdict
        if seen == "reset":
            action = Action.RESET
            detail = "server connection refused: HAProxy closes the client's connection (mode tcp)"
        else:
            action = Action.ANSWERED
            cause = "refused" if verdict.outcome == "refused" else "reset"
            detail = f"server connection {cause}: HAProxy answers {seen[5:]} (H7)"
        if flow.hops is not None:
            back = Packet(self.frontend_ip, self.frontend_port, flow.client_ip, flow.client_port)
            flow.hop(f"haproxy ({self.config.mode})", back, Step(action, detail))
        return verdict._replace(outcome=seen, action=action, detail=detail)

    def relay_outcome(self, outcome: str) -> str:
        """What HAProxy's client sees when the server-side connection ends with ``outcome``.

        HAProxy, not the server, is the client's peer: in ``mode http`` a refused server
        connection becomes ``503`` and a reset one ``502`` (an empty reply, H7); in ``mode tcp``
        a refusal reaches the client as a reset. Time-outs and HTTP answers pass unchanged.
        """
        if outcome == "refused":
            return "http_503" if self._http else "reset"
        if outcome == "reset" and self._http:
            return "http_502"
        return outcome

    def upstream_bytes(
        self,
        *,
        client_ip: str,
        client_port: int,
        request: bytes,
        src_port: int,
        server_ip: str,
        server_port: int,
    ) -> bytes:
        """The first bytes HAProxy writes on its server-side connection for one client.

        ``mode tcp``: the PROXY header (if configured; source = client, destination = the
        frontend, H1) followed by ``request`` unchanged. ``mode http``: the request head with
        names lower-cased and, with ``forwardfor``, ``x-forwarded-for: <client_ip>`` appended
        after the client's own fields (H7). ``src_port``/``server_ip``/``server_port`` describe
        the server-side connection; they do not appear in the bytes (they are the L4 envelope).
        Raises :class:`ValueError` for an address that is not an IP, and
        :class:`~sim.net.http.HTTPRequestError` when ``mode http`` is given a request it cannot
        parse.
        """
        if self._version:
            client = _parse_ip(client_ip, "client_ip")
            if client.version != self._frontend.version:
                raise ValueError(
                    f"HAProxy: client_ip={client_ip!r} and frontend_ip={self.frontend_ip!r} "
                    "are of different IP versions; one connection has one family"
                )
            header = ProxyHeader(
                version=self._version,
                command=Command.PROXY,
                family=self._family,
                src_addr=client,
                dst_addr=self._frontend,
                src_port=client_port,
                dst_port=self.frontend_port,
                tlvs=self._stream_tlvs,
            )
            return encode(header, crc32c=self._crc) + request
        if self.config.mode == "tcp":
            return request
        return self._http_forward(request, client_ip)

    def _http_forward(self, request: bytes, client_ip: str) -> bytes:
        head = parse_request_head(request)
        if head is None:
            raise HTTPRequestError("mode http: request head is incomplete", offset=len(request))
        lines = [f"{head.method} {head.target} {head.version}"]
        lines.extend(f"{name}: {value}" for name, value in head.headers)
        if self._forwardfor:
            lines.append(f"x-forwarded-for: {client_ip}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request[head.length :]

    def check_bytes(
        self,
        *,
        src_port: int | None = None,
        server_ip: str | None = None,
        server_port: int | None = None,
        explicit_port: bool = False,
    ) -> bytes:
        """The PROXY bytes a health-check connection sends first (H4, H5).

        ``b""`` without ``send_proxy``; with ``v2`` the LOCAL header (16 bytes, plus the CRC32C
        and SSL TLVs when those options are set). With ``v1`` HAProxy 2.6 sends the check
        connection's own addresses (lab), so ``src_port``, ``server_ip`` and ``server_port`` of
        the check connection are required then; they are ignored otherwise.
        ``explicit_port=True`` (the server line has ``check port <p>``): ``b""`` whatever
        ``send_proxy`` says, since only ``check-send-proxy`` (not modelled) would add it (H4).
        """
        if explicit_port:
            return b""
        if self._version == 2:
            return self._check_v2
        if self._version == 0:
            return b""
        if src_port is None or server_ip is None or server_port is None:
            raise ValueError(
                "HAProxy.check_bytes: send_proxy='v1' checks carry the check connection's own "
                "addresses (HAProxy 2.6); pass src_port, server_ip and server_port"
            )
        _check_port(src_port, "src_port")
        _check_port(server_port, "server_port")
        server = _parse_ip(server_ip, "server_ip")
        family = Family.TCP4 if server.version == 4 else Family.TCP6
        if server.version != self._ip.version:
            raise ValueError(f"HAProxy.check_bytes: server_ip={server_ip!r} family differs from ip")
        return encode(
            ProxyHeader(
                version=1,
                command=Command.PROXY,
                family=family,
                src_addr=self._ip,
                dst_addr=server,
                src_port=src_port,
                dst_port=server_port,
            )
        )

    @property
    def check_timeout_s(self) -> float:
        """How long a check waits for a server that does not answer its SYN (H10).

        ``inter`` when ``timeout check`` is unset (the whole check's timeout); otherwise
        ``min(timeout connect, inter)`` for the connect, ``timeout check`` being only the read
        timeout after it (HAProxy's ``timeout check``).
        """
        cfg = self.config
        if cfg.timeout_check_s is None:
            return cfg.inter_s
        return min(cfg.timeout_connect_s, cfg.inter_s)

    def check_interval(self, server: int = 0) -> float:
        """The wait from the end of one check of ``server`` to the start of the next (H10).

        HAProxy's ``srv_getinter``: ``inter`` while the server is fully UP, ``downinter`` (if
        set) while it is DOWN, ``fastinter`` (if set) while it is in between (UP but failing,
        DOWN but passing, or new).
        """
        cfg = self.config
        health = self._health[server]
        if health == self._health_max:
            return cfg.inter_s
        if health == 0:
            return cfg.downinter_s or cfg.inter_s
        return cfg.fastinter_s or cfg.inter_s

    def syn_offsets(self, deadline_s: float) -> tuple[float, ...]:
        """When HAProxy's server-side connection sends SYNs to a server that does not answer.

        Seconds after the first SYN, before ``deadline_s``: the kernel retransmits at 1, 3, 7 ...
        s (T1) within ``timeout connect``; then HAProxy retries the connection (``retries 3``,
        its default) after a turn-around of min(``timeout connect``, 1 s) (H10).
        """
        connect = self.config.timeout_connect_s
        offsets: list[float] = []
        start = 0.0
        for _attempt in range(1 + _RETRIES):
            offsets += [start + o for o in syn_retransmissions(connect) if start + o < deadline_s]
            start += connect + min(connect, 1.0)
        return tuple(offsets)

    def record_check(self, ok: bool, server: int = 0) -> str | None:
        """Feed one check result of ``server``; return ``"DOWN"``/``"UP"`` on a change, else None.

        HAProxy's health counter (H5, ``check.c``), one per server: a pass adds one (and jumps to
        the top once ``rise`` is reached), a failure subtracts one (and drops to 0 once below
        ``rise``).
        """
        rise = self.config.rise
        health = self._health[server]
        was_up = health >= rise
        if ok:
            if health < self._health_max:
                health += 1
                if health >= rise:
                    health = self._health_max
        elif health > 0:
            health -= 1
            if health < rise:
                health = 0
        self._health[server] = health
        is_up = health >= rise
        if is_up == was_up:
            return None
        self._up += 1 if is_up else -1
        return "UP" if is_up else "DOWN"
