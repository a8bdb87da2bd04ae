"""Vectors and error classes for sim.proxy_protocol, fed like h11's tests/test_io.py does:
whole, one byte at a time, and followed by payload bytes."""

from __future__ import annotations

import dataclasses
import re
import struct
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from crc32c import crc32c

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
    anatomy,
    aws_vpce_tlv,
    azure_link_id_tlv,
    decode,
    encode,
    gcp_psc_tlv,
    ssl_tlv,
)

SIG = V2_SIGNATURE
PAYLOAD = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def v4(src: str, dst: str, sport: int, dport: int) -> bytes:
    return IPv4Address(src).packed + IPv4Address(dst).packed + struct.pack("!HH", sport, dport)


def tlv(type_: int, value: bytes) -> bytes:
    return bytes((type_,)) + len(value).to_bytes(2, "big") + value


def with_crc(header_without_crc_value: bytes, crc_at: int) -> bytes:
    """Fill the 4 zero bytes at ``crc_at`` with the CRC32C of the whole header (§2.2.3)."""
    crc = crc32c(header_without_crc_value)
    return (
        header_without_crc_value[:crc_at]
        + crc.to_bytes(4, "big")
        + header_without_crc_value[crc_at + 4 :]
    )


def tcp(version: int, src: str, dst: str, sport: int, dport: int, *tlvs: TLV) -> ProxyHeader:
    s, d = ip_address(src), ip_address(dst)
    family = Family.TCP4 if s.version == 4 else Family.TCP6
    return ProxyHeader(
        version=version,
        command=Command.PROXY,
        family=family,
        src_addr=s,
        dst_addr=d,
        src_port=sport,
        dst_port=dport,
        tlvs=tlvs,
    )


UNIX_SRC = "/run/haproxy/client.sock"
UNIX_DST = "/var/run/app.sock"
_CRC_BODY = (
    SIG + b"\x21\x11\x00\x13" + v4("10.0.0.1", "10.0.0.2", 1, 2) + tlv(3, b"\x00\x00\x00\x00")
)
SSL_VALUE = (
    b"\x07"
    + (0).to_bytes(4, "big")
    + tlv(0x21, b"TLSv1.3")
    + tlv(0x22, b"client.example")
    + tlv(0x23, b"TLS_AES_128_GCM_SHA256")
    + tlv(0x24, b"RSA-SHA256")
    + tlv(0x25, b"RSA2048")
)

