"""Byte-by-byte description of a complete header, for the CLI and the notebook figure."""

from __future__ import annotations

from dataclasses import dataclass

from ._codec import Buffer, DecodeLimits, _as_bytes, decode
from ._header import ProxyHeader
from ._tlv import aws_vpce_id, azure_link_id, gcp_psc_connection_id
from ._types import (
    ADDRESS_BLOCK_SIZE,
    FAMILY_BY_VALUE,
    FAMILY_MEANING,
    SSL_FIXED_SIZE,
    TLV_HEADER_SIZE,
    UNIX_PATH_SIZE,
    Command,
    Family,
    ProxyProtocolError,
    TLVType,
    tlv_type_name,
)
from ._v2 import local_layout

_DEFAULT_LIMITS = DecodeLimits()


@dataclass(frozen=True, slots=True)
class AnatomyField:
    """One contiguous run of header bytes and what it means.

    The fields returned by :func:`anatomy` are in wire order, do not overlap and together
    cover exactly the header's bytes.
    """

    offset: int
    length: int
    name: str
    raw: bytes
    meaning: str


def _text(raw: bytes) -> str:
    try:
        return repr(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return f"{len(raw)} bytes (not UTF-8)"


def _value_meaning(type_: int, value: bytes) -> str:
    if type_ == TLVType.ALPN:
        return f"ALPN protocol {_text(value)}"
    if type_ == TLVType.AUTHORITY:
        return f"authority (SNI) {_text(value)}"
    if type_ == TLVType.CRC32C:
        return f"CRC32C 0x{int.from_bytes(value, 'big'):08x} (verified)"
    if type_ == TLVType.NOOP:
        return "padding, ignored"
    if type_ == TLVType.UNIQUE_ID:
        return f"unique id {_text(value)}"
    if type_ == TLVType.NETNS:
        return f"network namespace {_text(value)}"
    if type_ == TLVType.AWS:
        vpce = aws_vpce_id(value)
        if vpce is None:
            return "AWS, another sub-type (or not ASCII)"
        return f"AWS VPC endpoint id {vpce!r}"
    if type_ == TLVType.AZURE:
        link = azure_link_id(value)
        return "Azure, another sub-type" if link is None else f"Azure LinkID {link}"
    if type_ == TLVType.GCP:
        psc = gcp_psc_connection_id(value)
        if psc is None:
            return f"{len(value)} bytes (not an 8-byte GCP PSC connection id)"
        return f"GCP PSC connection id {psc}"
    if type_ in (TLVType.SSL_VERSION, TLVType.SSL_CIPHER, TLVType.SSL_SIG_ALG):
        return f"{tlv_type_name(type_)} {_text(value)}"
    if type_ in (TLVType.SSL_CN, TLVType.SSL_KEY_ALG):
        return f"{tlv_type_name(type_)} {_text(value)}"
    return f"{len(value)} bytes"


def _tlv_fields(data: bytes, pos: int, end: int, prefix: str, out: list[AnatomyField]) -> None:
    i = 0
    while pos < end:
        type_ = data[pos]
        length = int.from_bytes(data[pos + 1 : pos + 3], "big")
        vstart = pos + TLV_HEADER_SIZE
        name = f"{prefix}[{i}]"
        out.append(AnatomyField(pos, 1, f"{name}.type", data[pos : pos + 1], tlv_type_name(type_)))
        out.append(
            AnatomyField(pos + 1, 2, f"{name}.length", data[pos + 1 : vstart], f"{length} bytes")
        )
        value = data[vstart : vstart + length]
        if type_ == TLVType.SSL and prefix == "tlv":
            out.append(
                AnatomyField(vstart, 1, f"{name}.client", value[:1], _client_flags(value[0]))
            )
            verify = int.from_bytes(value[1:5], "big")
            # §2.2.6: zero "if the client presented a certificate and it was successfully
            # verified"; HAProxy also sends 0 (X509_V_OK) when no certificate was presented.
            if verify:
                meaning = f"{verify}: client certificate not verified (verify result {verify})"
            elif value[0] & 0x06:
                meaning = "0: client certificate verified"
            else:
                meaning = "0: no client certificate presented (client flags), nothing to verify"
            out.append(AnatomyField(vstart + 1, 4, f"{name}.verify", value[1:5], meaning))
            _tlv_fields(data, vstart + SSL_FIXED_SIZE, vstart + length, f"{name}.sub", out)
        elif length:
            out.append(
                AnatomyField(vstart, length, f"{name}.value", value, _value_meaning(type_, value))
            )
        pos = vstart + length
        i += 1


def _v2_fields(data: bytes, header: ProxyHeader, end: int) -> list[AnatomyField]:
    local = header.command is Command.LOCAL
    fam = data[13]
    if not local:
        family_meaning = f"{header.family.name}: {FAMILY_MEANING[header.family]}"
    elif fam in FAMILY_BY_VALUE:
        family_meaning = f"{FAMILY_BY_VALUE[fam].name}: ignored (LOCAL)"
    else:
        family_meaning = f"0x{fam:02x}: not a defined family, ignored (LOCAL)"
    out = [
        AnatomyField(0, 12, "signature", data[:12], "PROXY protocol v2 signature"),
        AnatomyField(
            12, 1, "version/command", data[12:13], f"version 2, command {header.command.name}"
        ),
        AnatomyField(13, 1, "family", data[13:14], family_meaning),
        AnatomyField(14, 2, "length", data[14:16], f"{end - 16} bytes follow (header {end})"),
    ]
    if local:
        limits = _DEFAULT_LIMITS
        _, block, tlvs = local_layout(data, end, limits.max_tlvs, limits.max_tlv_value_size)
        if tlvs is None:
            if end > 16:
                out.append(
                    AnatomyField(
                        16,
                        end - 16,
                        "body",
                        data[16:end],
                        "not a valid TLV list: discarded (LOCAL, §2.2)",
                    )
                )
            return out
        if block:
            out.append(
                AnatomyField(16, block, "address block", data[16 : 16 + block], "ignored (LOCAL)")
            )
        _tlv_fields(data, 16 + block, end, "tlv", out)
        return out
    block = ADDRESS_BLOCK_SIZE[header.family]
    if block == 2 * UNIX_PATH_SIZE:
        for i, name in enumerate(("src_addr", "dst_addr")):
            start = 16 + i * UNIX_PATH_SIZE
            path = getattr(header, name)
            out.append(
                AnatomyField(
                    start, UNIX_PATH_SIZE, name, data[start : start + UNIX_PATH_SIZE], repr(path)
                )
            )
    elif block:
        size = (block - 4) // 2
        pos = 16
        for name, length in (("src_addr", size), ("dst_addr", size), ("src_port", 2)):
            out.append(
                AnatomyField(
                    pos, length, name, data[pos : pos + length], str(getattr(header, name))
                )
            )
            pos += length
        out.append(AnatomyField(pos, 2, "dst_port", data[pos : pos + 2], str(header.dst_port)))
    _tlv_fields(data, 16 + block, end, "tlv", out)
    return out


def _v1_fields(data: bytes, header: ProxyHeader, end: int) -> list[AnatomyField]:
    out = [AnatomyField(0, 6, "signature", data[:6], "PROXY v1 signature and space")]
    line = data[6 : end - 2]
    if header.family is Family.UNSPEC:
        out.append(AnatomyField(6, 7, "family", data[6:13], "UNKNOWN: use the real endpoints"))
        if end - 2 > 13:
            out.append(AnatomyField(13, end - 15, "ignored", data[13 : end - 2], "ignored (§2.1)"))
    else:
        pos = 6
        names = ("family", "src_addr", "dst_addr", "src_port", "dst_port")
        for i, (name, token) in enumerate(zip(names, line.split(b" "), strict=True)):
            if i:
                out.append(AnatomyField(pos, 1, "space", b" ", "separator"))
                pos += 1
            meaning = header.family.name if i == 0 else str(getattr(header, name))
            out.append(AnatomyField(pos, len(token), name, token, meaning))
            pos += len(token)
    out.append(AnatomyField(end - 2, 2, "crlf", data[end - 2 : end], "end of line"))
    return out


def anatomy(data: Buffer) -> list[AnatomyField]:
    """Describe, field by field, the complete header at the start of ``data``.

    Raises :class:`ProxyProtocolError` when the header is invalid or incomplete. Bytes after
    the header are not described.
    """
    buf = data if isinstance(data, bytes) else _as_bytes(data)
    result = decode(buf)
    if result is None:
        raise ProxyProtocolError(
            f"data: incomplete header, {len(buf)} bytes are only a prefix", field="data"
        )
    header, end = result
    if header.version == 2:
        return _v2_fields(buf, header, end)
    return _v1_fields(buf, header, end)


def _client_flags(flags: int) -> str:
    """The SSL TLV's ``client`` bit field in words (§2.2.6: PP2_CLIENT_SSL, _CERT_CONN, _SESS)."""
    names = [
        text
        for bit, text in (
            (0x01, "SSL"),
            (0x02, "cert on this connection"),
            (0x04, "cert in the session"),
        )
        if flags & bit
    ]
    return f"client flags 0x{flags:02x}: " + (", ".join(names) if names else "none")
