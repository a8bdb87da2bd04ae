"""``srcip-lab pp``: decode and encode real PROXY protocol headers from the command line.

``pp decode`` prints the header's fields, its TLVs and a byte-by-byte anatomy; ``pp encode``
prints the hex of a header built from ``--src``/``--dst`` and options. Both use
:mod:`sim.proxy_protocol`, the same codec the simulated HAProxy and gateway use.
"""

from __future__ import annotations

import argparse
import re
import sys
from ipaddress import IPv6Address, ip_address
from typing import Any

from sim.proxy_protocol import (
    TLV,
    Command,
    Family,
    ProxyHeader,
    ProxyProtocolError,
    TLVType,
    anatomy,
    decode,
    encode,
)

_DECODE_EPILOG = """\
examples:
  srcip-lab pp decode 0d0a0d0a000d0a515549540a21110...   (hex; spaces and colons allowed)
  printf 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\\r\\n' | srcip-lab pp decode -
  srcip-lab pp encode --src 203.0.113.7:51000 --dst 10.0.0.10:443 | srcip-lab pp decode -

With '-', standard input may be hex text or the raw header bytes. Bytes after the header
(e.g. the start of an HTTP request) are reported, not decoded.
"""

_ENCODE_EPILOG = """\
examples:
  srcip-lab pp encode --src 203.0.113.7:51000 --dst 10.0.0.10:443
  srcip-lab pp encode --src [2001:db8::7]:51000 --dst [2001:db8::10]:443 --v1
  srcip-lab pp encode --src 203.0.113.7:51000 --dst 10.0.0.10:443 \\
      --tlv ALPN=h2 --tlv AUTHORITY=example.com --tlv 0xE0=0x0000000000000001 --crc32c
  srcip-lab pp encode --local              (the 16-byte v2 LOCAL header of health checks)

TYPE is a number (decimal or 0x..) or a name: {names}.
VALUE is UTF-8 text, or hex when it starts with 0x.
"""

_HEX_SEPARATORS = re.compile(r"[\s:]+")


