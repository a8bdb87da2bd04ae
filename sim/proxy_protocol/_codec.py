"""The two entry points, :func:`decode` and :func:`encode` (sans-I/O, like h11).

``decode`` never reads a socket: it looks at the bytes it is given and answers a header and
the number of bytes it used, ``None`` ("need more data": the caller keeps its buffer, reads
more and calls again), or raises :class:`ProxyProtocolError`. Nothing else ever escapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._header import ProxyHeader, set_wire
from ._types import V1_MAX_LINE, V1_PREFIX, V2_FIXED_SIZE, V2_MAX_HEADER, V2_SIGNATURE
from ._types import ProxyProtocolError as _Error
from ._v1 import decode_v1, encode_v1
from ._v2 import decode_v2, encode_v2

Buffer = bytes | bytearray | memoryview
# Enough TLVs to fill a maximal header with empty values (65535 // 3): no limit by default.
DEFAULT_MAX_TLVS = 0xFFFF // 3

# Fast paths for the two headers HAProxy sends for every proxied IPv4 connection (FACTS H1,
# H3): v2 PROXY/TCP4 without TLVs (28 bytes) and the v1 TCP4 line. Anything else, and any
# error, goes through the general decoders, which give the precise error messages.
# §2.2: signature, ver/cmd 0x21 (v2 PROXY), family 0x11 (TCP4), length 12 (the block alone).
_V2_TCP4_HEAD = V2_SIGNATURE + b"\x21\x11\x00\x0c"
# §2.1: the canonical TCP4 line: decimal octets 0..255 and ports 0..65535 without leading
# zeros, single spaces, CRLF; ASCII classes only ([0-9], never \d). Matching it is the whole
# validation; anything it rejects goes to decode_v1 for the precise error. The octet and port
# patterns are written as prefix trees (each digit is read once, little backtracking): about
# 20 % faster in sre than a list of alternatives such as "25[0-5]|2[0-4][0-9]|...". Both
# accept exactly the canonical numbers (tests/test_proxy_protocol_fast.py checks every one).
#   octet: 1, 1x, 1xx | 2, 2[0-4]x?, 25[0-5]?, 2[6-9] | [3-9]x? | 0
_OCTET = rb"(?:1[0-9]{0,2}|2(?:[0-4][0-9]?|5[0-5]?|[6-9])?|[3-9][0-9]?|0)"
#   port: [1-5]x{0,4} | 6 followed by what keeps it <= 65535 | [7-9]x{0,3} | 0
_PORT = (
    rb"(?:[1-5][0-9]{0,4}"
    rb"|6(?:[0-4][0-9]{0,3}|5(?:[0-4][0-9]{0,2}|5(?:[0-2][0-9]?|3[0-5]?|[4-9])?|[6-9][0-9]?)?"
    rb"|[6-9][0-9]{0,2})?"
    rb"|[7-9][0-9]{0,3}|0)"
)
# The four octets written out: a repeated group "(?:...){3}" is about 20 % slower in sre.
_IPV4 = rb"\.".join([_OCTET] * 4)
_V1_TCP4_LINE = re.compile(
    rb"PROXY TCP4 " + _IPV4 + rb" " + _IPV4 + rb" " + _PORT + rb" " + _PORT + rb"\r\n"
).match
_new = object.__new__
_set_wire = set_wire


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
        f"signature: byte 0x{data[0]:02x} cannot start {allowed}: no PROXY header (FACTS E5)",
        offset=0,
        field="signature",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodeLimits:
    """What a listener accepts, beyond the protocol's own rules (pass to :func:`decode`).

    Attributes:
        max_v2_header_size: reject a v2 header whose announced size (16 + length) is larger,
            as soon as the 16 fixed bytes are in. 16..65551, default 65551 (the protocol
            maximum). HAProxy, for one, only accepts what fits its buffer.
        max_v1_line_size: the longest v1 line accepted, CRLF included; 15..107, default 107
            (§2.1: "If the CRLF sequence is not found in the first 107 characters, the
            receiver should declare the line invalid").
        max_tlvs: reject a v2 header with more TLVs; 0..21845, default 21845 (no practical
            limit: that many empty TLVs fill a maximal header).
        allow_v1: accept v1 headers (like Envoy's ``allowed_versions``, FACTS E2).
        allow_v2: accept v2 headers.

    Raises:
        ProxyProtocolError: a value out of range (the message names the field).
    """

    max_v2_header_size: int = V2_MAX_HEADER
    max_v1_line_size: int = V1_MAX_LINE
    max_tlvs: int = DEFAULT_MAX_TLVS
    allow_v1: bool = True
    allow_v2: bool = True

    def __post_init__(self) -> None:
        _check_limits(self.max_v2_header_size, self.max_v1_line_size, self.max_tlvs)
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

    Args:
        data: the first bytes received on a connection (more than the header is fine: the rest
            is not looked at).
        limits: what the listener accepts beyond the protocol's rules (:class:`DecodeLimits`);
            ``None`` means the protocol maximums and both versions. One object rather than
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
    # From here on the limits are the protocol maximums, which the fast paths rely on.
    # The 16 fixed bytes of v2 PROXY/TCP4 without TLVs (length 12) validate the whole
    # header: the address block has no invalid values. Fields are built on first read.
    if buf[:16] == _V2_TCP4_HEAD:
        n = len(buf)
        if n == 28:
            wire = buf
        elif n > 28:
            wire = buf[:28]  # keep only the header, not the caller's stream
        else:
            return None  # a valid prefix: the address block is still to come
        h = _new(ProxyHeader)
        _set_wire(h, wire)
        return h, 28
    if buf[:12] == V2_SIGNATURE:
        # Literals, not the named constants: this runs for every connection.
        return decode_v2(buf, len(buf), 65551, 21845)
    m = _V1_TCP4_LINE(buf)
    if m is not None:
        # The matched line (at most 107 bytes by construction); the same object as buf
        # when buf holds just the header.
        wire = m.group()
        h = _new(ProxyHeader)
        _set_wire(h, wire)
        return h, len(wire)
    if buf[:6] == V1_PREFIX:
        return decode_v1(buf, len(buf), 107)
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
        return decode_v2(buf, len(buf), limits.max_v2_header_size, limits.max_tlvs)
    if limits.allow_v1 and buf[:6] == V1_PREFIX:
        return decode_v1(buf, len(buf), limits.max_v1_line_size)
    _undetermined(buf, limits.allow_v1, limits.allow_v2)
    return None


def _check_limits(max_v2: object, max_v1: object, max_tlvs: object) -> None:
    for name, value, low, high in (
        ("max_v2_header_size", max_v2, V2_FIXED_SIZE, V2_MAX_HEADER),
        ("max_v1_line_size", max_v1, 15, V1_MAX_LINE),
        ("max_tlvs", max_tlvs, 0, DEFAULT_MAX_TLVS),
    ):
        if value.__class__ is not int or not low <= value <= high:
            raise _Error(f"{name}: must be an int in {low}..{high}, got {value!r}", field=name)


def encode(header: ProxyHeader, *, crc32c: bool = False) -> bytes:
    """Serialize ``header`` (v1 or v2 by ``header.version``).

    ``crc32c=True`` appends a PP2_TYPE_CRC32C TLV (v2 only) holding the checksum of the
    whole header (§2.2.3). A CRC32C TLV already in ``header.tlvs`` always gets its value
    recomputed, so the output never carries a stale checksum.
    ``decode(encode(h)) == (h, len(encode(h)))`` for every valid header ``h`` (with the
    CRC32C TLV added when ``crc32c=True``).
    """
    if not isinstance(header, ProxyHeader):
        raise _Error(f"header: expected a ProxyHeader, got {type(header).__name__}", field="header")
    if header.version == 1:
        if crc32c:
            raise _Error("crc32c: v1 headers have no TLVs, so no checksum", field="crc32c")
        return encode_v1(header)
    return encode_v2(header, crc32c)
