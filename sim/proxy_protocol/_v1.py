"""PROXY protocol version 1: the human-readable line (spec §2.1, FACTS H3).

``PROXY TCP4 <src> <dst> <sport> <dport>\\r\\n`` (or ``TCP6``), or ``PROXY UNKNOWN`` followed
by anything up to the CRLF, at most 107 bytes including the CRLF. The spec is strict and so is
this module: exactly one space between fields, canonical addresses (no leading zeros in IPv4,
hexadecimal groups only in IPv6, no zone id), decimal ports 0..65535 without leading zeros,
ASCII only, and a CRLF (a lone CR or LF is an error).

Partial input: while no LF has arrived, the bytes so far are checked as a *prefix* of a valid
line (complete fields fully, the field being received for its alphabet and length) so that
garbage is rejected as soon as it cannot lead to a valid header.
"""

from __future__ import annotations

import re
import struct
from ipaddress import IPv6Address
from typing import Any

from ._header import HeaderBuilder, ProxyHeader, set_wire
from ._types import V1_PREFIX, Command, Family, ProxyProtocolError

_OCTET = rb"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(_OCTET + rb"(?:\." + _OCTET + rb"){3}").fullmatch
# RFC 4291 §2.2 text forms, as inet_pton reads them (HAProxy's parser): hex groups with one
# optional "::", and form 3, a dotted-quad tail (HAProxy itself writes "::ffff:127.0.0.1" for an
# IPv4 client on a v4v6 listener); at most 45 characters (INET6_ADDRSTRLEN - 1). The characters
# are ASCII only and exclude "%", so no zone ids; IPv6Address then checks the grammar, including
# canonical decimal octets in the tail.
_IPV6_CHARS = re.compile(rb"[0-9A-Fa-f:.]{2,45}").fullmatch
_PORT = re.compile(rb"0|[1-9][0-9]{0,4}").fullmatch
# Prefix forms, used only while the line is incomplete.
_IPV4_PREFIX = re.compile(rb"(?:(?:0|[1-9][0-9]{0,2})\.){0,3}(?:0|[1-9][0-9]{0,2})?").fullmatch
_IPV6_PREFIX = re.compile(rb"[0-9A-Fa-f:.]{0,45}").fullmatch
_PORT_PREFIX = re.compile(rb"(?:0|[1-9][0-9]{0,4})?").fullmatch
_TCP4_LINE = b"PROXY TCP4 %s.%s.%s.%s %s.%s.%s.%s %d %d\r\n"
# §2.1: IPv4 addresses in canonical dotted decimal; the text of each octet value 0..255.
_OCTET_TEXT = tuple(b"%d" % i for i in range(256))
_PACK_ADDRS = struct.Struct("!II").pack
_FAMILY_WORDS = (b"TCP4", b"TCP6", b"UNKNOWN")
_FIELD_NAMES = ("family", "src_addr", "dst_addr", "src_port", "dst_port")
_PROXY = Command.PROXY
# Module constants, not Family.TCP4 in the functions: an enum member read through the class
# costs about 70 ns on Python 3.11 (more than the comparison itself).
_TCP4 = Family.TCP4
_UNSPEC = Family.UNSPEC
_new = object.__new__


def _field_offset(parts: list[bytes], index: int) -> int:
    return len(V1_PREFIX) + sum(len(p) + 1 for p in parts[:index])


def _fail(parts: list[bytes], index: int, message: str) -> ProxyProtocolError:
    name = _FIELD_NAMES[index] if index < len(_FIELD_NAMES) else "line"
    return ProxyProtocolError(f"{name}: {message}", offset=_field_offset(parts, index), field=name)


def _show(token: bytes) -> str:
    return repr(token)[1:] if len(token) <= 48 else repr(token[:48])[1:] + "..."


def _check_address(parts: list[bytes], index: int, v6: bool) -> IPv6Address | None:
    token = parts[index]
    if not v6:
        if _IPV4(token) is None:
            raise _fail(parts, index, f"{_show(token)} is not a canonical IPv4 address (TCP4)")
        return None
    if _IPV6_CHARS(token) is not None:
        try:
            return IPv6Address(token.decode("ascii"))
        except ValueError:
            pass
    raise _fail(parts, index, f"{_show(token)} is not a canonical IPv6 address (TCP6)")


