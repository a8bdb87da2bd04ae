"""PROXY protocol version 1: the human-readable line (spec §2.1, FACTS H3).

``PROXY TCP4 <src> <dst> <sport> <dport>\\r\\n`` (or ``TCP6``), or ``PROXY UNKNOWN`` followed
by anything up to the CRLF, at most 107 bytes including the CRLF. The spec is strict and so is
this module: exactly one space between fields, canonical addresses (no leading zeros in IPv4,
hexadecimal groups only in IPv6, no zone id), decimal ports 0..65535 without leading zeros,
ASCII only, and a CRLF (a lone CR or LF is an error).

Two readers share the rules. A complete line is checked as a whole (:func:`parse_line`: a
regular expression or a split, then the fields), which is fast. The errors come from one
left-to-right scanner (:class:`V1Scanner`) that checks each byte against what the bytes before
it allow, and names the first byte after which no valid line can follow: the same byte whether
the line arrives whole or one byte at a time. The offset of an error is that byte, except for a
CR not followed by LF, where it is the CR.
"""

from __future__ import annotations

import re
import struct
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from ._header import HeaderBuilder, ProxyHeader
from ._types import FAST_ADDRESSES, Command, Family, ProxyProtocolError, ipv4_from_int

# §2.1: the canonical TCP4 line: decimal octets 0..255 and ports 0..65535 without leading
# zeros, single spaces, CRLF; ASCII classes only ([0-9], never \d). Matching it validates the
# whole line; anything it rejects goes to the general path. The octet and port patterns are
# written as prefix trees (each digit is read once, little backtracking): about 20 % faster in
# sre than a list of alternatives such as "25[0-5]|2[0-4][0-9]|...". Both accept exactly the
# canonical numbers (tests/test_proxy_protocol_fast.py checks every one).
#   octet: 1, 1x, 1xx | 2, 2[0-4]x?, 25[0-5]?, 2[6-9] | [3-9]x? | 0
_OCTET_TREE = rb"(1[0-9]{0,2}|2(?:[0-4][0-9]?|5[0-5]?|[6-9])?|[3-9][0-9]?|0)"
#   port: [1-5]x{0,4} | 6 followed by what keeps it <= 65535 | [7-9]x{0,3} | 0
_PORT_TREE = (
    rb"([1-5][0-9]{0,4}"
    rb"|6(?:[0-4][0-9]{0,3}|5(?:[0-4][0-9]{0,2}|5(?:[0-2][0-9]?|3[0-5]?|[4-9])?|[6-9][0-9]?)?"
    rb"|[6-9][0-9]{0,2})?"
    rb"|[7-9][0-9]{0,3}|0)"
)
# The four octets written out: a repeated group "(?:...){3}" is about 20 % slower in sre.
_IPV4_TREE = rb"\.".join([_OCTET_TREE] * 4)
TCP4_LINE = re.compile(
    rb"PROXY TCP4 "
    + _IPV4_TREE
    + rb" "
    + _IPV4_TREE
    + rb" "
    + _PORT_TREE
    + rb" "
    + _PORT_TREE
    + rb"\r\n"
).match
# Each octet's text -> its value already shifted into place: one look-up and one "or" per
# octet (int() on the text costs three times more, and IPv4Address(str) re-parses it all).
_SHIFTED = tuple({b"%d" % i: i << shift for i in range(256)} for shift in (24, 16, 8, 0))
_O24, _O16, _O8, _O0 = _SHIFTED

