"""Property tests for sim.proxy_protocol (hypothesis) and a second opinion from the PyPI
package ``proxy-protocol`` (imports as ``proxyprotocol``)."""

from __future__ import annotations

import contextlib
import re
import socket
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_proxy_protocol_validation import VIEWS

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
    aws_vpce_tlv,
    azure_link_id_tlv,
    decode,
    encode,
    gcp_psc_tlv,
    ssl_tlv,
)

ONCE_ONLY = {0x02, 0x03, 0x05, 0x20, 0x30}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ports = st.integers(0, 65535)
ascii_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20)
# Types without a content rule (CRC32C, AUTHORITY, UNIQUE_ID, SSL and NETNS have one).
plain_types = st.integers(0, 255).filter(lambda t: t not in (0x02, 0x03, 0x05, 0x20, 0x30))
host_names = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n"), max_size=20
)

tlvs = st.one_of(
    st.builds(TLV, plain_types, st.binary(max_size=40)),
    st.builds(lambda b: TLV(TLVType.UNIQUE_ID, b), st.binary(max_size=128)),
    st.builds(lambda s: TLV(TLVType.AUTHORITY, s.encode()), host_names),
    st.builds(lambda s: TLV(TLVType.NETNS, s.encode()), ascii_text),
    st.builds(
        lambda c, v, ver, cn: ssl_tlv(client=c, verify=v, version=ver, cn=cn),
        st.integers(0, 7),
        st.integers(0, 2**32 - 1),
        st.none() | ascii_text,
        st.none() | st.text(max_size=10),
    ),
    st.builds(aws_vpce_tlv, ascii_text),
    st.builds(azure_link_id_tlv, st.integers(0, 2**32 - 1)),
    st.builds(gcp_psc_tlv, st.integers(0, 2**64 - 1)),
)
unix_paths = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
)


@st.composite
def headers(draw: st.DrawFn, version: int | None = None) -> ProxyHeader:
    version = draw(st.sampled_from([1, 2])) if version is None else version
    if version == 1:
        family = draw(st.sampled_from([Family.TCP4, Family.TCP6, Family.UNSPEC]))
        command = Command.PROXY
    else:
        family = draw(st.sampled_from(list(Family)))
        command = draw(st.sampled_from(list(Command)))
    # At most one TLV of each once-only type (§2.2: a second one is an error).
    extra = (
        tuple(
            draw(
                st.lists(
                    tlvs,
                    max_size=4,
                    unique_by=lambda t: t.type if t.type in ONCE_ONLY else object(),
                )
            )
        )
        if version == 2
        else ()
    )
    if command is Command.LOCAL or family is Family.UNSPEC:
        return ProxyHeader(version=version, command=command, family=family, tlvs=extra)
    if family in (Family.UNIX_STREAM, Family.UNIX_DGRAM):
        return ProxyHeader(
            version=version,
            command=command,
            family=family,
            src_addr=draw(unix_paths),
            dst_addr=draw(unix_paths),
            tlvs=extra,
        )
    v = 4 if family in (Family.TCP4, Family.UDP4) else 6
    return ProxyHeader(
        version=version,
        command=command,
        family=family,
        src_addr=draw(st.ip_addresses(v=v)),
        dst_addr=draw(st.ip_addresses(v=v)),
        src_port=draw(ports),
        dst_port=draw(ports),
        tlvs=extra,
    )


@SETTINGS
@given(headers())
def test_round_trip(h: ProxyHeader) -> None:
    wire = encode(h)
    assert decode(wire) == (h, len(wire))
    assert decode(wire + b"\x00payload") == (h, len(wire))


@SETTINGS
@given(headers(version=2))
def test_round_trip_with_crc32c(h: ProxyHeader) -> None:
    wire = encode(h, crc32c=True)
    result = decode(wire)
    assert result is not None
    got, n = result
    assert n == len(wire)
    assert got.tlvs[:-1] == h.tlvs and got.tlvs[-1].type == TLVType.CRC32C
    assert (got.family, got.command, got.src_addr, got.dst_port) == (
        h.family,
        h.command,
        h.src_addr,
        h.dst_port,
    )
    assert encode(got) == wire  # the checksum TLV re-encodes to the same bytes


@settings(max_examples=40, deadline=None)
@given(headers())
def test_every_proper_prefix_needs_more_data(h: ProxyHeader) -> None:
    wire = encode(h)
    for k in range(len(wire)):
        assert decode(wire[:k]) is None


def _decode_only_our_outcomes(data: bytes) -> None:
    try:
        result = decode(data)
    except ProxyProtocolError as exc:
        assert exc.offset is None or 0 <= exc.offset <= len(data)
        return
    if result is not None:
        header, n = result
        assert 0 < n <= len(data)
        # Whatever decodes must be a valid header that encodes back to a decodable header.
        again = encode(header)
        assert decode(again) == (header, len(again))
        _ = (header.src_addr, header.tlvs)
        # Everything was checked by decode: reading a typed view never raises (issue 9).
        for view in VIEWS:
            getattr(header, view)
        if header.ssl is not None:
            ssl = header.ssl
            _ = (ssl.version, ssl.cn, ssl.cipher, ssl.sig_alg, ssl.key_alg, ssl.verified)


