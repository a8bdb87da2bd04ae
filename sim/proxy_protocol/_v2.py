"""PROXY protocol version 2: the binary header (spec §2.2, FACTS H3, H4).

Layout: 12-byte signature, ver/cmd byte (high nibble 2, low nibble 0 LOCAL / 1 PROXY), family
byte, 16-bit big-endian length of what follows, the address block for the family, then TLVs
up to the announced length.

LOCAL (§2.2): "the receiver must accept this connection as valid and must use the real
connection endpoints and discard the protocol block including the family which is ignored", and
receivers "must not assume zero is presented for LOCAL connections". So for LOCAL only the
signature, the version and the length matter: any family byte and any body within the length
is accepted, as HAProxy's ``conn_recv_proxy()`` does (it skips a LOCAL header's body unread).
What ``tlvs`` shows then is decided by :func:`local_layout`.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from crc32c import crc32c

from ._header import HeaderBuilder, ProxyHeader
from ._tlv import check_authority, check_value, duplicate_error
from ._types import (
    ADDRESS_BLOCK_SIZE,
    FAMILY_BY_VALUE,
    FAST_ADDRESSES,
    ONCE_ONLY_TYPES,
    TLV,
    TLV_HEADER_SIZE,
    TLV_TYPE_OBJECT,
    UNIX_PATH_SIZE,
    V2_FIXED_SIZE,
    V2_SIGNATURE,
    Command,
    Family,
    ProxyProtocolError,
    ipv4_from_int,
    ipv6_from_int,
    tlv_type_name,
)

_FIXED = struct.Struct("!BBH")
_PORTS = struct.Struct("!HH")
_TLV_HEAD = struct.Struct("!BH")
# Bytes 12-15: (ver/cmd << 8 | family) and the length, both 16-bit big-endian (§2.2).
_VER_FAM_LENGTH = struct.Struct("!HH").unpack_from
# §2.2: the inet4 block (src, dst, sport, dport).
_INET4 = struct.Struct("!IIHH").unpack_from
# The inet6 block as two 16-byte addresses (one int.from_bytes each: cheaper than four 64-bit
# halves joined by shifts) and the ports.
_INET6 = struct.Struct("!16s16sHH").unpack_from
_from_bytes = int.from_bytes  # big-endian by default (3.11+)
# The whole 28-byte TCP4/UDP4 header without TLVs, packed in one call (the common case).
_INET4_HEADER = struct.Struct("!16sIIHH")
_TCP4_HEAD = V2_SIGNATURE + b"\x21\x11\x00\x0c"  # v2 PROXY, TCP4, length 12
_INET4_BLOCK = struct.Struct("!IIHH")
_CRC_PLACEHOLDER = b"\x03\x00\x04\x00\x00\x00\x00"
_PROXY = Command.PROXY
_LOCAL = Command.LOCAL
# Module constants: reading Family.TCP4 through the enum class costs about 70 ns on 3.11.
_TCP4 = Family.TCP4
_UNSPEC = Family.UNSPEC
_new = object.__new__
# For each TLV type byte: 1 << (type & 0x3F) for the once-only types (AUTHORITY 4, CRC32C 8,
# UNIQUE_ID 32, SSL 2**32, NETNS 2**48), else 0: one tuple index marks and identifies them.
ONCE_BIT = tuple((1 << (t & 0x3F)) if t in ONCE_ONLY_TYPES else 0 for t in range(256))
# §2.2: the first 14 bytes of a v2 PROXY header with an inet family (signature, ver/cmd 0x21,
# family) -> (address block size, family), for _codec.decode: one slice and one look-up check
# all 14 bytes and choose :func:`decode_inet`. Empty when addresses cannot be made fast (see
# FAST_ADDRESSES), so that decode_inet is never called then.
INET_LAYOUT: dict[bytes, tuple[int, Family]] = (
    {
        V2_SIGNATURE + bytes((0x21, fam)): (ADDRESS_BLOCK_SIZE[fam], FAMILY_BY_VALUE[fam])
        for fam in (0x11, 0x12, 0x21, 0x22)
    }
    if FAST_ADDRESSES
    else {}
)
# §2.2: for a PROXY header, (ver/cmd << 8 | family) -> (address block size, family): one
# look-up validates the version nibble, the command and the family together.
_PROXY_LAYOUT = {
    0x2100 | fam: (size, FAMILY_BY_VALUE[fam]) for fam, size in ADDRESS_BLOCK_SIZE.items()
}


def _bad_ver_cmd(byte: int) -> ProxyProtocolError:
    # §2.2: version "must always be sent as \x2 and the receiver must only accept this value";
    # commands other than 0 and 1 "must drop connections presenting unexpected values".
    if byte >> 4 != 2:
        return ProxyProtocolError(
            f"version: high nibble of byte 12 is {byte >> 4}, only 2 is defined",
            offset=12,
            field="version",
        )
    return ProxyProtocolError(
        f"command: low nibble of byte 12 is 0x{byte & 0xF:x}, only 0 (LOCAL) and 1 (PROXY) "
        "are defined",
        offset=12,
        field="command",
    )


def _bad_family(byte: int) -> ProxyProtocolError:
    return ProxyProtocolError(
        f"family: byte 0x{byte:02x} is not a defined family/transport (0x00, 0x11, 0x12, 0x21, "
        "0x22, 0x31, 0x32)",
        offset=13,
        field="family",
    )


def check_partial_fixed(data: bytes, n: int) -> None:
    """Raise early on a bad ver/cmd or family byte of an incomplete 16-byte fixed header."""
    if n > 12:
        ver_cmd = data[12]
        if ver_cmd not in (0x20, 0x21):
            raise _bad_ver_cmd(ver_cmd)
        # LOCAL ignores the family byte (§2.2); PROXY needs a defined one.
        if n > 13 and ver_cmd == 0x21 and data[13] not in FAMILY_BY_VALUE:
            raise _bad_family(data[13])


def _unix_path(data: bytes, start: int, name: str) -> str:
    # §2.2: AF_UNIX addresses are 108-byte sun_path buffers; the path ends at the first NUL.
    raw = data[start : start + UNIX_PATH_SIZE]
    nul = raw.find(b"\x00")
    if nul >= 0:
        raw = raw[:nul]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProxyProtocolError(
            f"{name}: UNIX path is not valid UTF-8", offset=start + exc.start, field=name
        ) from None


def walk_tlvs(data: bytes, pos: int, end: int, max_tlvs: int, max_value: int) -> tuple[TLV, ...]:
    """Validate the TLVs in ``data[pos:end]`` in wire order and build them (one pass).

    Every rule is checked here, so the header's typed views never raise: structure, the
    caller's limits, a second TLV of a once-only type, each type's content rule, the CRC32C.
    """
    out: list[TLV] = []
    append = out.append
    seen = 0  # bit t & 0x3F set for each once-only type t seen (their values differ there)
    crc_at = 0
    # 65535 bytes cannot hold more than 21845 TLVs: count only when the limit can be reached.
    count = (end - pos) // TLV_HEADER_SIZE > max_tlvs
    types = TLV_TYPE_OBJECT
    once = ONCE_ONLY_TYPES
    while pos < end:
        if count and len(out) >= max_tlvs:
            raise ProxyProtocolError(
                f"tlvs: more than max_tlvs={max_tlvs} TLVs", offset=pos, field="tlvs"
            )
        vstart = pos + TLV_HEADER_SIZE
        if vstart > end:
            raise ProxyProtocolError(
                f"tlv[{len(out)}]: {end - pos} byte(s) left before the header end cannot hold "
                "a 3-byte TLV header",
                offset=pos,
                field="tlvs",
            )
        type_ = data[pos]
        length = (data[pos + 1] << 8) | data[pos + 2]
        vend = vstart + length
        if vend > end:
            raise ProxyProtocolError(
                f"tlv[{len(out)}].length: value of {length} bytes overruns the header "
                f"(ends at {end}) by {vend - end}",
                offset=pos + 1,
                field="tlvs",
            )
        if length > max_value:
            raise ProxyProtocolError(
                f"tlv[{len(out)}].length: {tlv_type_name(type_)} value of {length} bytes is "
                f"over max_tlv_value_size={max_value}",
                offset=pos + 1,
                field="tlvs",
            )
        value = data[vstart:vend]
        if type_ in once:
            bit = 1 << (type_ & 0x3F)
            if seen & bit:
                raise duplicate_error(type_, len(out), pos)
            seen |= bit
            if type_ == 0x02:
                check_authority(value, len(out), vstart)
            elif type_ == 0x03:
                if length != 4:
                    check_value(type_, value, len(out), vstart)
                crc_at = vstart
            elif type_ != 0x05 or length > 128:
                check_value(type_, value, len(out), vstart)
        tlv = _new(TLV)
        tlv._type = types[type_]
        tlv._value = value
        append(tlv)
        pos = vend
    if crc_at:
        verify_crc32c(data, end, crc_at)
    return tuple(out)


def verify_crc32c(data: bytes, end: int, crc_at: int) -> None:
    # §2.2.3: zero the 32-bit checksum field, CRC32c the whole header, compare.
    received = int.from_bytes(data[crc_at : crc_at + 4], "big")
    crc = crc32c(data[:crc_at])
    crc = crc32c(b"\x00\x00\x00\x00", crc)
    crc = crc32c(data[crc_at + 4 : end], crc)
    if crc != received:
        raise ProxyProtocolError(
            f"crc32c: received 0x{received:08x}, computed 0x{crc:08x} over the header",
            offset=crc_at,
            field="crc32c",
        )


def local_layout(
    data: bytes, end: int, max_tlvs: int, max_value: int
) -> tuple[Family, int, tuple[TLV, ...] | None]:
    """How a LOCAL header's body is read: (family, skipped address block, TLVs or ``None``).

    The family is the defined family byte, or UNSPEC for an undefined one (it is ignored).
    When the length covers the family's address block, that block is skipped (a sender may
    zero it, as our encoder does when it has TLVs to place after it); a shorter body has no
    block. The rest is read as TLVs under every rule that applies to PROXY headers, CRC32C
    included; if it is not a valid TLV list, the TLVs are ``None`` and the body is discarded.
    """
    family = FAMILY_BY_VALUE.get(data[13], _UNSPEC)
    block = ADDRESS_BLOCK_SIZE[family]
    if end - V2_FIXED_SIZE < block:
        block = 0
    try:
        tlvs = walk_tlvs(data, V2_FIXED_SIZE + block, end, max_tlvs, max_value)
    except ProxyProtocolError:
        return family, block, None
    return family, block, tlvs


def decode_v2(
    data: bytes, n: int, max_size: int, max_tlvs: int, max_value: int
) -> tuple[ProxyHeader, int] | None:
    """Decode a v2 header; ``data`` starts with the full 12-byte signature.

    Written for speed, because it runs for every connection: the TLVs are read by a first
    pass that builds them and checks only what is cheap (duplicates, AUTHORITY in ASCII,
    sizes; SSL and NETNS through their checkers). At the first doubt (a TLV that overruns, a
    duplicate, a value to look at more closely, a limit that could be reached) it stops, and
    :func:`walk_tlvs` redoes the work in wire order and raises the precise error.
    """
    if n < V2_FIXED_SIZE:
        check_partial_fixed(data, n)
        return None
    ver_fam, length = _VER_FAM_LENGTH(data, 12)
    end = V2_FIXED_SIZE + length
    layout = _PROXY_LAYOUT.get(ver_fam)
    if layout is None:
        ver_cmd = ver_fam >> 8
        if ver_cmd != 0x20:
            raise _bad_family(ver_fam & 0xFF) if ver_cmd == 0x21 else _bad_ver_cmd(ver_cmd)
        if end > max_size:
            raise _too_large(end, max_size)
        if n < end:
            return None
        return _decode_local(data, end, max_tlvs, max_value), end
    block, family = layout
    if end > max_size:
        raise _too_large(end, max_size)
    if length < block:
        raise ProxyProtocolError(
            f"length: {length} is shorter than the {block}-byte {family.name} address block",
            offset=14,
            field="length",
        )
    if n < end:
        return None
    h = HeaderBuilder()
    h.version = 2
    h.command = _PROXY
    h.family = family
    h._ssl_view = None
    if block == 12:
        src, dst, h.src_port, h.dst_port = _INET4(data, 16)
        if FAST_ADDRESSES:
            # ipv4_from_int inlined: a call costs about as much as the object.
            a = _new(IPv4Address)
            a._ip = src  # type: ignore[attr-defined]
            b = _new(IPv4Address)
            b._ip = dst  # type: ignore[attr-defined]
            h.src_addr = a
            h.dst_addr = b
        else:  # pragma: no cover
            h.src_addr, h.dst_addr = ipv4_from_int(src), ipv4_from_int(dst)
    elif block == 36:
        src6, dst6, h.src_port, h.dst_port = _INET6(data, 16)
        if FAST_ADDRESSES:
            a6 = _new(IPv6Address)
            a6._ip = _from_bytes(src6)  # type: ignore[attr-defined]
            a6._scope_id = None  # type: ignore[attr-defined]
            b6 = _new(IPv6Address)
            b6._ip = _from_bytes(dst6)  # type: ignore[attr-defined]
            b6._scope_id = None  # type: ignore[attr-defined]
            h.src_addr = a6
            h.dst_addr = b6
        else:  # pragma: no cover
            h.src_addr = ipv6_from_int(_from_bytes(src6))
            h.dst_addr = ipv6_from_int(_from_bytes(dst6))
    else:
        _other_addresses(h, data, block)
    pos = V2_FIXED_SIZE + block
    if pos == end:
        h.tlvs = ()
    else:
        tlvs = _first_pass(data, pos, end, max_tlvs, max_value)
        h.tlvs = walk_tlvs(data, pos, end, max_tlvs, max_value) if tlvs is None else tlvs
    h.__class__ = ProxyHeader  # type: ignore[assignment]  # layout twin, see HeaderBuilder
    return h, end  # type: ignore[return-value]


def decode_inet(data: bytes, layout: tuple[int, Family]) -> tuple[ProxyHeader, int] | None:
    """The common v2 header, fast: PROXY over TCP/UDP 4 or 6, TLVs whose rules are cheap.

    ``data`` starts with the 14 bytes ``layout`` was found by in :data:`INET_LAYOUT`; the
    limits are the defaults. ``None`` means "not this kind" (an error, more bytes needed,
    CRC32C, SSL or NETNS TLVs, a doubtful AUTHORITY, TLVs near a limit): :func:`decode_v2`
    then gives the same result or the precise error (tests compare the two on random input).
    """
    block, family = layout
    try:
        length = (data[14] << 8) | data[15]
    except IndexError:  # fewer than 16 bytes
        return None
    end = V2_FIXED_SIZE + length
    # At most 1027 bytes of TLVs: no value can exceed the default 1024-byte limit, the header
    # stays far below the 16 KiB one, and the TLVs cannot reach the count limit.
    if len(data) < end or length < block or length - block > 1027:
        return None
    h = HeaderBuilder()
    h.version = 2
    h.command = _PROXY
    h.family = family
    h._ssl_view = None
    a: Any  # IPv4Address or IPv6Address, built from their stored int (see FAST_ADDRESSES)
    b: Any
    if block == 12:
        src, dst, h.src_port, h.dst_port = _INET4(data, 16)
        a = _new(IPv4Address)
        a._ip = src
        b = _new(IPv4Address)
        b._ip = dst
    else:
        src6, dst6, h.src_port, h.dst_port = _INET6(data, 16)
        a = _new(IPv6Address)
        a._ip = _from_bytes(src6)
        a._scope_id = None
        b = _new(IPv6Address)
        b._ip = _from_bytes(dst6)
        b._scope_id = None
    h.src_addr = a
    h.dst_addr = b
    if length == block:  # no TLVs, as HAProxy's send-proxy-v2 sends by default
        h.tlvs = ()
        h.__class__ = ProxyHeader  # type: ignore[assignment]  # layout twin, see HeaderBuilder
        return h, end  # type: ignore[return-value]
    out: list[TLV] = []  # the loop is _first_pass's, inlined: a call is 3 % of the TLV row
    append = out.append
    types = TLV_TYPE_OBJECT
    kinds = ONCE_BIT
    seen = 0
    p = V2_FIXED_SIZE + block
    try:
        while p < end:
            type_ = data[p]
            size = (data[p + 1] << 8) | data[p + 2]
            vstart = p + TLV_HEADER_SIZE
            p = vstart + size
            tlv = _new(TLV)  # see TLV: no __init__, two slot stores
            tlv._type = types[type_]
            tlv._value = value = data[vstart:p]
            append(tlv)
            kind = kinds[type_]
            if kind:  # a once-only type: its bit, see ONCE_BIT
                if seen & kind:
                    return None
                seen |= kind
                if kind == 4:  # AUTHORITY: at most 255 bytes of ASCII without NUL, CR or LF
                    if size > 255 or not value.isascii() or 0x00 in value:
                        return None
                    if 0x0D in value or 0x0A in value:
                        return None
                elif kind != 32 or size > 128:  # UNIQUE_ID; CRC32C, SSL, NETNS: no
                    return None
    except IndexError:
        return None
    if p != end:
        return None
    h.tlvs = tuple(out)
    h.__class__ = ProxyHeader  # type: ignore[assignment]  # layout twin, see HeaderBuilder
    return h, end  # type: ignore[return-value]


def _other_addresses(h: HeaderBuilder, data: bytes, block: int) -> None:
    """The UNIX (a 216-byte block) or UNSPEC (no block) addresses of a v2 PROXY header."""
    if block:
        h.src_addr = _unix_path(data, 16, "src_addr")
        h.dst_addr = _unix_path(data, 16 + UNIX_PATH_SIZE, "dst_addr")
        h.src_port = h.dst_port = None
    else:
        # UNSPEC: "the receiver should ignore address information" (§2.2).
        h.src_addr = h.dst_addr = h.src_port = h.dst_port = None


def _first_pass(
    data: bytes, pos: int, end: int, max_tlvs: int, max_value: int
) -> tuple[TLV, ...] | None:
    """Build the TLVs of ``data[pos:end]``, checking only what is cheap; ``None`` at a doubt.

    The fast pass of :func:`decode_v2`: duplicates, AUTHORITY in ASCII, sizes, SSL and NETNS
    through their checkers. At the first doubt (a TLV that overruns, a duplicate, a value to
    look at more closely, a limit that could be reached) it gives up, and :func:`walk_tlvs`
    redoes the work in wire order and raises the precise error.
    """
    tlvs = None
    area = end - pos
    if area <= max_value + TLV_HEADER_SIZE and area // TLV_HEADER_SIZE <= max_tlvs:
        out: list[TLV] = []
        append = out.append
        types = TLV_TYPE_OBJECT
        kinds = ONCE_BIT
        seen = 0
        crc_at = 0
        p = pos
        try:
            while p < end:
                type_ = data[p]
                vstart = p + TLV_HEADER_SIZE
                p = vstart + ((data[p + 1] << 8) | data[p + 2])
                tlv = _new(TLV)  # see TLV: no __init__, two slot stores
                tlv._type = types[type_]
                tlv._value = value = data[vstart:p]
                append(tlv)
                kind = kinds[type_]
                if kind:  # a once-only type: its bit, see ONCE_BIT
                    if seen & kind:
                        break
                    seen |= kind
                    if kind == 4:  # AUTHORITY; anything unusual goes to check_authority
                        if (
                            p - vstart > 255
                            or not value.isascii()
                            or 0x00 in value
                            or 0x0D in value
                            or 0x0A in value
                        ):
                            break
                    elif kind == 32:  # UNIQUE_ID
                        if p - vstart > 128:
                            break
                    elif kind == 8:  # CRC32C
                        if p - vstart != 4:
                            break
                        crc_at = vstart
                    elif p > end:  # SSL, NETNS: their checkers raise, so the TLV must fit
                        break
                    else:  # every earlier TLV is fine, so their error is the first one
                        check_value(type_, value, len(out) - 1, vstart)
            else:
                if p == end:
                    if crc_at:
                        verify_crc32c(data, end, crc_at)
                    tlvs = tuple(out)
        except IndexError:
            pass
    return tlvs


def _too_large(end: int, max_size: int) -> ProxyProtocolError:
    return ProxyProtocolError(
        f"length: header of {end} bytes exceeds max_v2_header_size={max_size}",
        offset=14,
        field="length",
    )


def _decode_local(data: bytes, end: int, max_tlvs: int, max_value: int) -> ProxyHeader:
    family, _, tlvs = local_layout(data, end, max_tlvs, max_value)
    h = HeaderBuilder()
    h.version = 2
    h.command = _LOCAL
    h.family = family
    h.src_addr = h.dst_addr = h.src_port = h.dst_port = None
    h.tlvs = () if tlvs is None else tlvs
    h._ssl_view = None
    h.__class__ = ProxyHeader  # type: ignore[assignment]  # layout twin, see HeaderBuilder
    return h  # type: ignore[return-value]


def _address_block(h: ProxyHeader) -> bytes:
    family = h.family
    block = ADDRESS_BLOCK_SIZE[family]
    if not block:
        return b""
    if h.command is _LOCAL:
        # §2.2: a LOCAL sender "should not present any address". Without TLVs we write none
        # (length 0); with TLVs a zeroed block keeps them where a receiver that honours the
        # family (ours, among others) looks for them.
        return bytes(block) if h.tlvs else b""
    src: Any = h.src_addr
    dst: Any = h.dst_addr
    block_bytes: bytes
    if block == 2 * UNIX_PATH_SIZE:
        block_bytes = src.encode("utf-8").ljust(UNIX_PATH_SIZE, b"\x00") + dst.encode(
            "utf-8"
        ).ljust(UNIX_PATH_SIZE, b"\x00")
    elif block == 12:
        # .packed costs a to_bytes call per address; __int__() returns the stored int (see
        # _v1.encode_v1 for why not int(addr)).
        block_bytes = _INET4_BLOCK.pack(src.__int__(), dst.__int__(), h.src_port, h.dst_port)
    else:
        block_bytes = src.packed + dst.packed + _PORTS.pack(h.src_port, h.dst_port)
    return block_bytes


def encode_v2(h: ProxyHeader, crc: bool) -> bytes:
    """Serialize a validated v2 header; ``crc`` appends a CRC32C TLV when none is present."""
    tlvs = h.tlvs
    fam = h.family
    if not tlvs and not crc and fam is _TCP4 and h.command is _PROXY:
        src: Any = h.src_addr
        dst: Any = h.dst_addr
        return _INET4_HEADER.pack(_TCP4_HEAD, src.__int__(), dst.__int__(), h.src_port, h.dst_port)
    addr = _address_block(h)
    if crc and not addr and h.command is _LOCAL and ADDRESS_BLOCK_SIZE[fam]:
        addr = bytes(ADDRESS_BLOCK_SIZE[fam])  # the CRC32C TLV goes after the block
    parts = [addr]
    pos = V2_FIXED_SIZE + len(addr)
    crc_at = -1
    for tlv in tlvs:
        value = tlv._value
        if tlv._type == 0x03:  # TLVType.CRC32C (a literal: see _TCP4)
            # A CRC32C TLV always gets the correct checksum written, never a stale value.
            crc_at = pos + TLV_HEADER_SIZE
            value = b"\x00\x00\x00\x00"
        parts.append(_TLV_HEAD.pack(tlv._type, len(value)))
        parts.append(value)
        pos += TLV_HEADER_SIZE + len(value)
    if crc and crc_at < 0:
        parts.append(_CRC_PLACEHOLDER)
        crc_at = pos + TLV_HEADER_SIZE
        pos += len(_CRC_PLACEHOLDER)
    length = pos - V2_FIXED_SIZE
    if length > 0xFFFF:
        raise ProxyProtocolError(
            f"length: address block + TLVs = {length} bytes, over the 65535 limit", field="length"
        )
    out = V2_SIGNATURE + _FIXED.pack(0x20 | h.command, fam, length) + b"".join(parts)
    if crc_at >= 0:
        out = out[:crc_at] + crc32c(out).to_bytes(4, "big") + out[crc_at + 4 :]
    return out