_OCTET = rb"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(_OCTET + rb"(?:\." + _OCTET + rb"){3}").fullmatch
# RFC 4291 §2.2 text forms, as inet_pton reads them (HAProxy's parser): hex groups with one
# optional "::", and form 3, a dotted-quad tail (HAProxy itself writes "::ffff:127.0.0.1" for an
# IPv4 client on a v4v6 listener); at most 45 characters (INET6_ADDRSTRLEN - 1). The characters
# are ASCII only and exclude "%", so no zone ids; IPv6Address then checks the grammar, including
# canonical decimal octets in the tail.
_IPV6_CHARS = re.compile(rb"[0-9A-Fa-f:.]{2,45}").fullmatch
_PORT = re.compile(rb"0|[1-9][0-9]{0,4}").fullmatch
# Prefix forms, for the scanner.
_IPV4_PREFIX = re.compile(rb"(?:(?:0|[1-9][0-9]{0,2})\.){0,3}(?:0|[1-9][0-9]{0,2})?").fullmatch
_IPV6_PREFIX = re.compile(rb"[0-9A-Fa-f:.]{0,45}").fullmatch
_PORT_PREFIX = re.compile(rb"(?:0|[1-9][0-9]{0,4})?").fullmatch
_TCP4_TEXT = b"PROXY TCP4 %s.%s.%s.%s %s.%s.%s.%s %d %d\r\n"
# §2.1: IPv4 addresses in canonical dotted decimal; the text of each octet value 0..255.
_OCTET_TEXT = tuple(b"%d" % i for i in range(256))
_PACK_ADDRS = struct.Struct("!II").pack
_WORDS = (b"TCP4", b"TCP6", b"UNKNOWN")
_WORD_PREFIXES = frozenset(w[:i] for w in _WORDS for i in range(1, len(w) + 1))
_FIELD_NAMES = ("family", "src_addr", "dst_addr", "src_port", "dst_port")
_UNKNOWN_TAIL = 9  # scanner state: after "PROXY UNKNOWN ", anything up to the CRLF
_PROXY = Command.PROXY
# Module constants, not Family.TCP4 in the functions: an enum member read through the class
# costs about 70 ns on Python 3.11 (more than the comparison itself).
_TCP4 = Family.TCP4
_TCP6 = Family.TCP6
_UNSPEC = Family.UNSPEC
_new = object.__new__


def _show(token: bytes) -> str:
    return repr(token) if len(token) <= 48 else repr(token[:48]) + "..."


def tcp4_header(src: int, dst: int, sport: int, dport: int) -> ProxyHeader:
    """A v1 TCP4 header from values the caller has validated."""
    h = HeaderBuilder()
    if FAST_ADDRESSES:
        a = _new(IPv4Address)
        a._ip = src  # type: ignore[attr-defined]
        b = _new(IPv4Address)
        b._ip = dst  # type: ignore[attr-defined]
    else:  # pragma: no cover
        a, b = ipv4_from_int(src), ipv4_from_int(dst)
    h.version = 1
    h.command = _PROXY
    h.family = _TCP4
    h.src_addr = a
    h.dst_addr = b
    h.src_port = sport
    h.dst_port = dport
    h.tlvs = ()
    h._ssl_view = None
    h.__class__ = ProxyHeader  # type: ignore[assignment]  # layout twin, see HeaderBuilder
    return h  # type: ignore[return-value]


def _ipv4_int(token: bytes) -> int:
    a, b, c, d = token.split(b".")
    return _O24[a] | _O16[b] | _O8[c] | _O0[d]


def _ipv6(token: bytes) -> IPv6Address | None:
    if _IPV6_CHARS(token) is None:
        return None
    try:
        return IPv6Address(token.decode("ascii"))
    except ValueError:
        return None


def _port(token: bytes) -> int | None:
    if _PORT(token) is None:
        return None
    port = int(token)
    return port if port <= 0xFFFF else None