@SETTINGS
@given(st.binary(max_size=120))
def test_random_bytes_give_only_our_outcomes(data: bytes) -> None:
    _decode_only_our_outcomes(data)


@SETTINGS
@given(st.binary(min_size=0, max_size=80), st.sampled_from([V2_SIGNATURE, b"PROXY "]))
def test_random_bytes_after_a_signature(data: bytes, prefix: bytes) -> None:
    _decode_only_our_outcomes(prefix + data)


@SETTINGS
@given(headers(), st.data())
def test_mutated_headers_give_only_our_outcomes(h: ProxyHeader, data: st.DataObject) -> None:
    wire = bytearray(encode(h, crc32c=h.version == 2 and data.draw(st.booleans())))
    for _ in range(data.draw(st.integers(1, 3))):
        kind = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = data.draw(st.integers(0, max(len(wire) - 1, 0)))
        if kind == "flip" and wire:
            wire[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "insert":
            wire.insert(pos, data.draw(st.integers(0, 255)))
        elif kind == "delete" and wire:
            del wire[pos]
        else:
            del wire[pos:]
    _decode_only_our_outcomes(bytes(wire))


# -- second opinion: the PyPI package proxy-protocol ----------------------------------------


def test_our_bytes_decode_in_proxyprotocol() -> None:
    from proxyprotocol.v1 import ProxyProtocolV1
    from proxyprotocol.v2 import ProxyProtocolV2

    h4 = ProxyHeader(
        version=2,
        command=Command.PROXY,
        family=Family.TCP4,
        src_addr=IPv4Address("203.0.113.7"),
        dst_addr=IPv4Address("10.0.0.10"),
        src_port=51000,
        dst_port=443,
        tlvs=(TLV(TLVType.ALPN, b"h2"), TLV(TLVType.AUTHORITY, b"example.com")),
    )
    theirs = ProxyProtocolV2().unpack(encode(h4, crc32c=True))  # they verify our CRC32C
    assert theirs.source == (IPv4Address("203.0.113.7"), 51000)
    assert theirs.dest == (IPv4Address("10.0.0.10"), 443)
    assert theirs.tlv.alpn == b"h2" and theirs.tlv.authority == "example.com"
    h6 = ProxyHeader(
        version=1,
        command=Command.PROXY,
        family=Family.TCP6,
        src_addr=IPv6Address("2001:db8::1"),
        dst_addr=IPv6Address("2001:db8::2"),
        src_port=1,
        dst_port=2,
    )
    v1 = ProxyProtocolV1().unpack(encode(h6))
    assert v1.source == (IPv6Address("2001:db8::1"), 1)
    local = ProxyProtocolV2().unpack(encode(ProxyHeader.local()))
    assert local.proxied is False


def test_proxyprotocol_bytes_decode_here() -> None:
    from proxyprotocol.result import ProxyResultIPv4, ProxyResultIPv6
    from proxyprotocol.tlv import ProxyProtocolTLV
    from proxyprotocol.v1 import ProxyProtocolV1
    from proxyprotocol.v2 import ProxyProtocolV2

    tlv = ProxyProtocolTLV(alpn=b"h2", authority="example.com", unique_id=b"id-1")
    r6 = ProxyResultIPv6(
        (ip_address("2001:db8::1"), 56324, 0, 0),  # type: ignore[arg-type]
        (ip_address("2001:db8::2"), 443, 0, 0),  # type: ignore[arg-type]
        protocol=socket.SOCK_STREAM,
        tlv=tlv,
    )
    wire = ProxyProtocolV2().pack(r6)  # with crc32c installed it appends a CRC32C TLV
    result = decode(wire)
    assert result is not None
    h, n = result
    assert n == len(wire)
    assert (h.family, h.src_addr, h.src_port) == (Family.TCP6, IPv6Address("2001:db8::1"), 56324)
    assert (h.alpn, h.authority, h.unique_id) == (b"h2", "example.com", b"id-1")
    assert h.crc32c is not None  # present and verified by decode
    r4 = ProxyResultIPv4((IPv4Address("192.168.0.1"), 56324), (IPv4Address("192.168.0.11"), 443))
    line = ProxyProtocolV1().pack(r4)
    assert line == b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
    assert decode(line) is not None


# -- whole, byte by byte and incremental agree (issue 9) ------------------------------------

V1_PIECES = [b"PROXY ", b"TCP4", b"TCP6", b"UNKNOWN", b" ", b"  ", b"\r", b"\n", b"\r\n"]
V1_PIECES += [b"\t", b".", b"1.2.3.4", b"255.255.255.255", b"01", b"256", b"::1", b"fe80::"]
V1_PIECES += [b"::ffff:1.2.3.4", b":", b"::", b"0", b"65535", b"65536", b"a", b"\xff", b"\x00"]
v1_alphabet = st.sampled_from([*V1_PIECES, b"%eth0"])


def _outcome(data: bytes) -> object:
    try:
        return decode(data)
    except ProxyProtocolError as exc:
        return (str(exc), exc.offset)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(v1_alphabet, min_size=1, max_size=14))
