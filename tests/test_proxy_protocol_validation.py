"""Validate once, at decode (issue 9): after ``decode`` returns, reading any field or typed view
never raises, and every rule a real receiver (HAProxy) or the spec applies is checked there.

Each rejected case is fed whole, one byte at a time and with payload behind it, and the message
names the field and the byte offset (h11's test_io style, as tests/test_proxy_protocol.py).
"""

from __future__ import annotations

import ipaddress
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim.proxy_protocol._tlv as tlv_module
from sim.proxy_protocol import (
    TLV,
    V2_SIGNATURE,
    Command,
    DecodeLimits,
    Decoder,
    Family,
    ProxyHeader,
    ProxyProtocolError,
    TLVType,
    decode,
    encode,
    ssl_tlv,
)

SIG = V2_SIGNATURE
BLOCK = ipaddress.IPv4Address("10.0.0.1").packed + bytes(4) + b"\x00\x01\x00\x02"
PAYLOAD = b"GET / HTTP/1.1\r\n\r\n"
WIDE = DecodeLimits(max_v2_header_size=65551, max_tlv_value_size=65535)


def tlv(type_: int, value: bytes) -> bytes:
    return bytes((type_,)) + len(value).to_bytes(2, "big") + value


def v2(*tlvs: bytes) -> bytes:
    body = BLOCK + b"".join(tlvs)
    return SIG + b"\x21\x11" + len(body).to_bytes(2, "big") + body


def ssl_value(*subs: bytes) -> bytes:
    return b"\x01" + bytes(4) + b"".join(subs)


# The value of the first TLV starts at 16 + 12 + 3 = 31; its length field is at 29.
# (id, bytes, message start, offset)
REJECTED = [
    ("authority-not-utf8", v2(tlv(2, b"a\xffb")), "tlv[0].value: AUTHORITY is not UTF-8", 32),
    (
        "authority-nul",
        v2(tlv(2, b"good.example\x00.evil")),
        "tlv[0].value: AUTHORITY contains NUL",
        43,
    ),
    ("authority-cr", v2(tlv(2, b"a\rb")), "tlv[0].value: AUTHORITY contains CR", 32),
    ("authority-lf", v2(tlv(2, b"a\nb")), "tlv[0].value: AUTHORITY contains LF", 32),
    ("authority-crlf", v2(tlv(2, b"host\r\nX-Evil: 1")), "tlv[0].value: AUTHORITY contains CR", 35),
    ("authority-256", v2(tlv(2, b"a" * 256)), "tlv[0].length: AUTHORITY is at most 255", 29),
    ("two-authorities", v2(tlv(2, b"a"), tlv(2, b"b")), "tlv[1]: a second AUTHORITY", 32),
    ("two-crc32c", v2(tlv(3, bytes(4)), tlv(3, bytes(4))), "tlv[1]: a second CRC32C", 35),
    ("two-unique-ids", v2(tlv(5, b"1"), tlv(5, b"2")), "tlv[1]: a second UNIQUE_ID", 32),
    ("two-ssl", v2(tlv(0x20, bytes(5)), tlv(0x20, bytes(5))), "tlv[1]: a second SSL", 36),
    ("two-netns", v2(tlv(0x30, b"a"), tlv(1, b""), tlv(0x30, b"b")), "tlv[2]: a second NETNS", 35),
    ("netns-not-ascii", v2(tlv(0x30, "é".encode())), "tlv[0].value: NETNS is not US-ASCII", 31),
    ("unique-id-129", v2(tlv(5, b"u" * 129)), "tlv[0].length: UNIQUE_ID is at most 128", 29),
    (
        "tlv-value-over-1024",
        v2(tlv(4, bytes(1025))),
        "tlv[0].length: NOOP value of 1025 bytes is over max_tlv_value_size=1024",
        29,
    ),
    (
        "ssl-over-1024",
        v2(tlv(0x20, ssl_value(tlv(0x21, b"x" * 1020)))),
        "tlv[0].length: SSL value of 1028 bytes is over max_tlv_value_size=1024",
        29,
    ),
    (
        "header-over-16k",
        v2(tlv(4, bytes(1000)))[:14] + (16369).to_bytes(2, "big"),
        "length: header of 16385 bytes exceeds max_v2_header_size=16384",
        14,
    ),
    (
        "ssl-two-cn",
        v2(tlv(0x20, ssl_value(tlv(0x22, b"a"), tlv(0x22, b"b")))),
        "tlv[0].ssl.sub_tlv[1]: a second SSL_CN sub-TLV",
        40,
    ),
    (
        "ssl-cn-not-utf8",
        v2(tlv(0x20, ssl_value(tlv(0x21, b"TLSv1.3"), tlv(0x22, b"\xc3")))),
        "tlv[0].ssl.sub_tlv[1].value: SSL_CN is not UTF-8",
        49,
    ),
    (
        "ssl-version-not-ascii",
        v2(tlv(0x20, ssl_value(tlv(0x21, "TLSv1.3é".encode())))),
        "tlv[0].ssl.sub_tlv[0].value: SSL_VERSION is not US-ASCII",
        46,
    ),
]


