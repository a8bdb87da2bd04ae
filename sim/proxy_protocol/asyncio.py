"""Read a PROXY protocol header from an :class:`asyncio.StreamReader`, for real servers.

The codec (:mod:`sim.proxy_protocol`) is sans-I/O: a :class:`~sim.proxy_protocol.Decoder`
turns bytes into a header. This module is the small piece of I/O on top of it that an asyncio
server needs (STYLE: "an asyncio helper for real servers lives in its own small module"). It is
a module of the codec package; ``import asyncio`` below is the standard library's (absolute
imports), and nothing else in the package imports this module.

* **Who may send a header** is a policy per peer (:class:`PeerPolicy`, :class:`Policy`; as
  pires/go-proxyproto's ``policy.go`` and HAProxy's ``expect-proxy ... if { src -f
  proxies.lst }``). A header from a peer that may not send one is never believed: it refuses the
  connection (``REJECT``), is dropped (``IGNORE``) or stays payload (``SKIP``); ``DENY`` refuses
  the peer before reading anything.
* It reads **exactly** the header and never a byte of the payload behind it (each read asks for
  at most :attr:`Decoder.next_read_size <sim.proxy_protocol.Decoder.next_read_size>` bytes), so
  the caller can hand the same reader to TLS or HTTP code.
* One deadline, ``timeout_s``, covers the whole header, so a slow or stalled sender cannot hold
  a connection open for ever (Envoy's equivalent is ``listener_filters_timeout``, 15 s, FACTS
  E4); the header size is bounded (``max_header_bytes``) before its body is read.
* **Every** way the peer can end or break the header read raises a subclass of
  :class:`ProxyHeaderError` (itself a :class:`~sim.proxy_protocol.ProxyProtocolError`): a reset,
  an EOF, a timeout, a header too large, malformed or from a peer that may not send one. A server
  catches that one class, logs it and closes the connection.

The PROXY spec says the receiver "MUST not try to guess whether the protocol header is present"
(FACTS H8): only ``USE``, ``IGNORE`` and ``REJECT`` look at the first bytes to tell, and only
``USE`` then believes a header, so give ``USE`` (and ``REQUIRE``) only to your proxies' ranges.
This module never imports :mod:`simpy` and does not touch the socket itself.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from ._codec import DecodeLimits
from ._decoder import Decoder
from ._header import ProxyHeader
from ._policy import (
    PeerLike,
    PeerPolicy,
    Policy,
    peer_address,
    policy_from_ranges,
    trust_proxy_header_from,
)
from ._types import V2_MAX_HEADER, ProxyProtocolError

__all__ = [
    "DEFAULT_MAX_HEADER_BYTES",
    "ConnectionLost",
    "MalformedProxyHeader",
    "MissingProxyHeader",
    "PeerLike",
    "PeerPolicy",
    "Policy",
    "ProxyHeaderError",
    "ProxyHeaderResult",
    "ProxyHeaderTimeout",
    "ProxyHeaderTooLarge",
    "UntrustedPeer",
    "UntrustedProxyHeader",
    "peer_address",
    "policy_from_ranges",
    "read_proxy_header",
    "trust_proxy_header_from",
]

#: The spec asks receivers to accept at least a v2 header carrying UNIX addresses without TLVs:
#: 16 + 216 = 232 bytes (proxy-protocol.txt §2.2). A smaller limit would refuse valid senders.
_SPEC_MIN_BUFFER = 232
#: Default size limit: room for addresses plus the TLVs HAProxy sends (SSL, CN, unique ID <= 128
#: bytes, authority, CRC32C; FACTS H2) with a wide margin, yet far below the 64 KiB maximum a
#: hostile sender could otherwise make every connection allocate.
DEFAULT_MAX_HEADER_BYTES = 4096


class ProxyHeaderError(ProxyProtocolError):
    """The header could not be read, or was refused: close the connection.

    The base of every error :func:`read_proxy_header` raises because of what the peer sent or
    did (its arguments are checked with ``ValueError``/``TypeError`` instead). Like every
    :class:`~sim.proxy_protocol.ProxyProtocolError` the message starts with the field and
    ``.offset`` / ``.field`` say where.

    Attributes:
        peer: the socket peer, as given to :func:`read_proxy_header`.
        received: how many bytes had been read from the connection.
    """

    def __init__(
        self,
        message: str,
        *,
        peer: PeerLike,
        received: int,
        offset: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message, offset=offset, field=field)
        self.peer = peer
        self.received = received


class UntrustedPeer(ProxyHeaderError):
    """The peer's policy is ``DENY``: refused before a byte was read."""


class UntrustedProxyHeader(ProxyHeaderError):
    """The peer's policy is ``REJECT`` and it sent a header: it is not believed.

    Raised as soon as the signature is complete (``offset`` 0), before the header's body is read.
    """