# (id, wire bytes, expected header) -- wire bytes written by hand from the spec, not by encode().
VALID = [
    (
        "v1-tcp4-spec-example",  # §2.1 example line
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
        tcp(1, "192.168.0.1", "192.168.0.11", 56324, 443),
    ),
    (
        "v1-tcp6",
        b"PROXY TCP6 2001:db8::1 2001:DB8:0:0:0:0:0:11 56324 443\r\n",
        tcp(1, "2001:db8::1", "2001:db8::11", 56324, 443),
    ),
    (
        "v1-tcp6-longest",  # §2.1: 104 chars
        b"PROXY TCP6 "
        + b":".join([b"ffff"] * 8)
        + b" "
        + b":".join([b"ffff"] * 8)
        + b" 65535 65535\r\n",
        tcp(1, "ffff:" * 7 + "ffff", "ffff:" * 7 + "ffff", 65535, 65535),
    ),
    (
        "v1-tcp4-zeros",
        b"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n",
        tcp(1, "0.0.0.0", "255.255.255.255", 0, 65535),
    ),
    ("v1-unknown-short", b"PROXY UNKNOWN\r\n", ProxyHeader.local(1)),
    (
        "v1-unknown-worst-case",  # §2.1: 107 chars, the rest of the line is ignored
        b"PROXY UNKNOWN "
        + b":".join([b"ffff"] * 8)
        + b" "
        + b":".join([b"ffff"] * 8)
        + b" 65535 65535\r\n",
        ProxyHeader(version=1, command=Command.PROXY, family=Family.UNSPEC),
    ),
    (
        "v2-tcp4-haproxy",  # FACTS H3: 0D0A..0A 21 11 000C <src4><dst4><sport><dport>
        SIG + b"\x21\x11\x00\x0c" + v4("192.168.0.1", "192.168.0.11", 56324, 443),
        tcp(2, "192.168.0.1", "192.168.0.11", 56324, 443),
    ),
    (
        "v2-tcp6",
        SIG
        + b"\x21\x21\x00\x24"
        + IPv6Address("2001:db8::1").packed
        + IPv6Address("2001:db8::2").packed
        + struct.pack("!HH", 40000, 8443),
        tcp(2, "2001:db8::1", "2001:db8::2", 40000, 8443),
    ),
    (
        "v2-udp4",
        SIG + b"\x21\x12\x00\x0c" + v4("198.51.100.1", "198.51.100.2", 53, 5353),
        ProxyHeader(
            version=2,
            command=Command.PROXY,
            family=Family.UDP4,
            src_addr=IPv4Address("198.51.100.1"),
            dst_addr=IPv4Address("198.51.100.2"),
            src_port=53,
            dst_port=5353,
        ),
    ),
    (
        "v2-unix-stream",
        SIG
        + b"\x21\x31\x00\xd8"
        + UNIX_SRC.encode().ljust(108, b"\x00")
        + UNIX_DST.encode().ljust(108, b"\x00"),
        ProxyHeader(
            version=2,
            command=Command.PROXY,
            family=Family.UNIX_STREAM,
            src_addr=UNIX_SRC,
            dst_addr=UNIX_DST,
        ),
    ),
    (
        "v2-local-health-check",  # FACTS H4: exactly 0D0A..0A 20 00 0000
        bytes.fromhex("0D0A0D0A000D0A515549540A20000000"),
        ProxyHeader.local(),
    ),
    (
        "v2-local-with-address-block-and-tlv",  # §2.2: skip the block, addresses ignored
        SIG + b"\x20\x11\x00\x12" + v4("1.2.3.4", "5.6.7.8", 1, 2) + tlv(4, b"pad"),
        ProxyHeader(version=2, command=Command.LOCAL, family=Family.TCP4, tlvs=(TLV(4, b"pad"),)),
    ),
    (
        "v2-proxy-unspec-with-tlv",  # addresses ignored; the bytes are TLVs
        SIG + b"\x21\x00\x00\x05" + tlv(1, b"h2"),
        ProxyHeader(version=2, command=Command.PROXY, family=Family.UNSPEC, tlvs=(TLV(1, b"h2"),)),
    ),
    (
        "v2-tcp4-tlvs",
        SIG
        + b"\x21\x11\x00\x39"
        + v4("203.0.113.7", "10.0.0.10", 51000, 443)
        + tlv(1, b"h2")
        + tlv(2, b"example.com")
        + tlv(5, b"0123456789abcdef")
        + tlv(0x30, b"blue"),
        tcp(
            2,
            "203.0.113.7",
            "10.0.0.10",
            51000,
            443,
            TLV(1, b"h2"),
            TLV(2, b"example.com"),
            TLV(5, b"0123456789abcdef"),
            TLV(0x30, b"blue"),
        ),
    ),
    (
        "v2-tcp4-crc32c",
        with_crc(_CRC_BODY, 31),
        tcp(
            2,
            "10.0.0.1",
            "10.0.0.2",
            1,
            2,
            TLV(3, crc32c(_CRC_BODY).to_bytes(4, "big")),
        ),
    ),
    (
        "v2-tcp4-ssl-and-vendor-tlvs",
        SIG
        + bytes((0x21, 0x11))
        + (12 + 3 + len(SSL_VALUE) + 3 + 14 + 3 + 5 + 3 + 8).to_bytes(2, "big")
        + v4("10.1.1.1", "10.2.2.2", 1000, 2000)
        + tlv(0x20, SSL_VALUE)
        + tlv(0xEA, b"\x01vpce-abc12345")
        + tlv(0xEE, b"\x01\xc1\x45\x00\x21")
        + tlv(0xE0, b"\xff\xff\xff\xff\xc0\xa8\x64\x02"),
        tcp(
            2,
            "10.1.1.1",
            "10.2.2.2",
            1000,
            2000,
            TLV(0x20, SSL_VALUE),
            TLV(0xEA, b"\x01vpce-abc12345"),
            TLV(0xEE, b"\x01\xc1\x45\x00\x21"),
            TLV(0xE0, b"\xff\xff\xff\xff\xc0\xa8\x64\x02"),
        ),
    ),
]


