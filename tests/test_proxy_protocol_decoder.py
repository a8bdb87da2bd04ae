"""The incremental Decoder (issue 9): fed in any pieces, it gives what decode gives for the whole
bytes, keeps the rest, and its work is linear in the bytes fed, counted, not timed."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim.proxy_protocol._decoder as decoder_module
from sim.proxy_protocol import (
    TLV,
    Command,
    DecodeLimits,
    Decoder,
    Family,
    ProxyHeader,
    ProxyProtocolError,
    decode,
    encode,
    ssl_tlv,
)

WIDE = DecodeLimits(max_v2_header_size=65551, max_tlv_value_size=65535)
PAYLOAD = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def header(version: int, *tlvs: TLV, family: Family = Family.TCP4) -> ProxyHeader:
    v4 = family is Family.TCP4
    return ProxyHeader(
        version=version,
        command=Command.PROXY,
        family=family,
        src_addr=ipaddress.ip_address("192.0.2.1" if v4 else "2001:db8::1"),
        dst_addr=ipaddress.ip_address("198.51.100.1" if v4 else "2001:db8::2"),
        src_port=4242,
        dst_port=443,
        tlvs=tlvs,
    )


WIRES = {
    "v1-tcp4": encode(header(1)),
    "v1-tcp6": encode(header(1, family=Family.TCP6)),
    "v1-unknown": b"PROXY UNKNOWN ignored text\r\n",
    "v2-tcp4": encode(header(2)),
    "v2-tlvs-crc": encode(header(2, TLV(1, b"h2"), ssl_tlv(cn="c")), crc32c=True),
    "v2-local": encode(ProxyHeader.local()),
}


@pytest.mark.parametrize("name", sorted(WIRES))
def test_fed_one_byte_at_a_time_it_matches_decode_and_keeps_the_rest(name: str) -> None:
    wire = WIRES[name]
    expected = decode(wire)
    decoder = Decoder()
    for i in range(len(wire) - 1):
        assert decoder.next_read_size >= 1
        assert decoder.feed(wire[i : i + 1]) is None, i
        assert decoder.header is None and decoder.rest == b""
    got = decoder.feed(wire[-1:] + PAYLOAD[:5])
    assert (got, decoder.header_size) == expected
    assert decoder.header is got and decoder.next_read_size == 0
    assert decoder.feed(PAYLOAD[5:]) is got  # later bytes go to the rest, same header
    assert decoder.rest == PAYLOAD and decoder.received == len(wire) + len(PAYLOAD)


@pytest.mark.parametrize("name", sorted(WIRES))
def test_reading_next_read_size_never_reads_past_the_header(name: str) -> None:
    wire = WIRES[name] + PAYLOAD
    decoder = Decoder()
    pos = 0
    while decoder.header is None:
        want = decoder.next_read_size
        assert pos + want <= len(WIRES[name]), (pos, want)
        decoder.feed(wire[pos : pos + want])
        pos += want
    assert pos == len(WIRES[name]) and decoder.rest == b""


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(WIRES)), st.data())
def test_any_split_gives_the_same_header(name: str, data: st.DataObject) -> None:
    stream = WIRES[name] + PAYLOAD
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    decoder = Decoder()
    got = None
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        if a < b:
            got = decoder.feed(stream[a:b])
    assert (got, decoder.header_size) == decode(stream)
    assert decoder.rest == PAYLOAD


def test_end_of_stream_before_the_header_is_an_error() -> None:
    decoder = Decoder()
    decoder.feed(WIRES["v2-tcp4"][:20])
    with pytest.raises(ProxyProtocolError, match=r"^header: the stream ended after 20 byte") as e:
        decoder.feed(b"")
    assert e.value.offset == 20
    done = Decoder()
    assert done.feed(WIRES["v1-tcp4"]) is not None
    assert done.feed(b"") is done.header  # after the header, EOF is just the end of the rest


def test_limits_and_bad_input_are_our_error() -> None:
    with pytest.raises(ProxyProtocolError, match=r"^limits"):
        Decoder({"max_tlvs": 1})  # type: ignore[arg-type]
    with pytest.raises(ProxyProtocolError, match=r"^data"):
        Decoder().feed("PROXY")  # type: ignore[arg-type]
    v2_only = Decoder(DecodeLimits(allow_v1=False))
    with pytest.raises(ProxyProtocolError, match=r"^signature") as e:
        v2_only.feed(b"PROXY TCP4 ")
    assert e.value.offset == 0
    too_big = Decoder()
    with pytest.raises(ProxyProtocolError, match="max_v2_header_size=16384") as e:
        too_big.feed(WIRES["v2-tcp4"][:14] + (20000).to_bytes(2, "big"))
    assert e.value.offset == 14


# ---------------------------------------------------------------- linear cost, counted


def big_header(size: int) -> bytes:
    """A v2 header of exactly ``size`` bytes: an IPv4 block, then 1000-byte NOOP TLVs."""
    left = size - 28
    tlvs = []
    while left:
        value = min(left - 3, 1000)
        tlvs.append(TLV(4, bytes(value)))
        left -= 3 + value
    wire = encode(header(2, *tlvs))
    assert len(wire) == size
    return wire


def test_a_64_kib_header_fed_one_byte_at_a_time_is_scanned_in_linear_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The audit: re-passing the whole buffer on every read costs ~1 s for this header (about
    n^2 / 2 = 2 x 10^9 byte looks). The Decoder looks at each byte a bounded number of times,
    and runs the full v2 decoder once, on exactly the header."""
    wire = big_header(65_551)
    calls: list[int] = []
    real = decoder_module.decode_v2
    monkeypatch.setattr(
        decoder_module,
        "decode_v2",
        lambda data, *args: calls.append(len(data)) or real(data, *args),
    )
    decoder = Decoder(WIDE)
    for i in range(len(wire)):
        decoder.feed(wire[i : i + 1])
    assert decoder.header is not None and decoder.header_size == len(wire)
    assert decoder.bytes_scanned <= 4 * len(wire)  # quadratic would be ~2 x 10^9
    # One check of the 16 fixed bytes per feed until they are in, then one decode of the header.
    assert sum(calls) <= 16 * 16 + len(wire) and calls[-1] == len(wire)


def test_linear_in_the_bytes_whatever_the_chunk_size() -> None:
    wire = big_header(16_000)
    counts = []
    for chunk in (1, 7, 1000, len(wire)):
        decoder = Decoder()
        for i in range(0, len(wire), chunk):
            decoder.feed(wire[i : i + chunk])
        assert decoder.header is not None
        counts.append(decoder.bytes_scanned)
    assert max(counts) <= 4 * len(wire)
    assert max(counts) - min(counts) <= 16 * 16  # only the fixed-header checks differ


def test_a_v1_line_fed_one_byte_at_a_time_is_scanned_a_bounded_number_of_times() -> None:
    line = encode(header(1, family=Family.TCP6))
    decoder = Decoder()
    for i in range(len(line)):
        decoder.feed(line[i : i + 1])
    assert decoder.header is not None
    # Each byte re-checks at most its own field (an IPv6 address is at most 45 bytes).
    assert decoder.bytes_scanned <= 50 * len(line)
    whole = Decoder()
    whole.feed(line)
    assert whole.bytes_scanned <= 4 * len(line)  # a complete line is checked in one pass
