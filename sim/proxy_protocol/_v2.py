"""PROXY protocol version 2: the binary header (spec §2.2, FACTS H3, H4).

Layout: 12-byte signature, ver/cmd byte (high nibble 2, low nibble 0 LOCAL / 1 PROXY), family
byte, 16-bit big-endian length of what follows, the address block for the family, then TLVs
up to the announced length.
"""

from __future__ import annotations

import struct
from typing import Any

from crc32c import crc32c

from ._header import ProxyHeader, set_wire
from ._tlv import check_tlv
from ._types import (
    ADDRESS_BLOCK_SIZE,
    FAMILY_BY_VALUE,
    TLV_HEADER_SIZE,
    UNIQUE_ID_MAX,
    UNIX_PATH_SIZE,
    V2_FIXED_SIZE,
    V2_SIGNATURE,
    Command,
    Family,
    ProxyProtocolError,
)

_FIXED = struct.Struct("!BBH")
_PORTS = struct.Struct("!HH")
_TLV_HEAD = struct.Struct("!BH")
_TLV_AT = _TLV_HEAD.unpack_from
# Bytes 12-15: (ver/cmd << 8 | family) and the length, both 16-bit big-endian (§2.2).
_VER_FAM_LENGTH = struct.Struct("!HH").unpack_from
# The whole 28-byte TCP4/UDP4 header without TLVs, packed in one call (the common case).
_INET4 = struct.Struct("!16sIIHH")
_TCP4_HEAD = V2_SIGNATURE + b"\x21\x11\x00\x0c"  # v2 PROXY, TCP4, length 12
_INET4_BLOCK = struct.Struct("!IIHH")
_CRC_PLACEHOLDER = b"\x03\x00\x04\x00\x00\x00\x00"
# TLV types whose structure the spec fixes (CRC32C, UNIQUE_ID, SSL): see _tlv.check_tlv.
_CHECKED_TYPES = frozenset({0x03, 0x05, 0x20})
_PROXY = Command.PROXY
_LOCAL = Command.LOCAL
# A module constant: reading Family.TCP4 through the enum class costs about 70 ns on 3.11.
_TCP4 = Family.TCP4
_new = object.__new__
# §2.2: the valid (version/command byte, family byte) pairs and the address block size each
# announces; version 2 only, command LOCAL (0x20) or PROXY (0x21).
_BLOCK_BY_VER_CMD_FAM = {
    (ver_cmd << 8) | fam: size
    for ver_cmd in (0x20, 0x21)
    for fam, size in ADDRESS_BLOCK_SIZE.items()
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
    if n > 12 and data[12] not in (0x20, 0x21):
        raise _bad_ver_cmd(data[12])
    if n > 13 and data[13] not in FAMILY_BY_VALUE:
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


def walk_tlvs(data: bytes, pos: int, end: int, max_tlvs: int) -> None:
    """Validate the TLVs in ``data[pos:end]`` without building objects (they are lazy)."""
    index = 0
    crc_at = -1
    while pos < end:
        if index >= max_tlvs:
            raise ProxyProtocolError(
                f"tlvs: more than max_tlvs={max_tlvs} TLVs", offset=pos, field="tlvs"
            )
        if pos + TLV_HEADER_SIZE > end:
            raise ProxyProtocolError(
                f"tlv[{index}]: {end - pos} byte(s) left before the header end cannot hold a "
                "3-byte TLV header",
                offset=pos,
                field="tlvs",
            )
        type_ = data[pos]
        vstart = pos + TLV_HEADER_SIZE
        vend = vstart + ((data[pos + 1] << 8) | data[pos + 2])
        if vend > end:
            raise ProxyProtocolError(
                f"tlv[{index}].length: value of {vend - vstart} bytes overruns the header "
                f"(ends at {end}) by {vend - end}",
                offset=pos + 1,
                field="tlvs",
            )
        if type_ in _CHECKED_TYPES:
            if type_ == 0x05:
                if vend - vstart > UNIQUE_ID_MAX:  # inline: the common structured TLV
                    check_tlv(type_, data[vstart:vend], index, vstart)
                index += 1
                pos = vend
                continue
            if type_ == 0x03:
                if crc_at >= 0:
                    raise ProxyProtocolError(
                        f"tlv[{index}]: second CRC32C TLV", offset=pos, field="tlvs"
                    )
                crc_at = vstart
            check_tlv(type_, data[vstart:vend], index, vstart)
        index += 1
        pos = vend
    if crc_at >= 0:
        _verify_crc32c(data, end, crc_at)


def _verify_crc32c(data: bytes, end: int, crc_at: int) -> None:
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


def _bad_ver_cmd_or_family(ver_cmd: int, fam: int) -> ProxyProtocolError:
    # The same order as the bytes: a bad version/command is reported before a bad family.
    if ver_cmd not in (0x20, 0x21):
        return _bad_ver_cmd(ver_cmd)
    return _bad_family(fam)


def decode_v2(data: bytes, n: int, max_size: int, max_tlvs: int) -> tuple[ProxyHeader, int] | None:
    """Decode a v2 header; ``data`` starts with the full 12-byte signature.

    Every byte is checked here; the fields are built on first read from the header bytes
    (see ``_lazy``), so a valid header costs one slice and one object.
    """
    if n < V2_FIXED_SIZE:
        check_partial_fixed(data, n)
        return None
    # ver/cmd and family as one 16-bit key: one look-up validates the version nibble, the
    # command and the family together.
    ver_fam, length = _VER_FAM_LENGTH(data, 12)
    block = _BLOCK_BY_VER_CMD_FAM.get(ver_fam)
    if block is None:
        raise _bad_ver_cmd_or_family(ver_fam >> 8, ver_fam & 0xFF)
    ver_cmd = ver_fam >> 8
    end = V2_FIXED_SIZE + length
    if end > max_size:
        raise ProxyProtocolError(
            f"length: header of {end} bytes exceeds max_v2_header_size={max_size}",
            offset=14,
            field="length",
        )
    if length < block:
        # A LOCAL header may omit the address block altogether (§2.2: "When a sender presents
        # a LOCAL connection, it should not present any address so it sets this field to
        # zero"); anything else shorter than the family's block contradicts the family.
        if ver_cmd == 0x21 or length:
            raise ProxyProtocolError(
                f"length: {length} is shorter than the {block}-byte "
                f"{FAMILY_BY_VALUE[ver_fam & 0xFF].name} address block",
                offset=14,
                field="length",
            )
        block = 0
    if n < end:
        return None
    if block == 2 * UNIX_PATH_SIZE and ver_cmd == 0x21:
        _unix_path(data, 16, "src_addr")  # only checks: the str is built on first read
        _unix_path(data, 16 + UNIX_PATH_SIZE, "dst_addr")
    pos = V2_FIXED_SIZE + block
    if pos < end:
        if max_tlvs < 21845:  # a caller's max_tlvs: count them, in the precise walk
            walk_tlvs(data, pos, end, max_tlvs)
        else:
            # 65535 bytes cannot hold more than 21845 TLVs: nothing to count. This loop only
            # notices that something is wrong; walk_tlvs, which checks the TLVs one by one in
            # wire order, then raises the precise error (a TLV header cut by the end of
            # ``data`` makes unpack_from raise: the same). About 80 ns per TLV instead of
            # 150; inline, because a call costs about as much as one TLV.
            start = pos
            crc_at = 0
            precise = False
            try:
                while pos < end:
                    type_, tlv_length = _TLV_AT(data, pos)
                    pos += TLV_HEADER_SIZE + tlv_length
                    if type_ in _CHECKED_TYPES:
                        if type_ == 0x05:  # §2.2.5: UNIQUE_ID is at most 128 bytes
                            if tlv_length > UNIQUE_ID_MAX:
                                precise = True
                        elif type_ == 0x03:  # §2.2.3: at most one CRC32C, 4 bytes
                            if crc_at or tlv_length != 4:
                                precise = True
                            crc_at = pos - 4
                        else:  # SSL (§2.2.6): its sub-TLVs are checked by walk_tlvs
                            precise = True
            except struct.error:
                precise = True
            if precise or pos != end:
                walk_tlvs(data, start, end, 21845)  # raises, or checks SSL TLVs and the CRC
            elif crc_at:
                _verify_crc32c(data, end, crc_at)
    h = _new(ProxyHeader)
    set_wire(h, data if n == end else data[:end])
    return h, end


def _address_block(h: ProxyHeader) -> bytes:
    family = h.family
    block = ADDRESS_BLOCK_SIZE[family]
    if not block:
        return b""
    if h.command is _LOCAL:
        # A LOCAL header that names a family gets a zeroed block so the length agrees with
        # the family (strict receivers, including ours, check that).
        return bytes(block)
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
        return _INET4.pack(_TCP4_HEAD, src.__int__(), dst.__int__(), h.src_port, h.dst_port)
    addr = _address_block(h)
    parts = [addr]
    pos = V2_FIXED_SIZE + len(addr)
    crc_at = -1
    for tlv in tlvs:
        value = tlv.value
        if tlv.type == 0x03:  # TLVType.CRC32C (a literal: see _TCP4)
            # A CRC32C TLV always gets the correct checksum written, never a stale value.
            crc_at = pos + TLV_HEADER_SIZE
            value = b"\x00\x00\x00\x00"
        parts.append(_TLV_HEAD.pack(tlv.type, len(value)))
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