@pytest.mark.parametrize(("wire", "expected"), [v[1:] for v in VALID], ids=[v[0] for v in VALID])
class TestValidVectors:
    def test_whole(self, wire: bytes, expected: ProxyHeader) -> None:
        assert decode(wire) == (expected, len(wire))

    def test_one_byte_at_a_time(self, wire: bytes, expected: ProxyHeader) -> None:
        for k in range(len(wire)):
            assert decode(wire[:k]) is None, f"prefix of {k} bytes"
        assert decode(wire) == (expected, len(wire))

    def test_trailing_payload_untouched(self, wire: bytes, expected: ProxyHeader) -> None:
        stream = bytearray(wire + PAYLOAD)
        result = decode(stream)
        assert result == (expected, len(wire))
        assert stream[result[1] :] == PAYLOAD
        assert decode(memoryview(stream)) == (expected, len(wire))

    def test_reencode(self, wire: bytes, expected: ProxyHeader) -> None:
        again = encode(expected)
        assert decode(again) == (expected, len(again))

    def test_anatomy_covers_every_byte(self, wire: bytes, expected: ProxyHeader) -> None:
        fields = anatomy(wire + PAYLOAD)
        pos = 0
        for f in fields:
            assert f.offset == pos and f.raw == wire[pos : pos + f.length] and f.meaning
            pos += f.length
        assert pos == len(wire)


def test_exact_encodings_match_the_spec_bytes() -> None:
    by_id = {v[0]: v for v in VALID}
    for name in (
        "v1-tcp4-spec-example",
        "v1-unknown-short",
        "v2-tcp4-haproxy",
        "v2-tcp6",
        "v2-unix-stream",
        "v2-local-health-check",
        "v2-tcp4-tlvs",
        "v2-tcp4-crc32c",
    ):
        _, wire, header = by_id[name]
        assert encode(header) == wire, name
    assert len(encode(by_id["v2-tcp4-haproxy"][2])) == 28  # FACTS H3
    assert len(encode(by_id["v2-tcp6"][2])) == 52


def test_typed_tlv_views() -> None:
    header, _ = decode(dict((v[0], v[1]) for v in VALID)["v2-tcp4-ssl-and-vendor-tlvs"]) or (
        None,
        0,
    )
    assert header is not None
    ssl = header.ssl
    assert ssl is not None
    assert (ssl.client_ssl, ssl.client_cert_conn, ssl.client_cert_sess) == (True, True, True)
    assert ssl.verify == 0 and ssl.verified
    assert ssl.version == "TLSv1.3"
    assert ssl.cn == "client.example"
    assert ssl.cipher == "TLS_AES_128_GCM_SHA256"
    assert ssl.sig_alg == "RSA-SHA256"
    assert ssl.key_alg == "RSA2048"
    assert header.aws_vpce_id == "vpce-abc12345"
    assert header.azure_link_id == 0x210045C1  # little-endian, as go-proxyproto's test vector
    assert header.gcp_psc_connection_id == 18446744072646845442
    assert header.alpn is None and header.authority is None and header.crc32c is None
    tlvs, _ = decode(dict((v[0], v[1]) for v in VALID)["v2-tcp4-tlvs"]) or (None, 0)
    assert tlvs is not None
    assert tlvs.alpn == b"h2"
    assert tlvs.authority == "example.com"
    assert tlvs.unique_id == b"0123456789abcdef"
    assert tlvs.netns == "blue"
    assert tlvs.ssl is None and tlvs.aws_vpce_id is None and tlvs.gcp_psc_connection_id is None
    assert tlvs.get_tlv(0x30) == b"blue" and tlvs.get_tlv(0x99) is None
    assert tlvs.noop is None
    padded = tcp(2, "10.0.0.1", "10.0.0.2", 1, 2, TLV(TLVType.NOOP, bytes(3)))
    decoded, _ = decode(encode(padded)) or (None, 0)
    assert decoded is not None and decoded.noop == bytes(3)  # §2.2.4: padding, ignored


