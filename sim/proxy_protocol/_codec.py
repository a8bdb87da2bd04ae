"""The two entry points, :func:`decode` and :func:`encode` (sans-I/O, like h11).

``decode`` never reads a socket: it looks at the bytes it is given and answers a header and
the number of bytes it used, ``None`` ("need more data": the caller keeps its buffer, reads
more and calls again), or raises :class:`ProxyProtocolError`. Nothing else ever escapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from ._header import HeaderBuilder, ProxyHeader
from ._types import (
    FAST_ADDRESSES,
    HAPROXY_MAX_HEADER,
    HAPROXY_MAX_TLV_VALUE,
    V1_MAX_LINE,
    V1_PREFIX,
    V2_FIXED_SIZE,
    V2_MAX_HEADER,
    V2_SIGNATURE,
    Command,
    Family,
)
from ._types import ProxyProtocolError as _Error
from ._v1 import _O0, _O8, _O16, _O24, TCP4_LINE, decode_v1, encode_v1
from ._v2 import INET_LAYOUT, decode_inet, decode_v2, encode_v2

Buffer = bytes | bytearray | memoryview
# Enough TLVs to fill a maximal header with empty values (65535 // 3): no limit by default.
DEFAULT_MAX_TLVS = 0xFFFF // 3

# Fast paths for the headers HAProxy sends for proxied connections (FACTS H1, H3): the
# canonical v1 TCP4 line, and v2 PROXY over TCP/UDP 4/6 with TLVs whose rules are cheap to
# check. Anything else, and any error, goes through the general decoders, which give the
# precise error messages.
_INET_LAYOUT = INET_LAYOUT
_tcp4_line = TCP4_LINE
_decode_v2 = decode_v2
_decode_inet = decode_inet
_new = object.__new__
_HeaderBuilder: Any = HeaderBuilder
_IPv4Address: Any = IPv4Address
_FAST_ADDRESSES = FAST_ADDRESSES
_PROXY = Command.PROXY
_TCP4 = Family.TCP4


def _as_bytes(data: object) -> bytes:
    try:
        view = memoryview(data)  # type: ignore[arg-type]
        if view.itemsize != 1 or view.ndim != 1:
            view = view.cast("B")
        # Copy at most one maximal header, however large the caller's stream buffer is.
        return bytes(view[:V2_MAX_HEADER])
    except (TypeError, ValueError):
        raise _Error(
            f"data: expected bytes, bytearray or memoryview, got {type(data).__name__}",
            field="data",
        ) from None


def _undetermined(data: bytes, allow_v1: bool, allow_v2: bool) -> None:
    """``data`` matches neither full prefix: a shorter prefix means "need more"."""
    n = len(data)
    if not n:
        return None
    candidates = []
    if allow_v1:
        candidates.append(V1_PREFIX)
    if allow_v2:
        candidates.append(V2_SIGNATURE)
    for sig in candidates:
        if data[0] == sig[0]:
            for i in range(1, min(n, len(sig))):
                if data[i] != sig[i]:
                    name = "signature" if sig is V2_SIGNATURE else "line"
                    what = "the v2 signature" if sig is V2_SIGNATURE else "'PROXY '"
                    raise _Error(
                        f"{name}: byte 0x{data[i]:02x} does not continue {what}",
                        offset=i,
                        field=name,
                    )
            return None  # a proper prefix of a signature
    allowed = " or ".join(
        s for s, ok in (("'PROXY ' (v1)", allow_v1), ("the v2 signature", allow_v2)) if ok
    )
    raise _Error(
        f"signature: byte 0x{data[0]:02x} cannot start {allowed}: not a PROXY header",
        offset=0,
        field="signature",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodeLimits:
    """What a listener accepts, beyond the protocol's own rules (pass to :func:`decode`).

    The defaults are what a real receiver accepts, HAProxy (``conn_recv_proxy()`` in its
    ``src/connection.c``): a header must fit its 16 KiB buffer and no TLV value may exceed
    1024 bytes. Raise them for a peer you know sends more; the protocol maximums are
    ``max_v2_header_size=65551, max_tlv_value_size=65535``.

    Attributes:
        max_v2_header_size: reject a v2 header whose announced size (16 + length) is larger,
            as soon as the 16 fixed bytes are in. 16..65551, default 16384 (HAProxy's
            ``tune.bufsize``).
        max_v1_line_size: the longest v1 line accepted, CRLF included; 15..107, default 107
            (§2.1: "If the CRLF sequence is not found in the first 107 characters, the
            receiver should declare the line invalid").
        max_tlvs: reject a v2 header with more TLVs; 0..21845, default 21845 (no practical
            limit: that many empty TLVs fill a maximal header).
        max_tlv_value_size: reject a TLV (SSL included) whose value is longer; 0..65535,
            default 1024 (HAProxy's ``HA_PP2_MAX_ALLOC``, "to prevent DoS"). The spec's own
            limits apply whatever this says: UNIQUE_ID <= 128 bytes, AUTHORITY <= 255.
        allow_v1: accept v1 headers (like Envoy's ``allowed_versions``, FACTS E2).
        allow_v2: accept v2 headers.

    Raises:
        ProxyProtocolError: a value out of range (the message names the field).
    """

    max_v2_header_size: int = HAPROXY_MAX_HEADER
    max_v1_line_size: int = V1_MAX_LINE
    max_tlvs: int = DEFAULT_MAX_TLVS
    max_tlv_value_size: int = HAPROXY_MAX_TLV_VALUE
    allow_v1: bool = True
    allow_v2: bool = True

    def __post_init__(self) -> None:
        _check_limits(
            self.max_v2_header_size,
            self.max_v1_line_size,
            self.max_tlvs,
            self.max_tlv_value_size,
        )
        for name in ("allow_v1", "allow_v2"):
            value = getattr(self, name)
            if value.__class__ is not bool:
                raise _Error(f"{name}: must be True or False, got {value!r}", field=name)
        if not (self.allow_v1 or self.allow_v2):
            raise _Error(
                "allow_v1, allow_v2: at least one version must be allowed", field="allow_v1"
            )


def decode(data: Buffer, limits: DecodeLimits | None = None) -> tuple[ProxyHeader, int] | None:
    """Decode the PROXY header at the start of ``data``.

    Every byte the spec constrains is checked and every field is built here, so reading the
    returned header's fields and typed views never raises. For a stream that arrives in pieces,
    :class:`~sim.proxy_protocol.Decoder` does the same work once per byte instead of once per
    call.

    Args:
        data: the first bytes received on a connection (more than the header is fine: the rest
            is not looked at).
        limits: what the listener accepts beyond the protocol's rules (:class:`DecodeLimits`);
            ``None`` means ``DecodeLimits()``, HAProxy's limits. One object rather than
            keyword arguments: it is a listener's configuration, made once, and a call with a
            single optional argument is ~50 ns cheaper than one with five defaults, which
            matters at one call per connection.

    Returns:
        ``(header, consumed)`` where ``consumed`` is the exact header length, or ``None`` when
        ``data`` is a valid prefix of a header and more bytes are needed.

    Raises:
        ProxyProtocolError: invalid bytes (the message names the field and the byte offset),
            or ``limits`` that is not a :class:`DecodeLimits`. No other exception escapes.
    """
    buf: bytes = data if data.__class__ is bytes else _as_bytes(data)
    if limits is not None:
        return _decode_limited(buf, limits)
    # From here on the limits are the defaults, which the literals below spell out. This is
    # the hot path of every connection, so the common headers are decoded inline or by one
    # call (each call saved is about 0.1 us, a twentieth of a TLV-carrying v2 header on the
    # benchmark machine); anything unusual goes to the general decoders, which give the same
    # results (tests compare them on random input) and the precise errors. Slices, == and
    # look-ups rather than startswith(): a method call costs twice as much.
    if not buf:
        return None
    if buf[0] == 0x50:  # "P": a v1 line (an index and an int compare: cheaper than a slice)
        m = _tcp4_line(buf)
        if m is not None:
            # The canonical TCP4 line: the match validated it; build the header here (a call
            # to _v1.tcp4_header costs a tenth of the whole decode).
            a, b, c, d, e, f, g, i, sport, dport = m.groups()
            h = _HeaderBuilder()
            if _FAST_ADDRESSES:
                src = _new(_IPv4Address)
                src._ip = _O24[a] | _O16[b] | _O8[c] | _O0[d]
                dst = _new(_IPv4Address)
                dst._ip = _O24[e] | _O16[f] | _O8[g] | _O0[i]
            else:  # pragma: no cover
                src = _IPv4Address(_O24[a] | _O16[b] | _O8[c] | _O0[d])
                dst = _IPv4Address(_O24[e] | _O16[f] | _O8[g] | _O0[i])
            h.version = 1
            h.command = _PROXY
            h.family = _TCP4
            h.src_addr = src
            h.dst_addr = dst
            h.src_port = int(sport)
            h.dst_port = int(dport)
            h.tlvs = ()
            h._ssl_view = None
            h.__class__ = ProxyHeader  # the layout twin becomes the real class (HeaderBuilder)
            header: ProxyHeader = h
            return header, m.end()
        if buf[:6] == V1_PREFIX:
            return decode_v1(buf, len(buf), 107)
        _undetermined(buf, True, True)  # "PROX" is a prefix; anything else raises
        return None
    # v2 PROXY over TCP/UDP 4/6: the first 14 bytes choose the layout and validate themselves.
    layout = _INET_LAYOUT.get(buf[:14])
    if layout is not None:
        fast = _decode_inet(buf, layout)
        if fast is not None:
            return fast
    if buf[:12] == V2_SIGNATURE:
        return _decode_v2(buf, len(buf), 16384, 21845, 1024)
    _undetermined(buf, True, True)
    return None


def _decode_limited(buf: bytes, limits: DecodeLimits) -> tuple[ProxyHeader, int] | None:
    """:func:`decode` with caller-chosen limits: the general decoders only."""
    if limits.__class__ is not DecodeLimits:
        raise _Error(
            f"limits: expected a DecodeLimits or None, got {type(limits).__name__}",
            field="limits",
        )
    if limits.allow_v2 and buf[:12] == V2_SIGNATURE:
        return decode_v2(
            buf,
            len(buf),
            limits.max_v2_header_size,
            limits.max_tlvs,
            limits.max_tlv_value_size,
        )
    if limits.allow_v1 and buf[:6] == V1_PREFIX:
        return decode_v1(buf, len(buf), limits.max_v1_line_size)
    _undetermined(buf, limits.allow_v1, limits.allow_v2)
    return None


def _check_limits(max_v2: object, max_v1: object, max_tlvs: object, max_value: object) -> None:
    for name, value, low, high in (
        ("max_v2_header_size", max_v2, V2_FIXED_SIZE, V2_MAX_HEADER),
        ("max_v1_line_size", max_v1, 15, V1_MAX_LINE),
        ("max_tlvs", max_tlvs, 0, DEFAULT_MAX_TLVS),
        ("max_tlv_value_size", max_value, 0, 0xFFFF),
    ):
        if value.__class__ is not int or not low <= value <= high:
            raise _Error(f"{name}: must be an int in {low}..{high}, got {value!r}", field=name)


def encode(header: ProxyHeader, *, crc32c: bool = False) -> bytes:
    """Serialize ``header`` (v1 or v2 by ``header.version``).

    ``crc32c=True`` appends a PP2_TYPE_CRC32C TLV (v2 only) holding the checksum of the
    whole header (§2.2.3). A CRC32C TLV already in ``header.tlvs`` always gets its value
    recomputed, so the output never carries a stale checksum. A LOCAL header without TLVs is
    written with length 0 (§2.2: a LOCAL sender "should not present any address").
    ``decode(encode(h)) == (h, len(encode(h)))`` for every valid header ``h`` within the
    decoder's limits (with the CRC32C TLV added when ``crc32c=True``).
    """
    if not isinstance(header, ProxyHeader):
        raise _Error(f"header: expected a ProxyHeader, got {type(header).__name__}", field="header")
    if header.version == 1:
        if crc32c:
            raise _Error("crc32c: v1 headers have no TLVs, so no checksum", field="crc32c")
        return encode_v1(header)
    return encode_v2(header, crc32c)