@pytest.mark.parametrize(
    ("data", "message", "offset"), [r[1:] for r in REJECTED], ids=[r[0] for r in REJECTED]
)
def test_rejected_at_decode_with_field_and_offset(data: bytes, message: str, offset: int) -> None:
    with pytest.raises(ProxyProtocolError) as info:
        decode(data)
    assert str(info.value).startswith(message), str(info.value)
    assert info.value.offset == offset, str(info.value)
    assert f"(at byte offset {offset})" in str(info.value)
    assert info.value.field in ("tlvs", "length")
    with pytest.raises(ProxyProtocolError) as with_payload:
        decode(data + PAYLOAD)
    assert str(with_payload.value) == str(info.value)
    decoder = Decoder()
    with pytest.raises(ProxyProtocolError) as fed:
        for i in range(len(data)):
            decoder.feed(data[i : i + 1])
    assert str(fed.value) == str(info.value)


def test_a_built_header_obeys_the_same_rules() -> None:
    base = {
        "version": 2,
        "command": Command.PROXY,
        "family": Family.TCP4,
        "src_addr": "10.0.0.1",
        "dst_addr": "0.0.0.0",
        "src_port": 1,
        "dst_port": 2,
    }
    for tlvs, message in [
        ((TLV(2, b"a\x00"),), "tlv[0].value: AUTHORITY contains NUL"),
        ((TLV(2, b"a"), TLV(2, b"a")), "tlv[1]: a second AUTHORITY"),
        ((ssl_tlv(cn="a", extra=[TLV(0x22, b"b")]),), "tlv[0].ssl.sub_tlv[1]: a second SSL_CN"),
        ((TLV(0x30, b"\xff"),), "tlv[0].value: NETNS is not US-ASCII"),
    ]:
        with pytest.raises(ProxyProtocolError, match=rf"^{re.escape(message)}"):
            ProxyHeader(**base, tlvs=tlvs)  # type: ignore[arg-type]


def test_the_limits_follow_haproxy_and_stay_configurable() -> None:
    limits = DecodeLimits()
    assert (limits.max_v2_header_size, limits.max_tlv_value_size) == (16384, 1024)
    big = v2(tlv(4, bytes(5000)))
    assert decode(big, WIDE) is not None
    with pytest.raises(ProxyProtocolError, match="max_tlv_value_size=1024"):
        decode(big)
    with pytest.raises(ProxyProtocolError, match=r"^max_tlv_value_size"):
        DecodeLimits(max_tlv_value_size=65536)
    largest = v2(*[tlv(4, bytes(1024))] * 15)  # 15 x 1027 + 28 = 15433 bytes, under 16 KiB
    assert decode(largest) is not None


def test_ssl_is_validated_without_objects_and_its_view_is_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hostile case of the audit: an SSL TLV of 21,838 sub-TLVs (65,519 bytes)."""
    hostile = ssl_value(*[tlv(0x28, b"")] * 21_838)
    wire = v2(tlv(0x20, hostile))
    built: list[int] = []
    real_new_tlv = tlv_module.new_tlv
    monkeypatch.setattr(tlv_module, "new_tlv", lambda t, v: built.append(t) or real_new_tlv(t, v))
    header, _ = decode(wire, WIDE) or (None, 0)
    assert header is not None and built == []  # decode walked the sub-TLVs, built none
    first = header.ssl
    assert first is not None and len(first.sub_tlvs) == 21_838 and len(built) == 21_838
    assert header.ssl is first and len(built) == 21_838  # cached: not parsed again
    assert header == decode(wire, WIDE)[0]  # type: ignore[index]  # the cache is not compared


# Every typed view of a ProxyHeader (also read by test_proxy_protocol_props.py).
VIEWS = (
    "alpn",
    "authority",
    "crc32c",
    "noop",
    "unique_id",
    "ssl",
    "netns",
    "aws_vpce_id",
    "azure_link_id",
    "gcp_psc_connection_id",
)
any_tlv = st.builds(
    tlv,
    st.sampled_from([0x01, 0x02, 0x03, 0x04, 0x05, 0x20, 0x21, 0x22, 0x30, 0xE0, 0xEA, 0xEE]),
    st.binary(max_size=24),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(any_tlv, max_size=5), st.booleans())
def test_after_decode_no_view_ever_raises(tlvs: list[bytes], with_ssl_subs: bool) -> None:
    """Random TLV mixes: either decode raises our error, or every field and view can be read."""
    if with_ssl_subs:
        tlvs.append(tlv(0x20, ssl_value(*tlvs[:2])))
    data = v2(*tlvs)
    try:
        result = decode(data)
    except ProxyProtocolError:
        return
    assert result is not None
    header = result[0]
    for view in VIEWS:
        getattr(header, view)
    if header.ssl is not None:
        ssl = header.ssl
        _ = (ssl.version, ssl.cn, ssl.cipher, ssl.sig_alg, ssl.key_alg, ssl.verified)
    assert decode(encode(header)) == (header, len(encode(header)))  # and it is a valid header
    assert header.command is Command.PROXY and header.family is Family.TCP4
    assert [t.type for t in header.tlvs] == [b[0] for b in tlvs]
    assert all(isinstance(t.type, int) for t in header.tlvs)
    assert TLVType.AUTHORITY not in [t.type for t in header.tlvs] or header.authority is not None


def test_no_message_cites_a_fact_id() -> None:
    """Every error the tests provoke speaks the spec (§ numbers), never "(FACTS E5)"."""
    import test_proxy_protocol as vectors

    fact_id = re.compile(r"FACTS|\((?:[A-K][0-9]+(?:, )?)+\)")
    cases = [r[1] for r in REJECTED] + [e[1] for e in vectors.ERRORS]
    for data in cases:
        with pytest.raises(ProxyProtocolError) as info:
            decode(data)
        assert not fact_id.search(str(info.value)), str(info.value)