def test_v1_errors_name_the_same_byte_whole_and_byte_by_byte(parts: list[bytes]) -> None:
    line = b"PROXY " + b"".join(parts)
    whole = _outcome(line)
    first_error = None
    for k in range(len(line) + 1):
        out = _outcome(line[:k])
        if isinstance(out, tuple) and isinstance(out[0], str):
            first_error = out
            break
    if isinstance(whole, tuple) and isinstance(whole[0], str):
        assert first_error == whole, line
        offset = whole[1]
        assert isinstance(offset, int) and offset < len(line)
        decoder = Decoder()
        with contextlib.suppress(ProxyProtocolError):
            for i in range(len(line)):
                decoder.feed(line[i : i + 1])
        with pytest.raises(ProxyProtocolError) as info:
            decoder.feed(b"x")
        assert (str(info.value), info.value.offset) == whole
    else:
        assert first_error is None, line  # a valid line: no prefix raises
        decoder = Decoder()
        got = None
        for i in range(len(line)):
            got = decoder.feed(line[i : i + 1])
        if whole is not None:
            assert (got, decoder.header_size) == whole


tlv_bytes = st.builds(
    lambda t, v, cut: bytes((t,)) + max(0, len(v) + cut).to_bytes(2, "big") + v,
    st.sampled_from([0x01, 0x02, 0x03, 0x04, 0x05, 0x20, 0x30, 0xE0]),
    st.binary(max_size=12),
    st.sampled_from([0, 0, 0, 1, -1]),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(tlv_bytes, max_size=5), st.binary(max_size=3), st.sampled_from([0x11, 0x00]))
def test_the_fast_tlv_pass_agrees_with_the_precise_walk(
    tlvs: list[bytes], tail: bytes, family: int
) -> None:
    """decode's first TLV pass stops at any doubt; whatever it answers, walk_tlvs agrees."""
    from sim.proxy_protocol._v2 import walk_tlvs

    block = bytes(12) if family == 0x11 else b""
    body = block + b"".join(tlvs) + tail
    data = V2_SIGNATURE + bytes((0x21, family)) + len(body).to_bytes(2, "big") + body
    error: tuple[str, int | None] | None = None
    try:
        precise = walk_tlvs(data, 16 + len(block), len(data), 21845, 1024)
    except ProxyProtocolError as exc:
        error = (str(exc), exc.offset)
    for limits in (None, DecodeLimits()):
        out = _outcome(data) if limits is None else _outcome_with(data, limits)
        if error is not None:
            assert out == error
        else:
            assert isinstance(out, tuple) and isinstance(out[0], ProxyHeader)
            assert out[0].tlvs == precise


def _outcome_with(data: bytes, limits: DecodeLimits) -> object:
    try:
        return decode(data, limits)
    except ProxyProtocolError as exc:
        return (str(exc), exc.offset)


# -- library messages speak the spec, not our fact IDs (issue 9) ------------------------------

FACT_ID = re.compile(r"FACTS|\((?:[A-K][0-9]+(?:, )?)+\)")


@SETTINGS
@given(st.binary(max_size=80), st.sampled_from([b"", V2_SIGNATURE, b"PROXY ", b"PROXY TCP4 "]))
def test_no_fact_ids_in_error_messages(data: bytes, prefix: bytes) -> None:
    try:
        decode(prefix + data)
    except ProxyProtocolError as exc:
        assert not FACT_ID.search(str(exc)), str(exc)


def test_proxyprotocol_verifies_our_crc32c_only_for_tlvs_in_ascending_type_order() -> None:
    """proxy-protocol re-packs the TLVs it parsed in type order (a dict walked from 0x00 to
    0xFF) before recomputing the CRC32C, so a header whose TLVs are in another order fails its
    check: ours, and real HAProxy's, which puts CRC32C first (docs/reference/codec.md)."""
    from pathlib import Path

    from proxyprotocol import ProxyProtocolChecksumError
    from proxyprotocol.v2 import ProxyProtocolV2

    def header(*tlvs: TLV) -> ProxyHeader:
        return ProxyHeader(
            version=2,
            command=Command.PROXY,
            family=Family.TCP4,
            src_addr=IPv4Address("192.0.2.1"),
            dst_addr=IPv4Address("198.51.100.1"),
            src_port=1,
            dst_port=2,
            tlvs=tlvs,
        )

    theirs = ProxyProtocolV2()
    ascending = encode(header(TLV(1, b"h2"), TLV(2, b"a.example")), crc32c=True)
    assert theirs.unpack(ascending).tlv.alpn == b"h2"
    for wire in (
        encode(header(TLV(2, b"a.example"), TLV(1, b"h2")), crc32c=True),
        encode(header(TLV(3, bytes(4)), TLV(1, b"h2"))),  # CRC32C first, as HAProxy sends it
        (Path(__file__).parents[1] / "notebooks/data/haproxy_send_proxy_v2.bin").read_bytes(),
    ):
        assert decode(wire) is not None  # valid: we verify the CRC32C as received
        with pytest.raises(ProxyProtocolChecksumError):
            theirs.unpack(wire)