def test_tlv_builders_round_trip() -> None:
    header = tcp(
        2,
        "10.0.0.1",
        "10.0.0.2",
        1,
        2,
        ssl_tlv(client=1, verify=1, version="TLSv1.2", cipher="AES128-SHA"),
        aws_vpce_tlv("vpce-0123"),
        azure_link_id_tlv(7),
        gcp_psc_tlv(2**64 - 1),
    )
    decoded, _ = decode(encode(header)) or (None, 0)
    assert decoded == header
    assert decoded is not None and decoded.ssl is not None
    assert decoded.ssl.version == "TLSv1.2" and not decoded.ssl.verified
    assert decoded.ssl.cn is None
    assert (decoded.aws_vpce_id, decoded.azure_link_id) == ("vpce-0123", 7)
    assert decoded.gcp_psc_connection_id == 2**64 - 1


def test_views_never_raise_and_vendor_views_say_none_for_other_layouts() -> None:
    """Rules are checked when a header is made (decoded or built), so views never raise; the
    custom range (§2.2.8) is the application's, so a value without the vendor's layout is
    ``None``, not an error."""
    with pytest.raises(ProxyProtocolError, match=r"^tlv\[0\]\.value: AUTHORITY is not UTF-8"):
        tcp(2, "1.1.1.1", "2.2.2.2", 1, 2, TLV(2, b"\xff"))
    h = tcp(
        2, "1.1.1.1", "2.2.2.2", 1, 2, TLV(0xE0, b"123"), TLV(0xEE, b"\x01"), TLV(0xEA, b"\x01\xff")
    )
    assert (h.gcp_psc_connection_id, h.azure_link_id, h.aws_vpce_id) == (None, None, None)
    decoded, _ = decode(encode(h)) or (None, 0)
    assert decoded == h and decoded is not None and decoded.gcp_psc_connection_id is None


def test_crc32c_emitted_on_request_and_recomputed() -> None:
    h = tcp(2, "10.0.0.1", "10.0.0.2", 1, 2)
    wire = encode(h, crc32c=True)
    assert wire == with_crc(_CRC_BODY, 31)
    decoded, n = decode(wire) or (None, 0)
    assert decoded is not None and n == len(wire)
    assert decoded.crc32c == crc32c(_CRC_BODY)
    stale = dataclasses.replace(decoded, tlvs=(TLV(3, b"\x00\x00\x00\x00"),))
    assert encode(stale) == wire  # a present CRC32C TLV always gets the right value
    assert encode(stale, crc32c=True) == wire  # and is not duplicated