class MissingProxyHeader(ProxyHeaderError):
    """The peer's policy is ``REQUIRE`` and the connection does not start with a header.

    ``offset`` is the first byte that matches neither the v1 nor the v2 signature.
    """


class MalformedProxyHeader(ProxyHeaderError):
    """The bytes after a signature are not a valid header: the codec's message, field, offset."""


class ProxyHeaderTooLarge(ProxyHeaderError):
    """The v2 length field announces more than ``max_header_bytes``; the body was not read."""


class ProxyHeaderTimeout(ProxyHeaderError):
    """The complete header did not arrive within ``timeout_s`` seconds.

    Not a :class:`TimeoutError`: catch :class:`ProxyHeaderError` (or this class).

    Attributes:
        timeout_s: the deadline that expired.
    """

    def __init__(self, timeout_s: float, *, peer: PeerLike, received: int) -> None:
        super().__init__(
            f"header: not complete within timeout_s={timeout_s:g} s ({received} byte(s) "
            "received); the sender is too slow or stalled",
            peer=peer,
            received=received,
            field="header",
        )
        self.timeout_s = timeout_s


class ConnectionLost(ProxyHeaderError):
    """The peer reset or closed the connection (or the socket failed) before the header was in.

    Attributes:
        reset: ``True`` for a reset or socket error, ``False`` for an orderly close (EOF).
    """

    def __init__(self, message: str, *, peer: PeerLike, received: int, reset: bool) -> None:
        super().__init__(message, peer=peer, received=received, offset=received, field="header")
        self.reset = reset


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyHeaderResult:
    """What :func:`read_proxy_header` read from the start of a connection.

    Attributes:
        header: the decoded header, when the peer's policy believes one (``REQUIRE``, ``USE``);
            ``None`` when there was none, or it was dropped (``IGNORE``), or nothing was read
            (``SKIP``). Use the socket's addresses then, as for a ``LOCAL`` header.
        leftover: bytes already read that belong to the payload: treat them as its start.
            ``b""`` whenever a header was read (nothing past a header is ever read).
        raw: the exact header bytes as received, also when the header was dropped (``IGNORE``);
            ``b""`` when there was none.
        policy: the policy that applied to this peer.
    """

    header: ProxyHeader | None
    leftover: bytes
    raw: bytes
    policy: Policy


def _who(peer: PeerLike) -> str:
    return f"peer {peer!r}" if peer is not None else "the peer"


def _what(decoder: Decoder) -> str:
    return "PROXY" if decoder.version is None else f"v{decoder.version}"


def _untrusted(decoder: Decoder, peer: PeerLike, received: int) -> UntrustedProxyHeader:
    return UntrustedProxyHeader(
        f"signature: {_who(peer)} sent a {_what(decoder)} PROXY header but may not send one "
        "(policy REJECT); it is not believed",
        peer=peer,
        received=received,
        offset=0,
        field="signature",
    )


async def read_proxy_header(
    reader: asyncio.StreamReader,
    *,
    peer: PeerLike,
    policy: PeerPolicy | Policy,
    timeout_s: float,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    limits: DecodeLimits | None = None,
) -> ProxyHeaderResult:
    """Read the PROXY protocol v1/v2 header at the start of a connection, if the peer may send one.

    Call it first thing in an ``asyncio.start_server`` callback, before any other read::

        PROXIES = trust_proxy_header_from(["10.0.0.5/32"])     # only HAProxy; others refused
        result = await read_proxy_header(reader, peer=writer.get_extra_info("peername"),
                                         policy=PROXIES, timeout_s=5.0)

    Args:
        reader: the connection's stream reader; on success it is positioned exactly after the
            header (or, when there was none, after ``result.leftover``).
        peer: the socket peer, e.g. ``writer.get_extra_info("peername")`` (a ``(host, port,
            ...)`` tuple), an address string or an :mod:`ipaddress` address, ``None`` if
            unknown. It chooses the policy and names the connection in errors.
        policy: a :class:`PeerPolicy` (a :class:`Policy` per network), or one :class:`Policy`
            for every peer (``Policy.REQUIRE`` is HAProxy's ``accept-proxy``: then only your
            proxies may reach the port).
        timeout_s: deadline in seconds for the whole header, however it is fragmented.
        max_header_bytes: refuse larger headers before reading their body; at least 232 (the
            spec's minimum receive buffer), at most 65551 (the v2 maximum).
        limits: the codec's limits (:class:`~sim.proxy_protocol.DecodeLimits`; ``None``:
            HAProxy's, 1024 bytes per TLV value). Its ``max_v2_header_size`` also caps the size.

    Returns:
        A :class:`ProxyHeaderResult`. A header with ``command`` LOCAL (health checks, FACTS H4)
        carries no addresses: use the socket's own addresses then, as the spec says.

    Raises:
        ProxyHeaderError: one of its subclasses, for everything the peer can cause:
            :class:`UntrustedPeer`, :class:`UntrustedProxyHeader`, :class:`MissingProxyHeader`,
            :class:`MalformedProxyHeader`, :class:`ProxyHeaderTooLarge`,
            :class:`ProxyHeaderTimeout`, :class:`ConnectionLost` (reset or EOF).
        ValueError, TypeError: bad arguments (checked before anything is read).

    After an exception the connection's first bytes are consumed: close it.
    """
    if timeout_s.__class__ not in (int, float) or not timeout_s > 0:
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    if not isinstance(policy, PeerPolicy | Policy):
        raise TypeError(f"policy must be a PeerPolicy or a Policy, got {policy!r}")
    if max_header_bytes.__class__ is not int or not (
        _SPEC_MIN_BUFFER <= max_header_bytes <= V2_MAX_HEADER
    ):
        raise ValueError(
            f"max_header_bytes must be an int between {_SPEC_MIN_BUFFER} and {V2_MAX_HEADER}, "
            f"got {max_header_bytes!r}"
        )
    if limits is not None and limits.__class__ is not DecodeLimits:
        raise TypeError(f"limits must be a DecodeLimits or None, got {limits!r}")
    limits = limits or DecodeLimits()
    max_size = min(max_header_bytes, limits.max_v2_header_size)
    applied = policy if isinstance(policy, Policy) else policy.for_peer(peer)
    if applied is Policy.DENY:
        raise UntrustedPeer(
            f"peer: {_who(peer)} may not connect here (policy DENY: in no trusted range)",
            peer=peer,
            received=0,
            field="peer",
        )
    if applied is Policy.SKIP:
        return ProxyHeaderResult(header=None, leftover=b"", raw=b"", policy=applied)
    # The size is checked here, from the length field, so that the body is never read.
    decoder = Decoder(replace(limits, max_v2_header_size=V2_MAX_HEADER))
    got = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            return await _read(reader, decoder, got, peer, applied, max_size)
    except TimeoutError:
        raise ProxyHeaderTimeout(timeout_s, peer=peer, received=len(got)) from None


