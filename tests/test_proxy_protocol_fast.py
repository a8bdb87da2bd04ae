"""The codec's fast paths agree with its general decoders, and decoded headers behave.

``decode`` takes shortcuts for the common headers (a prefix-tree regular expression for the v1
TCP4 line, one look-up of the first 14 bytes for v2 PROXY over TCP/UDP 4 and 6, a first TLV
pass that stops at the first doubt) and builds a decoded header through a layout twin of
``ProxyHeader``. These tests check that the shortcuts accept exactly what the precise decoders
accept, and that a decoded header is indistinguishable from one built through
``ProxyHeader(...)``.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.proxy_protocol import (
    TLV,
    V2_SIGNATURE,
    Command,
    DecodeLimits,
    Family,
    ProxyHeader,
    ProxyProtocolError,
    TLVType,
    decode,
    encode,
    ssl_tlv,
)
from sim.proxy_protocol._v1 import decode_v1
from sim.proxy_protocol._v2 import walk_tlvs

FIELDS = ("version", "command", "family", "src_addr", "dst_addr", "src_port", "dst_port", "tlvs")


def general_v1(line: bytes) -> object:
    """What the precise v1 decoder answers: the header, or the error text and offset."""
    try:
        return decode_v1(line, len(line), 107)
    except ProxyProtocolError as exc:
        return (str(exc), exc.offset)


def public(line: bytes) -> object:
    try:
        return decode(line)
    except ProxyProtocolError as exc:
        return (str(exc), exc.offset)


def octet_texts() -> list[bytes]:
    valid = [b"%d" % i for i in range(256)]
    invalid = [b"256", b"260", b"300", b"999", b"1000", b"2555", b"00", b"01", b"010", b"0255"]
    return valid + invalid


@pytest.mark.parametrize("position", [0, 1, 2, 3, 4, 5, 6, 7])
def test_v1_fast_octets_match_the_general_decoder(position: int) -> None:
    for text in octet_texts():
        octets = [b"10", b"20", b"30", b"40", b"50", b"60", b"70", b"80"]
        octets[position] = text
        src, dst = b".".join(octets[:4]), b".".join(octets[4:])
        line = b"PROXY TCP4 " + src + b" " + dst + b" 56324 443\r\n"
        assert public(line) == general_v1(line), line
        assert isinstance(public(line), tuple)


@pytest.mark.parametrize("position", ["src", "dst"])
def test_v1_fast_ports_match_the_general_decoder(position: str) -> None:
    invalid = [b"65536", b"65540", b"65600", b"66000", b"70000", b"99999", b"100000", b"00"]
    invalid += [b"01", b"0443", b"065535"]
    for text in [b"%d" % i for i in range(65536)] + invalid:
        ports = (text, b"443") if position == "src" else (b"56324", text)
        line = b"PROXY TCP4 192.168.0.1 192.168.0.11 %s %s\r\n" % ports
        if text in invalid:
            result = public(line)
            assert result == general_v1(line), line
            assert isinstance(result, tuple) and isinstance(result[0], str)
        else:
            header, n = decode(line) or (None, 0)
            assert header is not None
            port = header.src_port if position == "src" else header.dst_port
            assert (port, n) == (int(text), len(line))


def test_v1_fast_path_gives_the_general_decoders_header() -> None:
    line = b"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"
    assert public(line) == general_v1(line)
    assert public(line + b"GET /") == general_v1(line)
    fields = [getattr(decode(line)[0], f) for f in FIELDS]  # type: ignore[index]
    assert fields == [
        1,
        Command.PROXY,
        Family.TCP4,
        IPv4Address("0.0.0.0"),
        IPv4Address("255.255.255.255"),
        0,
        65535,
        (),
    ]


def tcp6_with_tlvs() -> ProxyHeader:
    return ProxyHeader(
        version=2,
        command=Command.PROXY,
        family=Family.TCP6,
        src_addr=IPv6Address("2001:db8::1"),
        dst_addr=IPv6Address("2001:db8::11"),
        src_port=56324,
        dst_port=443,
        tlvs=(
            TLV(TLVType.ALPN, b"h2"),
            TLV(TLVType.UNIQUE_ID, bytes(128)),
            ssl_tlv(version="TLSv1.3", cn="client"),
            TLV(TLVType.NOOP, b""),
        ),
    )


HEADERS = [
    ProxyHeader(
        version=2,
        command=Command.PROXY,
        family=Family.TCP4,
        src_addr=IPv4Address("10.0.0.1"),
        dst_addr=IPv4Address("10.0.0.2"),
        src_port=1,
        dst_port=2,
    ),
    ProxyHeader(
        version=1,
        command=Command.PROXY,
        family=Family.TCP4,
        src_addr=IPv4Address("10.0.0.1"),
        dst_addr=IPv4Address("10.0.0.2"),
        src_port=1,
        dst_port=2,
    ),
    tcp6_with_tlvs(),
    ProxyHeader(
        version=2,
        command=Command.PROXY,
        family=Family.UNIX_STREAM,
        src_addr="/run/é.sock",
        dst_addr="",
        tlvs=(TLV(TLVType.AUTHORITY, b"x"),),
    ),
    ProxyHeader(version=2, command=Command.LOCAL, family=Family.TCP6, tlvs=(TLV(0xE3, b"v"),)),
    ProxyHeader.local(),
    ProxyHeader(version=2, command=Command.PROXY, family=Family.UNSPEC, tlvs=(TLV(1, b"h2"),)),
]


@pytest.mark.parametrize("header", HEADERS, ids=lambda h: f"v{h.version}-{h.family.name}")
def test_decoded_header_matches_the_constructed_one(header: ProxyHeader) -> None:
    wire = encode(header)
    decoded, n = decode(wire + b"payload") or (None, 0)
    assert decoded is not None and n == len(wire)
    assert type(decoded) is ProxyHeader
    for name in FIELDS:
        mine, theirs = getattr(decoded, name), getattr(header, name)
        assert (type(mine), mine) == (type(theirs), theirs), name
    assert decoded == header and hash(decoded) == hash(header)
    assert repr(decoded) == repr(header)
    assert encode(decoded) == wire


@pytest.mark.parametrize("header", HEADERS[:3], ids=["v2-TCP4", "v1-TCP4", "v2-TCP6"])
def test_decoded_header_copies_pickles_and_replaces(header: ProxyHeader) -> None:
    wire = encode(header)
    for clone in (
        pickle.loads(pickle.dumps(decode(wire)[0])),  # type: ignore[index]
        copy.copy(decode(wire)[0]),  # type: ignore[index]
        copy.deepcopy(decode(wire)[0]),  # type: ignore[index]
        dataclasses.replace(decode(wire)[0]),  # type: ignore[index]
    ):
        assert clone == header
        assert [getattr(clone, f) for f in FIELDS] == [getattr(header, f) for f in FIELDS]
    assert dataclasses.asdict(decode(wire)[0])["src_port"] == header.src_port  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        decode(wire)[0].version = 2  # type: ignore[index, misc]


def test_unknown_attributes_raise_attribute_error() -> None:
    header, _ = decode(encode(HEADERS[0])) or (None, 0)
    assert header is not None
    with pytest.raises(AttributeError, match="'ProxyHeader' object has no attribute 'nope'"):
        _ = header.nope  # type: ignore[attr-defined]
    assert not hasattr(header, "src_address")
    assert getattr(header, "__deepcopy__", None) is None


def test_decoded_header_keeps_only_its_own_bytes() -> None:
    wire = encode(HEADERS[0])
    stream = bytearray(wire + b"x" * 10_000)
    header, n = decode(stream) or (None, 0)
    stream[16:28] = bytes(12)  # the caller reuses its buffer
    assert header is not None and n == 28
    assert header.src_addr == IPv4Address("10.0.0.1") and header.dst_port == 2
    # Every field is built by decode: nothing in the header refers to the caller's buffer.
    assert not any(isinstance(v, bytearray | memoryview) for v in vars_of(header))


def vars_of(header: ProxyHeader) -> list[object]:
    return [getattr(header, f) for f in FIELDS] + [t.value for t in header.tlvs]


def with_tlvs(*tlvs: bytes) -> bytes:
    body = bytes(12) + b"".join(tlvs)
    return V2_SIGNATURE + b"\x21\x11" + len(body).to_bytes(2, "big") + body


def tlv(type_: int, value: bytes) -> bytes:
    return bytes((type_,)) + len(value).to_bytes(2, "big") + value


def precise_error(data: bytes, max_tlvs: int = 21845) -> tuple[str, int | None]:
    with pytest.raises(ProxyProtocolError) as info:
        walk_tlvs(data, 28, len(data), max_tlvs, 1024)
    return str(info.value), info.value.offset


@pytest.mark.parametrize(
    ("data", "max_tlvs"),
    [
        (with_tlvs(tlv(1, b"h2"), tlv(3, bytes(4)), tlv(3, bytes(4))), 21845),
        (with_tlvs(tlv(5, bytes(129))), 21845),
        (with_tlvs(tlv(3, bytes(5))), 21845),
        (with_tlvs(tlv(0x20, b"\x01\x00")), 21845),
        (with_tlvs(tlv(1, b"a"), tlv(0x20, b"\x01\x00")), 1),  # max_tlvs wins, as in wire order
        (with_tlvs(tlv(1, b"a"), tlv(1, b"b"), tlv(1, b"c")), 2),
        (with_tlvs(tlv(1, b"h2"), b"\x01\x00"), 21845),  # TLV header cut by the header end
        (with_tlvs(tlv(1, b"h2"), b"\x01"), 21845),
        (with_tlvs(tlv(1, b"h2"), b"\x01\x00\x09ab"), 21845),  # value overruns the header
    ],
)
def test_tlv_scan_reports_what_the_precise_walk_reports(data: bytes, max_tlvs: int) -> None:
    with pytest.raises(ProxyProtocolError) as info:
        # The protocol maximum takes the fast path (no limits object), any other the general one.
        decode(data) if max_tlvs == 21845 else decode(data, DecodeLimits(max_tlvs=max_tlvs))
    assert (str(info.value), info.value.offset) == precise_error(data, max_tlvs)
    assert info.value.field == "tlvs"


def test_tlv_scan_accepts_ssl_crc_and_empty_values() -> None:
    header = tcp6_with_tlvs()
    for crc in (False, True):
        wire = encode(header, crc32c=crc)
        decoded, n = decode(wire) or (None, 0)
        assert decoded is not None and n == len(wire)
        assert decoded.ssl is not None and decoded.ssl.cn == "client"
        assert (decoded.crc32c is not None) is crc
        assert decoded.tlvs[:4] == header.tlvs
        corrupt = bytearray(wire)
        corrupt[60] ^= 0x01  # inside the UNIQUE_ID value
        if crc:
            with pytest.raises(ProxyProtocolError, match="crc32c"):
                decode(bytes(corrupt))


def _general_v2(data: bytes) -> object:
    from sim.proxy_protocol._v2 import decode_v2

    try:
        return decode_v2(data, len(data), 16384, 21845, 1024)
    except ProxyProtocolError as exc:
        return (str(exc), exc.offset)


_TLV_TYPES = (0x01, 0x02, 0x03, 0x04, 0x05, 0x20, 0x30, 0xE0, 0x99)


@settings(max_examples=400, deadline=None)
@given(
    family=st.sampled_from([0x11, 0x12, 0x21, 0x22]),
    tlvs=st.lists(
        st.tuples(
            st.sampled_from(_TLV_TYPES),
            st.one_of(
                st.binary(max_size=12),
                st.sampled_from([b"example.com", b"a\r\nb", b"\xff", b"x" * 256, b"u" * 129]),
            ),
        ),
        max_size=5,
    ),
    cut=st.integers(min_value=0, max_value=3),
    length_delta=st.integers(min_value=-2, max_value=2),
)
def test_the_inet_fast_path_agrees_with_the_general_v2_decoder(
    family: int, tlvs: list[tuple[int, bytes]], cut: int, length_delta: int
) -> None:
    # decode_inet answers only what decode_v2 answers the same way; the rest falls through.
    from sim.proxy_protocol._v2 import INET_LAYOUT, decode_inet

    block = 12 if family in (0x11, 0x12) else 36
    area = b"".join(bytes([t]) + len(v).to_bytes(2, "big") + v for t, v in tlvs)
    length = max(0, block + len(area) + length_delta)
    data = V2_SIGNATURE + bytes([0x21, family]) + length.to_bytes(2, "big")
    data += bytes(range(block)) + area
    data = data[: len(data) - cut] if cut else data
    fast = decode_inet(data, INET_LAYOUT[data[:14]])
    if fast is not None:
        assert fast == _general_v2(data)
    assert public(data) == _general_v2(data)