def register(sub: Any) -> None:
    """Add the ``pp`` command (with ``decode`` and ``encode``) to the top-level sub-parsers."""
    pp = sub.add_parser(
        "pp",
        help="decode or encode PROXY protocol v1/v2 headers",
        description="Decode or encode real PROXY protocol v1/v2 headers (HAProxy's spec).",
    )
    pp_sub = pp.add_subparsers(dest="pp_command", metavar="ACTION", required=True)

    dec = pp_sub.add_parser(
        "decode",
        help="decode a header and show its fields, TLVs and byte-by-byte anatomy",
        description="Decode a PROXY protocol header and explain every byte of it.",
        epilog=_DECODE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dec.add_argument("data", metavar="HEX|-", help="the header as hex, or '-' for stdin")
    dec.set_defaults(func=_cmd_decode)

    enc = pp_sub.add_parser(
        "encode",
        help="build a header and print it as hex",
        description="Build a PROXY protocol header (v2 unless --v1) and print it as hex.",
        epilog=_ENCODE_EPILOG.format(names=", ".join(t.name for t in TLVType)),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    enc.add_argument("--src", metavar="IP:PORT", help="client address, e.g. 203.0.113.7:51000")
    enc.add_argument("--dst", metavar="IP:PORT", help="address the client connected to")
    enc.add_argument("--v1", action="store_true", help="emit the v1 text line instead of v2")
    enc.add_argument("--udp", action="store_true", help="UDP family (v2 only) instead of TCP")
    enc.add_argument(
        "--tlv",
        action="append",
        default=[],
        metavar="TYPE=VALUE",
        help="add a TLV (v2 only); repeatable, kept in order",
    )
    enc.add_argument("--crc32c", action="store_true", help="append a CRC32C checksum TLV (v2 only)")
    enc.add_argument(
        "--local",
        action="store_true",
        help="LOCAL command, no addresses (v1: PROXY UNKNOWN)",
    )
    enc.set_defaults(func=_cmd_encode)


# -- decode ------------------------------------------------------------------------------------


def _parse_hex(text: str, what: str) -> bytes:
    cleaned = _HEX_SEPARATORS.sub("", text)
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        bad = next((i for i, c in enumerate(cleaned) if c not in "0123456789abcdefABCDEF"), None)
        if bad is None:
            raise ValueError(f"{what}: odd number of hex digits ({len(cleaned)})") from None
        raise ValueError(f"{what}: {cleaned[bad]!r} is not a hex digit") from None


def _read_input(arg: str) -> bytes:
    if arg != "-":
        return _parse_hex(arg, "HEX")
    raw = sys.stdin.buffer.read()
    # Hex text if it looks like it; otherwise the bytes themselves (a v1 line is text too,
    # but it contains "PROXY", which is not hex).
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return raw
    if text.strip() and _HEX_SEPARATORS.sub("", text).removeprefix("0x").isalnum():
        try:
            return _parse_hex(text, "stdin")
        except ValueError:
            return raw
    return raw


def _describe(header: ProxyHeader) -> list[str]:
    lines = [
        f"version   {header.version}",
        f"command   {header.command.name}",
        f"family    {header.family.name}",
    ]
    for name in ("src_addr", "src_port", "dst_addr", "dst_port"):
        value = getattr(header, name)
        if value is not None:
            lines.append(f"{name:<9} {value}")
    if header.command is Command.LOCAL or header.family is Family.UNSPEC:
        lines.append("addresses none: the receiver uses the real connection endpoints")
    return lines


def _cmd_decode(args: argparse.Namespace) -> int:
    data = _read_input(args.data)
    result = decode(data)
    if result is None:
        raise ProxyProtocolError(
            f"data: incomplete header: {len(data)} bytes are only the start of one"
        )
    header, consumed = result
    out = [f"PROXY protocol v{header.version} header, {consumed} bytes", *_describe(header)]
    if header.tlvs:
        out.append("TLVs:")
        for i, tlv in enumerate(header.tlvs):
            name = TLVType(tlv.type).name if tlv.type in TLVType._value2member_map_ else ""
            out.append(f"  [{i}] 0x{tlv.type:02x} {name:<10} {len(tlv.value):>4} B  {tlv.value!r}")
    out.append("anatomy:")
    fields = anatomy(data)
    width = max(18, *(len(f.name) for f in fields))  # sub-TLV names run long
    out.append(f"  {'offset':>6}  {'len':>4}  {'field':<{width}} {'bytes':<24} meaning")
    for field in fields:
        shown = field.raw.hex(" ")
        if len(shown) > 24:
            shown = shown[:21] + "..."
        out.append(
            f"  {field.offset:>6}  {field.length:>4}  {field.name:<{width}} {shown:<24} "
            f"{field.meaning}"
        )
    if consumed < len(data):
        out.append(f"{len(data) - consumed} byte(s) after the header: {data[consumed:][:32]!r}")
    print("\n".join(out))
    return 0


# -- encode ------------------------------------------------------------------------------------


def _parse_endpoint(text: str | None, option: str) -> tuple[Any, int]:
    if text is None:
        raise ValueError(f"{option}: required unless --local (IP:PORT, [IPv6]:PORT)")
    # [0-9], not \d: a port of non-ASCII digits ("٨٠") is not one a header can carry.
    match = re.fullmatch(r"\[([^\]]+)\]:([0-9]+)|([^:\[\]]+):([0-9]+)", text)
    if match is None:
        raise ValueError(f"{option}: {text!r} is not IP:PORT or [IPv6]:PORT")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    try:
        addr = ip_address(host)
    except ValueError:
        raise ValueError(f"{option}: {host!r} is not an IP address") from None
    if match.group(1) and not isinstance(addr, IPv6Address):
        raise ValueError(f"{option}: brackets are for IPv6 addresses, got {host!r}")
    if port > 0xFFFF:
        raise ValueError(f"{option}: port {port} is over 65535")
    return addr, port


def _parse_tlv(text: str) -> TLV:
    if "=" not in text:
        raise ValueError(f"--tlv: {text!r} is not TYPE=VALUE")
    type_text, value_text = text.split("=", 1)
    type_text = type_text.strip()
    if type_text.upper() in TLVType.__members__:
        type_ = int(TLVType[type_text.upper()])
    else:
        try:
            type_ = int(type_text, 0)
        except ValueError:
            names = ", ".join(TLVType.__members__)
            raise ValueError(
                f"--tlv: type {type_text!r} is not a number or one of {names}"
            ) from None
        if not 0 <= type_ <= 0xFF:
            raise ValueError(f"--tlv: type {type_} is outside 0..255")
    if value_text[:2].lower() == "0x":
        value = _parse_hex(value_text[2:], f"--tlv {type_text}")
    else:
        value = value_text.encode("utf-8")
    return TLV(type_, value)


def _cmd_encode(args: argparse.Namespace) -> int:
    version = 1 if args.v1 else 2
    tlvs = tuple(_parse_tlv(t) for t in args.tlv)
    if version == 1 and (tlvs or args.crc32c or args.udp):
        raise ValueError("--v1: v1 has no TLVs, checksum or UDP; drop --tlv/--crc32c/--udp")
    if args.local:
        if args.src or args.dst:
            raise ValueError("--local: takes no --src/--dst (LOCAL carries no addresses)")
        header = ProxyHeader.local(version)
        if tlvs:
            header = ProxyHeader(version=2, command=Command.LOCAL, family=Family.UNSPEC, tlvs=tlvs)
    else:
        src, src_port = _parse_endpoint(args.src, "--src")
        dst, dst_port = _parse_endpoint(args.dst, "--dst")
        if src.version != dst.version:
            raise ValueError("--dst: must be the same IP version as --src")
        if src.version == 4:
            family = Family.UDP4 if args.udp else Family.TCP4
        else:
            family = Family.UDP6 if args.udp else Family.TCP6
        header = ProxyHeader(
            version=version,
            command=Command.PROXY,
            family=family,
            src_addr=src,
            dst_addr=dst,
            src_port=src_port,
            dst_port=dst_port,
            tlvs=tlvs,
        )
    print(encode(header, crc32c=args.crc32c).hex())
    return 0