def parse_line(data: bytes, lf: int) -> ProxyHeader | None:
    """The header of the complete line ``data[:lf + 1]``, or ``None`` if it is not valid.

    Accepts exactly the lines that :class:`V1Scanner` accepts (tests compare them); only the
    scanner says why a line is invalid.
    """
    if data[lf - 1] != 0x0D:
        return None
    body = data[6 : lf - 1]
    word = body[:5]
    if word == b"TCP4 " or word == b"TCP6 ":
        parts = body.split(b" ")
        if len(parts) != 5:
            return None
        _, src, dst, sport_text, dport_text = parts
        sport, dport = _port(sport_text), _port(dport_text)
        if sport is None or dport is None:
            return None
        if word == b"TCP4 ":
            if _IPV4(src) is None or _IPV4(dst) is None:
                return None
            return tcp4_header(_ipv4_int(src), _ipv4_int(dst), sport, dport)
        src6, dst6 = _ipv6(src), _ipv6(dst)
        if src6 is None or dst6 is None:
            return None
        h = HeaderBuilder()
        h.family = _TCP6
        h.src_addr = src6
        h.dst_addr = dst6
        h.src_port = sport
        h.dst_port = dport
    elif body == b"UNKNOWN" or (body[:8] == b"UNKNOWN " and b"\r" not in body):
        # §2.1: for UNKNOWN "the receiver must ignore anything presented before the CRLF",
        # but a stray CR is still not a line end.
        h = HeaderBuilder()
        h.family = _UNSPEC
        h.src_addr = h.dst_addr = h.src_port = h.dst_port = None
    else:
        return None
    h.version = 1
    h.command = _PROXY
    h.tlvs = ()
    h._ssl_view = None
    h.__class__ = ProxyHeader  # type: ignore[assignment]  # layout twin, see HeaderBuilder
    return h  # type: ignore[return-value]


def _ipv6_prefix_ok(token: bytes) -> bool:
    """Whether ``token`` can still grow into an RFC 4291 text address (hex groups, at most one
    ``::``, or a dotted-quad tail after the last colon, form 3). Never stricter than
    IPv6Address: a prefix of every address it accepts passes."""
    if _IPV6_PREFIX(token) is None or b":::" in token or token.count(b"::") > 1:
        return False
    if token[:1] == b":" and token[1:2] not in (b"", b":"):
        return False  # a leading ':' only as part of '::'
    double = b"::" in token
    head, colon, tail = token.rpartition(b":")
    if b"." in tail:
        if not colon or b"." in head:
            return False
        # The dotted quad fills two of the eight groups: exactly six hex groups before it, or
        # at most five around a "::" (which stands for at least one).
        groups = head.split(b":")
        filled = [g for g in groups if g]
        if any(len(g) > 4 for g in groups):
            return False
        if double:
            if len(filled) > 5:
                return False
        elif len(groups) != 6:
            return False
        return _IPV4_PREFIX(tail) is not None and all(int(o) <= 255 for o in tail.split(b".") if o)
    if b"." in token:
        return False
    groups = token.split(b":")
    if any(len(g) > 4 for g in groups):
        return False
    if double:
        return len([g for g in groups if g]) <= 7
    return len(groups) <= 8


def _prefix_ok(field: int, token: bytes, v6: bool) -> bool:
    if field == 0:
        return token in _WORD_PREFIXES
    if field <= 2:
        if v6:
            return _ipv6_prefix_ok(token)
        return _IPV4_PREFIX(token) is not None and all(
            int(o) <= 255 for o in token.split(b".") if o
        )
    return _PORT_PREFIX(token) is not None and int(token) <= 0xFFFF


def _complete_ok(field: int, token: bytes, v6: bool) -> bool:
    if field <= 2:
        return (_ipv6(token) is not None) if v6 else (_IPV4(token) is not None)
    return _port(token) is not None


def _kind(field: int, v6: bool) -> str:
    if field <= 2:
        return "IPv6 address (TCP6)" if v6 else "IPv4 address (TCP4)"
    return "decimal port in 0..65535"