async def _read(
    reader: asyncio.StreamReader,
    decoder: Decoder,
    got: bytearray,
    peer: PeerLike,
    applied: Policy,
    max_size: int,
) -> ProxyHeaderResult:
    while True:
        try:
            # read(n) returns as soon as any byte is there, so a short payload from a peer
            # without a header cannot stall the sniffing; n never reaches past a header.
            chunk = await reader.read(decoder.next_read_size)
        except OSError as exc:  # ConnectionResetError, BrokenPipeError, ssl.SSLError, ...
            raise ConnectionLost(
                f"header: the connection from {_who(peer)} failed after {len(got)} byte(s), "
                f"before the {_what(decoder)} header was complete ({type(exc).__name__}: {exc})",
                peer=peer,
                received=len(got),
                reset=True,
            ) from None
        if not chunk:
            if decoder.version is None and applied is not Policy.REQUIRE:
                # No signature: the bytes (maybe none) are payload, for a policy that allows it.
                return ProxyHeaderResult(header=None, leftover=bytes(got), raw=b"", policy=applied)
            raise ConnectionLost(
                f"header: {_who(peer)} closed the connection after {len(got)} byte(s), before "
                f"the {_what(decoder)} header was complete",
                peer=peer,
                received=len(got),
                reset=False,
            )
        got += chunk
        try:
            header = decoder.feed(chunk)
        except ProxyProtocolError as exc:
            if decoder.version is None:  # no signature: this connection has no header
                if applied is not Policy.REQUIRE:
                    return ProxyHeaderResult(
                        header=None, leftover=bytes(got), raw=b"", policy=applied
                    )
                offset = exc.offset or 0
                raise MissingProxyHeader(
                    f"signature: no PROXY header from {_who(peer)} (policy REQUIRE): byte "
                    f"{bytes(got[offset : offset + 1])!r} matches neither 'PROXY ' nor the v2 "
                    "signature",
                    peer=peer,
                    received=len(got),
                    offset=offset,
                    field="signature",
                ) from None
            if applied is Policy.REJECT:
                raise _untrusted(decoder, peer, len(got)) from None
            malformed = MalformedProxyHeader(
                str(exc), peer=peer, received=len(got), field=exc.field
            )
            malformed.offset = exc.offset
            raise malformed from None
        if decoder.version is not None and applied is Policy.REJECT:
            raise _untrusted(decoder, peer, len(got))
        size = decoder.header_size
        if size is not None and size > max_size:
            raise ProxyHeaderTooLarge(
                f"length: the v2 header would be {size} bytes, more than "
                f"max_header_bytes={max_size}",
                peer=peer,
                received=len(got),
                offset=14,
                field="length",
            )
        if header is not None:
            raw = bytes(got[:size])
            if applied is Policy.IGNORE:
                return ProxyHeaderResult(header=None, leftover=b"", raw=raw, policy=applied)
            return ProxyHeaderResult(header=header, leftover=b"", raw=raw, policy=applied)