def test_lazy_fields_are_equal_hashable_and_replaceable() -> None:
    wire = encode(tcp(2, "10.0.0.1", "10.0.0.2", 1, 2, TLV(1, b"h2")))
    a, _ = decode(wire) or (None, 0)
    b, _ = decode(wire) or (None, 0)
    assert a is not None and b is not None
    assert hash(a) == hash(b) and a == b
    assert a.src_addr == IPv4Address("10.0.0.1") and a.tlvs == (TLV(TLVType.ALPN, b"h2"),)
    assert "10.0.0.1" in repr(b)
    c = dataclasses.replace(b, src_port=9)
    assert c.src_port == 9 and c.dst_addr == IPv4Address("10.0.0.2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.src_port = 5  # type: ignore[misc]


# -- error classes --------------------------------------------------------------------------

TCP4_BLOCK = v4("1.2.3.4", "5.6.7.8", 1, 2)
SSL_BAD = tlv(0x20, b"\x01\x00\x00\x00\x00" + b"\x21\x00\x09abc")

# (id, bytes, field in the message, error offset, bytes needed before the error is detectable)
ERRORS = [
    ("http-request", b"GET / HTTP/1.1\r\n", "signature", 0, 1),
    ("tls-client-hello", b"\x16\x03\x01\x02\x00\x01", "signature", 0, 1),
    ("v2-signature-byte-5", SIG[:5] + b"\x0a" + SIG[6:] + b"\x21\x11\x00\x0c", "signature", 5, 6),
    ("v1-prefix", b"PROXZ TCP4", "line", 4, 5),
    ("version-nibble", SIG + b"\x11\x11\x00\x0c" + TCP4_BLOCK, "version", 12, 13),
    ("command-nibble", SIG + b"\x22\x11\x00\x0c" + TCP4_BLOCK, "command", 12, 13),
    ("family-byte", SIG + b"\x21\x13\x00\x0c" + TCP4_BLOCK, "family", 13, 14),
    ("family-inet-unspec-transport", SIG + b"\x21\x10\x00\x0c" + TCP4_BLOCK, "family", 13, 14),
    ("length-shorter-than-block", SIG + b"\x21\x11\x00\x08" + TCP4_BLOCK[:8], "length", 14, 16),
    (
        "tlv-overruns-header",
        SIG + b"\x21\x11\x00\x11" + TCP4_BLOCK + b"\x01\x00\x0aab",
        "tlv",
        29,
        33,
    ),
    ("tlv-header-truncated", SIG + b"\x21\x11\x00\x0e" + TCP4_BLOCK + b"\x01\x00", "tlv", 28, 30),
    ("crc32c-mismatch", _CRC_BODY[:-4] + b"\x00\x00\x00\x01", "crc32c", 31, 35),
    (
        "crc32c-length",
        SIG + b"\x21\x11\x00\x12" + TCP4_BLOCK + tlv(3, b"\x00\x00\x00"),
        "tlv",
        29,
        34,
    ),
    ("crc32c-twice", SIG + b"\x21\x11\x00\x1a" + TCP4_BLOCK + tlv(3, bytes(4)) * 2, "tlv", 35, 42),
    (
        "ssl-too-short",
        SIG + b"\x21\x11\x00\x11" + TCP4_BLOCK + tlv(0x20, b"\x01\x00"),
        "tlv",
        31,
        33,
    ),
    (
        "ssl-sub-tlv-overrun",
        SIG + bytes((0x21, 0x11, 0, 12 + len(SSL_BAD))) + TCP4_BLOCK + SSL_BAD,
        "tlv",
        37,
        16 + 12 + len(SSL_BAD),
    ),
    (
        "unique-id-too-long",
        SIG + b"\x21\x11\x00\x90" + TCP4_BLOCK + tlv(5, b"u" * 129),
        "tlv",
        29,
        160,
    ),
    (
        "unix-path-not-utf8",
        SIG + b"\x21\x31\x00\xd8" + b"\xff".ljust(108, b"\x00") + b"/x".ljust(108, b"\x00"),
        "src_addr",
        16,
        232,
    ),
    ("v1-no-crlf-in-107", b"PROXY UNKNOWN " + b"x" * 93, "line", 106, 107),
    ("v1-lf-without-cr", b"PROXY UNKNOWN\n", "line", 13, 14),
    ("v1-stray-cr", b"PROXY UNKNOWN a\rb\r\n", "line", 15, 17),
    # v1: the offset is the first byte after which no valid line can follow (for a CR not
    # followed by LF, the CR); "detect" is then that offset + 1, whole or byte by byte.
    ("v1-protocol-word", b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "family", 9, 10),
    ("v1-protocol-lowercase", b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "family", 6, 7),
    ("v1-udp4", b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "family", 7, 8),
    ("v1-port-plus", b"PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n", "src_port", 27, 28),
    ("v1-port-underscore", b"PROXY TCP4 1.2.3.4 5.6.7.8 8_0 2\r\n", "src_port", 28, 29),
    ("v1-port-leading-zero", b"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", "src_port", 28, 29),
    ("v1-port-too-big", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", "dst_port", 33, 34),
    (
        "v1-port-non-ascii-digits",
        "PROXY TCP4 1.2.3.4 5.6.7.8 ٨٠ 2\r\n".encode(),
        "src_port",
        27,
        28,
    ),
    ("v1-ipv4-leading-zero", b"PROXY TCP4 192.168.00.1 5.6.7.8 1 2\r\n", "src_addr", 20, 21),
    ("v1-ipv4-octet-256", b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "src_addr", 19, 20),
    ("v1-ipv4-three-octets", b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "src_addr", 16, 17),
    ("v1-tcp4-with-ipv6", b"PROXY TCP4 ::1 ::2 1 2\r\n", "src_addr", 11, 12),
    ("v1-tcp6-with-ipv4", b"PROXY TCP6 1.2.3.4 ::2 1 2\r\n", "src_addr", 12, 13),
    ("v1-ipv6-zone-id", b"PROXY TCP6 fe80::1%eth0 ::2 1 2\r\n", "src_addr", 18, 19),
    ("v1-ipv6-two-double-colons", b"PROXY TCP6 1::2::3 ::2 1 2\r\n", "src_addr", 16, 17),
    ("v1-double-space", b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "dst_addr", 19, 20),
    ("v1-missing-field", b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "dst_port", 28, 29),
    ("v1-extra-field", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "line", 30, 31),
    # The three v1 cases the audit found reported at the wrong byte (issue 9).
    (
        "v1-tab-in-address",
        b"PROXY TCP4 192.168.0\t1 192.168.0.11 56324 443\r\n",
        "src_addr",
        20,
        21,
    ),
    ("v1-cr-then-payload", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 443\rGET / HTTP/1.1\r\n", "line", 32, 34),
    ("v1-cr-cr-lf", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 443\r\r\n", "line", 32, 34),
]


@pytest.mark.parametrize(
    ("data", "field", "offset", "detect"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
class TestErrorClasses:
    def test_whole(self, data: bytes, field: str, offset: int, detect: int) -> None:
        with pytest.raises(ProxyProtocolError) as info:
            decode(data)
        assert info.value.offset == offset, str(info.value)
        assert str(info.value).startswith(field), str(info.value)
        assert f"byte offset {offset}" in str(info.value)

    def test_one_byte_at_a_time(self, data: bytes, field: str, offset: int, detect: int) -> None:
        """Prefixes are "need more" until the bad byte is in, then the same error, always:
        the same message and offset as for the whole input (h11's test_io style)."""
        with pytest.raises(ProxyProtocolError) as whole:
            decode(data)
        for k in range(len(data) + 1):
            if k < detect:
                assert decode(data[:k]) is None, f"prefix of {k} bytes"
            else:
                with pytest.raises(ProxyProtocolError, match=rf"^{field}") as info:
                    decode(data[:k])
                assert (str(info.value), info.value.offset) == (str(whole.value), offset), k

    def test_incremental_decoder(self, data: bytes, field: str, offset: int, detect: int) -> None:
        """The Decoder, fed one byte at a time, fails at the same byte with the same error."""
        with pytest.raises(ProxyProtocolError) as whole:
            decode(data)
        decoder = Decoder()
        for k in range(detect - 1):
            assert decoder.feed(data[k : k + 1]) is None, k
        with pytest.raises(ProxyProtocolError) as info:
            decoder.feed(data[detect - 1 : detect])
        assert (str(info.value), info.value.offset) == (str(whole.value), offset)
        with pytest.raises(ProxyProtocolError) as again:  # an error is final
            decoder.feed(b"x")
        assert again.value is info.value

    def test_trailing_payload(self, data: bytes, field: str, offset: int, detect: int) -> None:
        with pytest.raises(ProxyProtocolError, match=rf"^{field}") as info:
            decode(data + PAYLOAD)
        assert info.value.offset == offset


# -- limits ---------------------------------------------------------------------------------


def test_max_v2_header_size_rejects_as_soon_as_the_length_is_known() -> None:
    wire = encode(tcp(2, "1.1.1.1", "2.2.2.2", 1, 2, TLV(4, bytes(100))))
    assert decode(wire, DecodeLimits(max_v2_header_size=len(wire))) is not None
    with pytest.raises(ProxyProtocolError, match="max_v2_header_size=130") as info:
        decode(wire[:16], DecodeLimits(max_v2_header_size=len(wire) - 1))
    assert info.value.offset == 14
    with pytest.raises(ProxyProtocolError, match="max_v2_header_size"):
        decode(encode(tcp(2, "1.1.1.1", "2.2.2.2", 1, 2)), DecodeLimits(max_v2_header_size=27))


def test_max_v1_line_size_and_max_tlvs_and_versions() -> None:
    line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
    assert decode(line, DecodeLimits(max_v1_line_size=len(line))) is not None
    with pytest.raises(ProxyProtocolError, match="no CRLF within the first 46"):
        decode(line, DecodeLimits(max_v1_line_size=len(line) - 1))
    three = encode(tcp(2, "1.1.1.1", "2.2.2.2", 1, 2, *[TLV(4, b"")] * 3))
    assert decode(three, DecodeLimits(max_tlvs=3)) is not None
    with pytest.raises(ProxyProtocolError, match="max_tlvs=2"):
        decode(three, DecodeLimits(max_tlvs=2))
    with pytest.raises(ProxyProtocolError, match=r"^signature"):
        decode(three, DecodeLimits(allow_v2=False))
    with pytest.raises(ProxyProtocolError, match=r"^signature"):
        decode(line, DecodeLimits(allow_v1=False))
    # The defaults decode exactly what decode(data) decodes.
    assert decode(three, DecodeLimits()) == decode(three)
    assert decode(line, DecodeLimits()) == decode(line)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"max_tlvs": -1}, "max_tlvs"),
        ({"max_v2_header_size": 15}, "max_v2_header_size"),
        ({"max_v1_line_size": 108}, "max_v1_line_size"),
        ({"max_tlvs": 2.5}, "max_tlvs"),
        ({"allow_v1": "yes"}, "allow_v1"),
        ({"allow_v1": False, "allow_v2": False}, "allow_v1"),
    ],
)
def test_decode_limits_validate_on_construction(bad: dict[str, object], field: str) -> None:
    with pytest.raises(ProxyProtocolError, match=f"^{field}") as info:
        DecodeLimits(**bad)  # type: ignore[arg-type]
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_limits_must_be_decode_limits() -> None:
    with pytest.raises(ProxyProtocolError, match=r"^limits: expected a DecodeLimits"):
        decode(b"PROXY UNKNOWN\r\n", {"max_tlvs": 3})  # type: ignore[arg-type]


def test_non_buffer_input_is_our_error() -> None:
    with pytest.raises(ProxyProtocolError, match=r"^data"):
        decode("PROXY UNKNOWN\r\n")  # type: ignore[arg-type]
    with pytest.raises(ProxyProtocolError, match=r"^header"):
        encode(b"PROXY")  # type: ignore[arg-type]


# -- header validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"version": 3}, "version"),
        ({"version": True}, "version"),
        ({"command": 7}, "command"),
        ({"family": 0x13}, "family"),
        ({"src_addr": "::1"}, "src_addr"),
        ({"src_addr": "not-an-ip"}, "src_addr"),
        ({"dst_addr": None}, "dst_addr"),
        ({"src_port": 65536}, "src_port"),
        ({"dst_port": -1}, "dst_port"),
        ({"src_port": True}, "src_port"),
        ({"tlvs": (b"raw",)}, "tlvs"),
        ({"tlvs": (TLV(3, b"12"),)}, "tlv[0].length"),
        ({"tlvs": (TLV(3, bytes(4)), TLV(3, bytes(4)))}, "tlv[1]: a second CRC32C"),
        ({"tlvs": (TLV(2, b"a.example"), TLV(2, b"b.example"))}, "tlv[1]: a second AUTHORITY"),
        ({"tlvs": (TLV(1, b"h2"), TLV(2, b"a\x00b"))}, "tlv[1].value: AUTHORITY contains NUL"),
        ({"tlvs": (TLV(2, b"x" * 256),)}, "tlv[0].length: AUTHORITY is at most 255"),
        ({"tlvs": (TLV(0x30, "é".encode()),)}, "tlv[0].value: NETNS is not US-ASCII"),
        ({"tlvs": (TLV(5, bytes(129)),)}, "tlv[0].length"),
        ({"tlvs": (TLV(0x20, b"\x01"),)}, "tlv[0].value"),
        ({"tlvs": (TLV(4, bytes(65000)), TLV(4, bytes(600)))}, "tlvs"),
        ({"version": 1, "tlvs": (TLV(1, b"h2"),)}, "tlvs"),
        ({"version": 1, "family": Family.UDP4}, "family"),
        ({"command": Command.LOCAL}, "src_addr"),
    ],
)
def test_invalid_header_names_the_field(kwargs: dict[str, object], field: str) -> None:
    base: dict[str, object] = {
        "version": 2,
        "command": Command.PROXY,
        "family": Family.TCP4,
        "src_addr": IPv4Address("1.1.1.1"),
        "dst_addr": IPv4Address("2.2.2.2"),
        "src_port": 1,
        "dst_port": 2,
    }
    base.update(kwargs)
    with pytest.raises(ProxyProtocolError, match=rf"^{re.escape(field)}"):
        ProxyHeader(**base)  # type: ignore[arg-type]