class V1Scanner:
    """Checks a v1 line left to right and raises at its first offending byte.

    ``scan(data, end)`` checks ``data[pos:end]`` (``pos`` starts after ``"PROXY "``) and
    returns ``True`` once it has checked the LF that ends the line. The state carries over
    between calls, so an incremental reader scans each byte once; ``work`` counts the bytes
    looked at (each byte re-checks the field it belongs to, at most 45 bytes).
    """

    __slots__ = ("cr", "field", "max_line", "pos", "tok", "v6", "work")

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self.pos = 6
        self.tok = 6  # where the current field starts
        self.field = 0  # index into _FIELD_NAMES, or _UNKNOWN_TAIL
        self.v6 = False
        self.cr = False  # the previous byte was a CR
        self.work = 0

    def scan(self, data: Any, end: int) -> bool:
        last = self.max_line - 1
        for i in range(self.pos, end):
            self.pos = i + 1
            byte = data[i]
            if self.cr:
                if byte == 0x0A:
                    return True
                raise ProxyProtocolError(
                    f"line: CR not followed by LF (got 0x{byte:02x}); the line must end with CRLF",
                    offset=i - 1,
                    field="line",
                )
            if byte == 0x0A:
                raise ProxyProtocolError(
                    "line: LF without CR; the line must end with CRLF", offset=i, field="line"
                )
            if self.field == _UNKNOWN_TAIL:
                self.cr = byte == 0x0D
            elif byte == 0x20 or byte == 0x0D:
                self.work += i - self.tok
                self._finish(bytes(data[self.tok : i]), i, byte)
                self.tok = i + 1
            else:
                token = bytes(data[self.tok : i + 1])
                self.work += len(token)
                if not _prefix_ok(self.field, token, self.v6):
                    raise self._bad_byte(token, i)
            if i >= last:
                raise ProxyProtocolError(
                    f"line: no CRLF within the first {self.max_line} bytes (spec §2.1 limit: 107)",
                    offset=i,
                    field="line",
                )
        return False

    def _bad_byte(self, token: bytes, i: int) -> ProxyProtocolError:
        field = self.field
        name = _FIELD_NAMES[field]
        if field == 0:
            what = f"{_show(token)} does not start TCP4, TCP6 or UNKNOWN"
        else:
            what = f"{_show(token)} cannot start a canonical {_kind(field, self.v6)}"
        return ProxyProtocolError(
            f"{name}: {what}; byte 0x{token[-1]:02x} is not allowed here",
            offset=i,
            field=name,
        )

    def _finish(self, token: bytes, i: int, byte: int) -> None:
        """The field ``token`` ended with a space or CR at offset ``i``."""
        field = self.field
        name = _FIELD_NAMES[field]
        if not token:
            raise ProxyProtocolError(
                f"{name}: empty field: fields are separated by one space", offset=i, field=name
            )
        if field == 0:
            if token == b"UNKNOWN":
                if byte == 0x20:
                    self.field = _UNKNOWN_TAIL
                else:
                    self.cr = True
                return
            if token != b"TCP4" and token != b"TCP6":
                raise ProxyProtocolError(
                    f"family: {_show(token)} is not TCP4, TCP6 or UNKNOWN", offset=i, field=name
                )
            self.v6 = token == b"TCP6"
        elif not _complete_ok(field, token, self.v6):
            raise ProxyProtocolError(
                f"{name}: {_show(token)} is not a canonical {_kind(field, self.v6)}",
                offset=i,
                field=name,
            )
        if byte == 0x20:
            if field == 4:
                raise ProxyProtocolError(
                    "line: extra field after the destination port (only CRLF may follow it)",
                    offset=i,
                    field="line",
                )
            self.field = field + 1
        elif field < 4:
            missing = _FIELD_NAMES[field + 1]
            raise ProxyProtocolError(
                f"{missing}: line ends before the field", offset=i, field=missing
            )
        else:
            self.cr = True


def decode_v1(data: bytes, n: int, max_line: int) -> tuple[ProxyHeader, int] | None:
    """Decode a v1 line; ``data`` starts with ``b"PROXY "``."""
    lf = data.find(b"\n", 6, max_line)
    if lf >= 0:
        header = parse_line(data, lf)
        if header is not None:
            return header, lf + 1
        V1Scanner(max_line).scan(data, lf + 1)
        raise ProxyProtocolError(  # pragma: no cover - parse_line and the scanner agree
            "line: not a valid v1 line", offset=6, field="line"
        )
    V1Scanner(max_line).scan(data, min(n, max_line))
    return None


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
        return _TCP4_TEXT % (o[a], o[b], o[c], o[d], o[e], o[f], o[g], o[i], h.src_port, h.dst_port)
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