def _check_port(parts: list[bytes], index: int) -> int:
    token = parts[index]
    if _PORT(token) is not None:
        port = int(token)
        if port <= 0xFFFF:
            return port
    raise _fail(parts, index, f"{_show(token)} is not a decimal port in 0..65535")


def decode_v1(data: bytes, n: int, max_line: int) -> tuple[ProxyHeader, int] | None:
    """Decode a v1 line; ``data`` starts with ``b"PROXY "``."""
    lf = data.find(b"\n", 6, max_line)
    if lf < 0:
        if n >= max_line:
            raise ProxyProtocolError(
                f"line: no CRLF within the first {max_line} bytes (spec §2.1 limit: 107)",
                offset=max_line - 1,
                field="line",
            )
        check_v1_prefix(data, n)
        return None
    if data[lf - 1] != 0x0D:
        raise ProxyProtocolError(
            "line: LF without CR; the line must end with CRLF", offset=lf, field="line"
        )
    parts = data[6 : lf - 1].split(b" ")
    word = parts[0]
    h = _new(HeaderBuilder)
    h.version = 1
    h.command = _PROXY
    h.tlvs = ()
    if word == b"TCP4" or word == b"TCP6":
        if len(parts) != 5:
            for index, part in enumerate(parts):
                if not part:
                    raise _fail(parts, index, "empty field: fields are separated by one space")
            index = min(len(parts), 5)
            name = _FIELD_NAMES[index] if index < 5 else "line"
            raise ProxyProtocolError(
                f"{name}: expected 4 fields after {word.decode()} separated by single spaces, "
                f"got {len(parts) - 1}",
                offset=min(_field_offset(parts, index), lf - 1),
                field=name,
            )
        v6 = word == b"TCP6"
        src = _check_address(parts, 1, v6)
        dst = _check_address(parts, 2, v6)
        sport = _check_port(parts, 3)
        dport = _check_port(parts, 4)
        if not v6:
            # A canonical TCP4 line: its fields are built on first read (see _lazy).
            lazy = _new(ProxyHeader)
            set_wire(lazy, data[: lf + 1])
            return lazy, lf + 1
        h.family = Family.TCP6
        h.src_addr = src
        h.dst_addr = dst
        h.src_port = sport
        h.dst_port = dport
        h._wire = None
    elif word == b"UNKNOWN":
        # §2.1: for UNKNOWN "the receiver must ignore anything presented before the CRLF",
        # but a stray CR is still not a line end.
        cr = data.find(b"\r", 13, lf - 1)
        if cr >= 0:
            raise ProxyProtocolError("line: CR not followed by LF", offset=cr, field="line")
        h.family = Family.UNSPEC
        h._wire = h.src_addr = h.dst_addr = h.src_port = h.dst_port = None
    else:
        raise _fail(parts, 0, f"{_show(word)} is not TCP4, TCP6 or UNKNOWN")
    h.__class__ = ProxyHeader  # type: ignore[assignment]  # layout twin, see HeaderBuilder
    return h, lf + 1  # type: ignore[return-value]


def check_v1_prefix(data: bytes, n: int) -> None:
    """Raise if ``data[:n]`` (no LF yet) can no longer become a valid v1 line."""
    # A final CR may be the first half of the CRLF: then the last field is complete.
    cr_end = data[n - 1] == 0x0D
    stop = n - 1 if cr_end else n
    cr = data.find(b"\r", 6, stop)
    if cr >= 0:
        raise ProxyProtocolError("line: CR not followed by LF", offset=cr, field="line")
    parts = data[6:stop].split(b" ")
    last = len(parts) - 1
    word = parts[0]
    if last == 0 and not cr_end:
        if not any(w.startswith(word) for w in _FAMILY_WORDS):
            raise _fail(parts, 0, f"{_show(word)} does not start TCP4, TCP6 or UNKNOWN")
        return
    if word == b"UNKNOWN":
        return  # §2.1: anything up to the CRLF is ignored
    if word not in (b"TCP4", b"TCP6"):
        raise _fail(parts, 0, f"{_show(word)} is not TCP4, TCP6 or UNKNOWN")
    v6 = word == b"TCP6"
    complete = last + 1 if cr_end else last
    for index in range(1, min(complete, 5)):
        if index <= 2:
            _check_address(parts, index, v6)
        else:
            _check_port(parts, index)
    if last > 4:
        raise _fail(parts, 5, "extra field after the destination port")
    if cr_end:
        if last < 4:
            raise ProxyProtocolError(
                f"{_FIELD_NAMES[last + 1]}: line ends before the field",
                offset=n - 1,
                field=_FIELD_NAMES[last + 1],
            )
        return
    token = parts[last]
    ok: bool
    if last <= 2:
        if v6:
            ok = _ipv6_prefix_ok(token)
        else:
            ok = _IPV4_PREFIX(token) is not None and all(
                int(o) <= 255 for o in token.split(b".") if o
            )
    else:
        ok = _PORT_PREFIX(token) is not None and (not token or int(token) <= 0xFFFF)
    if not ok:
        kind = "IPv6 address" if last <= 2 and v6 else "IPv4 address" if last <= 2 else "port"
        raise _fail(parts, last, f"{_show(token)} cannot start a canonical {kind}")


