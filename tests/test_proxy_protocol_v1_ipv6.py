"""v1 TCP6 addresses in every RFC 4291 §2.2 text form, as HAProxy's own parser (inet_pton) reads
them: full, compressed, and form 3 with a dotted-quad tail, which HAProxy itself writes for an
IPv4 client on a ``v4v6`` listener (``::ffff:127.0.0.1``; see tests/test_interop_haproxy.py)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.proxy_protocol import Family, ProxyProtocolError, decode, encode

HAPROXY_V4V6_LINE = b"PROXY TCP6 ::ffff:127.0.0.1 ::ffff:127.0.0.1 36938 34537\r\n"


def mixed(addr: ipaddress.IPv6Address) -> str:
    """Form 3: six hex groups, then the last 32 bits as a dotted quad."""
    groups = addr.exploded.split(":")[:6]
    return ":".join(groups) + ":" + str(ipaddress.IPv4Address(addr.packed[12:]))


def assert_decodes_like_a_stream(line: bytes) -> None:
    """Whole, every proper prefix (None), and with trailing payload (untouched)."""
    result = decode(line)
    assert result is not None and result[1] == len(line)
    for i in range(len(line)):
        assert decode(line[:i]) is None, i
    with_payload = decode(line + b"GET / HTTP/1.1\r\n")
    assert with_payload == result


def test_the_line_haproxy_writes_for_an_ipv4_client_on_a_v4v6_listener() -> None:
    assert_decodes_like_a_stream(HAPROXY_V4V6_LINE)
    header, _ = decode(HAPROXY_V4V6_LINE) or (None, 0)
    assert header is not None and header.family is Family.TCP6
    assert header.src_addr == ipaddress.IPv6Address("::ffff:7f00:1")
    assert header.src_addr.ipv4_mapped == ipaddress.IPv4Address("127.0.0.1")
    assert (header.src_port, header.dst_port) == (36938, 34537)
    # We write the hex form; both name the same address, so the round trip holds.
    assert decode(encode(header)) == (header, len(encode(header)))


@settings(max_examples=150, deadline=None)
@given(st.ip_addresses(v=6), st.sampled_from(["compressed", "exploded", "mixed", "mapped"]))
def test_every_rfc4291_text_form_decodes_to_the_same_address(
    addr: ipaddress.IPv6Address, form: str
) -> None:
    if form == "mapped":
        addr = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + addr.packed[12:])
        text = f"::ffff:{addr.ipv4_mapped}"
    elif form == "mixed":
        text = mixed(addr)
    else:
        text = getattr(addr, form)
    line = f"PROXY TCP6 {text} ::1 1 65535\r\n".encode()
    assert_decodes_like_a_stream(line)
    header, _ = decode(line) or (None, 0)
    assert header is not None and header.src_addr == addr


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("::ffff:127.0.0.01", 16),  # a leading zero in the dotted quad: the "1" after "0"
        ("::ffff:1.2.3", 12),  # three octets: the space that ends the field
        ("::ffff:1.2.3.256", 15),
        ("1:2:3:4:5:6:7:1.2.3.4", 15),  # nine groups: the "." that starts a dotted quad
        ("1:2:3:4:5:6::1.2.3.4", 14),
        ("::1.2.3.4.5", 9),
        ("1.2.3.4", 1),  # IPv4 in a TCP6 line
        ("::1%lo", 3),  # zone id
        ("::ffff:١٢٧.0.0.1", 7),  # non-ASCII digits
    ],
)
def test_non_canonical_ipv6_text_is_rejected_at_its_offending_byte(text: str, bad: int) -> None:
    """The offset is the first byte after which no address can follow, whole or in pieces."""
    line = f"PROXY TCP6 {text} ::1 1 2\r\n".encode()
    with pytest.raises(ProxyProtocolError, match=r"^src_addr") as info:
        decode(line)
    offset = 11 + len(text[:bad].encode())
    assert info.value.offset == offset
    for k in range(offset + 1):
        assert decode(line[:k]) is None, k
    with pytest.raises(ProxyProtocolError, match=r"^src_addr"):
        decode(line[: offset + 1])