def test_header_conveniences() -> None:
    h = ProxyHeader(
        version=2, command=1, family=0x21, src_addr="::1", dst_addr="::2", src_port=1, dst_port=2
    )
    assert h.command is Command.PROXY and h.family is Family.TCP6
    assert h.src_addr == IPv6Address("::1")
    assert ProxyHeader(
        version=2, command=Command.LOCAL, family=Family.UNSPEC, tlvs=[TLV(1, b"x")]
    ).tlvs == (TLV(1, b"x"),)
    with pytest.raises(ProxyProtocolError, match=r"^src_addr"):
        tcp(2, "fe80::1%eth0", "::2", 1, 2)
    with pytest.raises(ProxyProtocolError, match=r"^command"):
        ProxyHeader(version=1, command=Command.LOCAL, family=Family.UNSPEC)
    with pytest.raises(ProxyProtocolError, match=r"^src_addr"):
        ProxyHeader(
            version=2, command=1, family=Family.UNIX_STREAM, src_addr="a" * 109, dst_addr="/b"
        )
    assert encode(ProxyHeader.local(1)) == b"PROXY UNKNOWN\r\n"
    assert encode(ProxyHeader.local()) == bytes.fromhex("0D0A0D0A000D0A515549540A20000000")
    with pytest.raises(ProxyProtocolError, match=r"^crc32c"):
        encode(ProxyHeader.local(1), crc32c=True)
    with pytest.raises(ProxyProtocolError, match=r"^type"):
        TLV(256, b"")
    with pytest.raises(ProxyProtocolError, match=r"^value"):
        TLV(1, "text")  # type: ignore[arg-type]
    assert TLV(1, bytearray(b"h2")) == TLV(TLVType.ALPN, b"h2")


def test_v1_ipv4_mapped_ipv6_is_written_as_hex_groups() -> None:
    h = tcp(1, "::ffff:192.0.2.1", "2001:db8::1", 1, 2)
    wire = encode(h)
    assert b"." not in wire
    assert decode(wire) == (h, len(wire))


def test_local_with_family_and_tlvs_encodes_a_zeroed_block_and_round_trips() -> None:
    h = ProxyHeader(version=2, command=Command.LOCAL, family=Family.TCP6, tlvs=(TLV(1, b"x"),))
    wire = encode(h)
    assert len(wire) == 16 + 36 + 4  # the TLVs go where a receiver honouring the family looks
    assert decode(wire) == (h, len(wire))
    # Without TLVs a LOCAL header presents no address (§2.2): length 0, whatever the family.
    bare = ProxyHeader(version=2, command=Command.LOCAL, family=Family.TCP4)
    assert encode(bare) == SIG + b"\x20\x11\x00\x00"
    assert decode(SIG + b"\x20\x11\x00\x00") == (bare, 16)