def _ipv6_prefix_ok(token: bytes) -> bool:
    """Whether ``token`` can still grow into an RFC 4291 text address (hex groups, at most one
    ``::``, or a dotted-quad tail after the last colon, form 3)."""
    if _IPV6_PREFIX(token) is None or b":::" in token or token.count(b"::") > 1:
        return False
    head, colon, tail = token.rpartition(b":")
    if b"." in tail:
        if not colon or b"." in head:
            return False
        # The tail is the start of a dotted quad; at most six hex groups may precede it.
        # The dotted quad fills two of the eight groups: six hex groups before it, or at most
        # five around a "::" (which stands for at least one).
        groups = head.split(b":")
        filled = [g for g in groups if g]
        room = 5 if b"::" in token else 6
        return (
            _IPV4_PREFIX(tail) is not None
            and all(int(o) <= 255 for o in tail.split(b".") if o)
            and all(len(g) <= 4 for g in groups)
            and len(filled) <= room
            and (b"::" in token or len(groups) <= 6)
        )
    if b"." in token:
        return False
    return all(len(g) <= 4 for g in token.split(b":")) and token.count(b":") <= 8


def encode_v1(h: ProxyHeader) -> bytes:
    """Serialize a validated v1 header."""
    family = h.family
    if family is _TCP4:
        # str(IPv4Address) costs about 0.7 us per address and "%d" formatting of each octet
        # about 0.3 us per address; the packed octets index a table of their decimal text.
        # addr.__int__() (about 30 ns) rather than int(addr) (about 80 ns): same value, the
        # builtin's dispatch is the difference.
        src: Any = h.src_addr
        dst: Any = h.dst_addr
        o = _OCTET_TEXT
        a, b, c, d, e, f, g, i = _PACK_ADDRS(src.__int__(), dst.__int__())
        return _TCP4_LINE % (o[a], o[b], o[c], o[d], o[e], o[f], o[g], o[i], h.src_port, h.dst_port)
    if family is _UNSPEC:
        return b"PROXY UNKNOWN\r\n"
    src = _v6_text(h.src_addr)
    dst = _v6_text(h.dst_addr)
    return f"PROXY TCP6 {src} {dst} {h.src_port} {h.dst_port}\r\n".encode()


def _v6_text(addr: Any) -> str:
    """IPv6 text with hexadecimal groups only (§2.1), even for IPv4-mapped addresses."""
    text = str(addr)
    if "." not in text:
        return text
    groups = [int.from_bytes(addr.packed[i : i + 2], "big") for i in range(0, 16, 2)]
    # Replace the longest run (>= 2) of zero groups with "::", as RFC 5952 does.
    best_start, best_len, start = -1, 0, -1
    for i, g in enumerate([*groups, 1]):
        if g == 0 and start < 0:
            start = i
        elif g != 0 and start >= 0:
            if i - start > best_len:
                best_start, best_len = start, i - start
            start = -1
    hexes = [f"{g:x}" for g in groups]
    if best_len < 2:
        return ":".join(hexes)
    return ":".join(hexes[:best_start]) + "::" + ":".join(hexes[best_start + best_len :])
