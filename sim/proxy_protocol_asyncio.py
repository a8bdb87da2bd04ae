"""Read a PROXY protocol header from an :class:`asyncio.StreamReader`, for real servers.

The codec (:mod:`sim.proxy_protocol`) is sans-I/O: it turns bytes into a header and answers
``None`` while it needs more. This module is the small piece of I/O on top of it that a real
asyncio server needs (STYLE: "an asyncio helper for real servers lives in its own small module"):

* it reads **exactly** the header and never a byte of the payload behind it (a v1 line is read in
  steps that cannot pass its CRLF; a v2 header is read as its 16-byte prefix, then exactly the
  length that prefix announces), so the caller can hand the same reader to TLS or HTTP code;
* one deadline, ``timeout_s``, covers the whole header, so a slow or stalled sender cannot hold a
  connection open for ever (Envoy's equivalent is ``listener_filters_timeout``, 15 s, FACTS E4);
* the header size is bounded (``max_header_bytes``) before its body is read;
* a connection without a header is refused unless the caller explicitly allows it for peers in
  ``trusted_networks`` (policy ``"allow-trusted"``); then the bytes already read are handed back.

The PROXY spec says the receiver "MUST not try to guess whether the protocol header is present"
(FACTS H8): the default policy, ``"reject"``, follows it. ``"allow-trusted"`` is for the case the
story keeps hitting, where in-cluster callers reach a PROXY-requiring gateway directly and carry
no header (FACTS K8, E5): it is *not* guessing for arbitrary peers, only for addresses you list.
It does not make the port safe to expose: anybody who can reach a PROXY port can claim any source
address, so the port itself must only be reachable by your proxies and trusted callers.

This module never imports :mod:`simpy` and does not touch the socket itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from sim.proxy_protocol import (
    V2_MAX_HEADER,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyProtocolError,
    decode,
)

__all__ = [
    "DEFAULT_MAX_HEADER_BYTES",
    "MissingHeaderPolicy",
    "MissingProxyHeader",
    "ProxyHeaderResult",
    "ProxyHeaderTimeout",
    "read_proxy_header",
]

#: The two ways a header can start (FACTS H3): the v1 text line and the 12-byte v2 signature.
_V1_PREFIX = b"PROXY "
_V2_SIGNATURE = V2_SIGNATURE
#: The shortest complete headers: ``PROXY UNKNOWN\r\n`` (15 bytes) and a v2 LOCAL header
#: (16 bytes, FACTS H4). Reading up to 15 bytes can therefore never run past a header.
_MIN_HEADER_BYTES = 15
_V2_PREFIX_BYTES = 16
#: A v2 header is at most 16 + 65535 bytes (the length field is 16 bits).
_V2_MAX_BYTES = V2_MAX_HEADER
#: The spec asks receivers to accept at least a v2 header carrying UNIX addresses without TLVs:
#: 16 + 216 = 232 bytes (proxy-protocol.txt §2.2). A smaller limit would refuse valid senders.
_SPEC_MIN_BUFFER = 232
#: Default size limit: room for addresses plus the TLVs HAProxy sends (SSL, CN, unique ID <= 128
#: bytes, authority, CRC32C; FACTS H2) with a wide margin, yet far below the 64 KiB maximum a
#: hostile sender could otherwise make every connection allocate.
DEFAULT_MAX_HEADER_BYTES = 4096

MissingHeaderPolicy: TypeAlias = Literal["reject", "allow-trusted"]
_POLICIES: tuple[str, ...] = ("reject", "allow-trusted")

_Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
PeerLike: TypeAlias = tuple[object, ...] | str | _Address | None


class ProxyHeaderTimeout(TimeoutError):
    """The complete header did not arrive within ``timeout_s`` seconds.

    Attributes:
        timeout_s: the deadline that expired.
        received: how many bytes of the connection had been read when it expired.
    """

    def __init__(self, timeout_s: float, received: int) -> None:
        super().__init__(
            f"PROXY header not complete within timeout_s={timeout_s:g} s "
            f"({received} byte(s) received); the sender is too slow or stalled"
        )
        self.timeout_s = timeout_s
        self.received = received


class MissingProxyHeader(ProxyProtocolError):
    """The connection does not start with a PROXY header and the policy does not allow that.

    ``offset`` is the first byte that matches neither the v1 nor the v2 signature (or the number
    of bytes received when the peer closed first); ``peer`` is the socket peer as given.
    """

    def __init__(self, message: str, *, offset: int, peer: PeerLike) -> None:
        super().__init__(message, offset=offset, field="signature")
        self.peer = peer


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyHeaderResult:
    """What :func:`read_proxy_header` read from the start of a connection.

    Attributes:
        header: the decoded header, or ``None`` when the connection had none and the policy
            allowed that (``"allow-trusted"`` and a trusted peer).
        leftover: bytes already read that belong to the payload and that the caller must treat
            as its start. Always ``b""`` when a header was present (nothing past the header is
            ever read); the sniffed bytes when ``header`` is ``None``.
        raw: the exact header bytes as received (``b""`` when there was no header).
    """

    header: ProxyHeader | None
    leftover: bytes
    raw: bytes


def _networks(trusted_networks: Iterable[_Network | str]) -> tuple[_Network, ...]:
    nets: list[_Network] = []
    for item in trusted_networks:
        if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
            nets.append(item)
        elif isinstance(item, str):
            try:
                nets.append(ipaddress.ip_network(item))
            except ValueError as exc:
                raise ValueError(f"trusted_networks: {item!r} is not a network: {exc}") from None
        else:
            raise TypeError(
                f"trusted_networks: expected ipaddress networks or strings, got {item!r}"
            )
    return tuple(nets)


def _peer_address(peer: PeerLike) -> _Address | None:
    """The IP address of ``peer``, or ``None`` when it is not an IP peer (UNIX socket, None)."""
    if isinstance(peer, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return peer
    host = peer[0] if isinstance(peer, tuple) and peer else peer
    if not isinstance(host, str):
        return None
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None  # a UNIX socket path or '' is never in an IP network


def _is_trusted(peer: PeerLike, networks: tuple[_Network, ...]) -> bool:
    addr = _peer_address(peer)
    if addr is None:
        return False
    candidates: list[_Address] = [addr]
    # A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; match them against IPv4 nets.
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        candidates.append(addr.ipv4_mapped)
    return any(a.version == n.version and a in n for a in candidates for n in networks)


def _classify(buf: bytes) -> Literal["v1", "v2", "undecided", "absent"]:
    """Which signature ``buf`` starts with, as far as its bytes allow deciding."""
    n = len(buf)
    v1 = buf[: len(_V1_PREFIX)] == _V1_PREFIX[: min(n, len(_V1_PREFIX))]
    v2 = buf[: len(_V2_SIGNATURE)] == _V2_SIGNATURE[: min(n, len(_V2_SIGNATURE))]
    if v1:
        return "v1" if n >= len(_V1_PREFIX) else "undecided"
    if v2:
        return "v2" if n >= len(_V2_SIGNATURE) else "undecided"
    return "absent"


def _first_mismatch(buf: bytes) -> int:
    """Offset of the first byte that rules out both signatures (``len(buf)`` if none does)."""
    for i in range(len(buf)):
        if _classify(buf[: i + 1]) == "absent":
            return i
    return len(buf)


def _next_read_size(buf: bytes, kind: str) -> int:
    """How many bytes may be read next without any risk of reading past the header."""
    if kind == "v2" and len(buf) >= _V2_PREFIX_BYTES:
        # The prefix announces the exact remaining length (checked against the limit first).
        return _V2_PREFIX_BYTES + int.from_bytes(buf[14:16], "big") - len(buf)
    if kind == "v2":
        return _V2_PREFIX_BYTES - len(buf)
    if len(buf) < _MIN_HEADER_BYTES:
        return _MIN_HEADER_BYTES - len(buf)
    # Inside a v1 line: it ends with CRLF, so unless the last byte is CR at least 2 more bytes
    # belong to it; after a CR only the LF can be ours (FACTS H3: line <= 107 bytes).
    return 1 if buf.endswith(b"\r") else 2


async def read_proxy_header(
    reader: asyncio.StreamReader,
    *,
    timeout_s: float,
    peer: PeerLike = None,
    policy: MissingHeaderPolicy = "reject",
    trusted_networks: Iterable[_Network | str] = (),
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
) -> ProxyHeaderResult:
    """Read the PROXY protocol v1/v2 header at the start of a connection.

    Call it first thing in an ``asyncio.start_server`` callback, before any other read::

        result = await read_proxy_header(reader, timeout_s=5.0,
                                         peer=writer.get_extra_info("peername"))

    Args:
        reader: the connection's stream reader; on success it is positioned exactly after the
            header (or, when no header was allowed, after ``result.leftover``).
        timeout_s: deadline in seconds for the whole header, however it is fragmented.
        peer: the socket peer, e.g. ``writer.get_extra_info("peername")`` (a ``(host, port,
            ...)`` tuple), an address string or an :mod:`ipaddress` address. Only used to decide
            whether a connection *without* a header is allowed, and to name it in errors. A peer
            that is not an IP address (UNIX socket) is never trusted.
        policy: what to do when the connection does not start with a PROXY signature:
            ``"reject"`` (default, what the spec requires: raise :class:`MissingProxyHeader`) or
            ``"allow-trusted"`` (return ``header=None`` and the bytes read so far as ``leftover``
            when ``peer`` is in ``trusted_networks``; raise otherwise).
        trusted_networks: networks (``ipaddress`` objects or strings such as ``"10.0.0.0/8"``)
            whose peers may connect without a header under ``"allow-trusted"``.
        max_header_bytes: refuse larger headers before reading their body; at least 232 (the
            spec's minimum receive buffer), at most 65551 (the v2 maximum).

    Returns:
        A :class:`ProxyHeaderResult`. A header with ``command`` LOCAL (health checks, FACTS H4)
        carries no addresses: use the socket's own addresses then, as the spec says.

    Raises:
        ProxyHeaderTimeout: the header was not complete within ``timeout_s``.
        MissingProxyHeader: no PROXY signature and the policy does not allow that (this includes
            a peer that closes before sending anything).
        ProxyProtocolError: the header is malformed, too large, or the peer closed mid-header;
            the message names the field and byte offset.
        ValueError / TypeError: bad arguments (checked before anything is read).

    After an exception the connection's first bytes are consumed: close it.
    """
    if not isinstance(timeout_s, int | float) or not timeout_s > 0:
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    if policy not in _POLICIES:
        raise ValueError(f"policy must be one of {_POLICIES}, got {policy!r}")
    if not _SPEC_MIN_BUFFER <= max_header_bytes <= _V2_MAX_BYTES:
        raise ValueError(
            f"max_header_bytes must be between {_SPEC_MIN_BUFFER} and {_V2_MAX_BYTES}, "
            f"got {max_header_bytes!r}"
        )
    networks = _networks(trusted_networks)
    if policy == "allow-trusted" and not networks:
        raise ValueError("policy='allow-trusted' needs at least one entry in trusted_networks")

    buf = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            return await _read(reader, buf, peer, policy, networks, max_header_bytes)
    except TimeoutError:
        raise ProxyHeaderTimeout(timeout_s, len(buf)) from None


async def _read(
    reader: asyncio.StreamReader,
    buf: bytearray,
    peer: PeerLike,
    policy: MissingHeaderPolicy,
    networks: tuple[_Network, ...],
    max_header_bytes: int,
) -> ProxyHeaderResult:
    while True:
        data = bytes(buf)
        kind = _classify(data)
        if kind == "absent":
            return _missing(data, peer, policy, networks, closed=False)
        if kind in ("v1", "v2"):
            if kind == "v2" and len(data) >= _V2_PREFIX_BYTES:
                total = _V2_PREFIX_BYTES + int.from_bytes(data[14:16], "big")
                if total > max_header_bytes:
                    raise ProxyProtocolError(
                        f"length: the v2 header would be {total} bytes, more than "
                        f"max_header_bytes={max_header_bytes}",
                        offset=14,
                        field="length",
                    )
            # The codec answers None for "valid prefix, need more" and raises on garbage as soon
            # as the bytes it has prove it, so a bad v2 prefix fails before its body is read.
            decoded = decode(data)
            if decoded is not None:
                header, consumed = decoded
                return ProxyHeaderResult(
                    header=header, leftover=data[consumed:], raw=data[:consumed]
                )
            if len(data) >= max_header_bytes:
                raise ProxyProtocolError(
                    f"header: {kind} header not complete after {len(data)} bytes "
                    f"(max_header_bytes={max_header_bytes})",
                    offset=len(data),
                    field="header",
                )
        # read(n) returns as soon as any byte is there, so a short payload from a trusted
        # client without a header cannot stall the sniffing; n never reaches past a header.
        chunk = await reader.read(_next_read_size(data, kind))
        if not chunk:
            if kind == "undecided":
                return _missing(data, peer, policy, networks, closed=True)
            raise ProxyProtocolError(
                f"header: peer closed the connection after {len(data)} bytes, "
                f"in the middle of a {kind} header",
                offset=len(data),
                field="header",
            )
        buf += chunk


def _missing(
    data: bytes,
    peer: PeerLike,
    policy: MissingHeaderPolicy,
    networks: tuple[_Network, ...],
    *,
    closed: bool,
) -> ProxyHeaderResult:
    if policy == "allow-trusted" and _is_trusted(peer, networks):
        return ProxyHeaderResult(header=None, leftover=data, raw=b"")
    if closed:
        what = f"signature: peer closed the connection after {len(data)} byte(s), no PROXY header"
        offset = len(data)
    else:
        offset = _first_mismatch(data)
        what = (
            f"signature: no PROXY header, byte {data[offset : offset + 1]!r} "
            f"matches neither 'PROXY ' nor the v2 signature"
        )
    who = f"peer {peer!r}" if peer is not None else "the peer"
    why = (
        f"{who} is not in trusted_networks"
        if policy == "allow-trusted"
        else f"policy is 'reject' ({who})"
    )
    raise MissingProxyHeader(f"{what}; {why}", offset=offset, peer=peer)
