"""v2 LOCAL headers (spec §2.2; issue 9): written without an address, read whatever the body.

§2.2: "When a sender presents a LOCAL connection, it should not present any address so it sets
this field to zero. Receivers MUST always consider this field to skip the appropriate number of
bytes and must not assume zero is presented for LOCAL connections", and for LOCAL the receiver
"must use the real connection endpoints and discard the protocol block including the family
which is ignored". HAProxy's conn_recv_proxy() accepts any LOCAL body; so do we.
"""

from __future__ import annotations

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
    decode,
    encode,
)

SIG = V2_SIGNATURE
V4_BLOCK = bytes([1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2])


def tlv(type_: int, value: bytes) -> bytes:
    return bytes((type_,)) + len(value).to_bytes(2, "big") + value


def local(family: int, body: bytes) -> bytes:
    return SIG + bytes((0x20, family)) + len(body).to_bytes(2, "big") + body


def test_a_local_header_without_address_round_trips_byte_for_byte() -> None:
    wire = SIG + bytes.fromhex("20110000")  # LOCAL, family TCP4, length 0
    header, consumed = decode(wire) or (None, 0)
    assert header is not None and consumed == 16
    assert (header.command, header.family, header.tlvs) == (Command.LOCAL, Family.TCP4, ())
    assert encode(header) == wire  # was 28 bytes: a zeroed IPv4 block


@pytest.mark.parametrize("family", list(Family), ids=lambda f: f.name)
def test_encode_writes_length_zero_for_every_local_without_tlvs(family: Family) -> None:
    h = ProxyHeader(version=2, command=Command.LOCAL, family=family)
    assert encode(h) == SIG + bytes((0x20, family)) + b"\x00\x00"
    assert decode(encode(h)) == (h, 16)


_CRC_BODY = tlv(3, bytes(4))
_CRC_WIRE = local(0x00, _CRC_BODY)
_GOOD_CRC = _CRC_WIRE[:-4] + crc32c(_CRC_WIRE).to_bytes(4, "big")

# (id, wire, family decoded, tlvs decoded): the LOCAL bodies the audit found HAProxy accepts.
ACCEPTED = [
    ("short-family-block", local(0x21, V4_BLOCK), Family.TCP6, ()),
    ("short-block-length-8", local(0x11, V4_BLOCK[:8]), Family.TCP4, ()),
    ("junk-after-block", local(0x11, V4_BLOCK + b"\xff\xfe junk"), Family.TCP4, ()),
    ("undefined-family-0x41", local(0x41, b""), Family.UNSPEC, ()),
    ("undefined-family-0x41-with-tlv", local(0x41, tlv(4, b"x")), Family.UNSPEC, (TLV(4, b"x"),)),
    ("bad-crc32c", local(0x00, tlv(3, b"\x00\x00\x00\x01")), Family.UNSPEC, ()),
    ("good-crc32c", _GOOD_CRC, Family.UNSPEC, (TLV(3, _GOOD_CRC[-4:]),)),
    ("two-authorities", local(0x00, tlv(2, b"a") + tlv(2, b"b")), Family.UNSPEC, ()),
    ("block-then-tlv", local(0x11, V4_BLOCK + tlv(4, b"pad")), Family.TCP4, (TLV(4, b"pad"),)),
    ("tlv-without-block", local(0x11, tlv(1, b"h2")), Family.TCP4, (TLV(1, b"h2"),)),
    ("truncated-tlv", local(0x00, b"\x01\x00"), Family.UNSPEC, ()),
]


@pytest.mark.parametrize(
    ("wire", "family", "tlvs"), [a[1:] for a in ACCEPTED], ids=[a[0] for a in ACCEPTED]
)
def test_any_local_body_within_the_length_decodes(
    wire: bytes, family: Family, tlvs: tuple[TLV, ...]
) -> None:
    """``tlvs`` holds the body's TLVs when they are valid under the PROXY rules (CRC32C
    included), else ``()``: the body is discarded, never an error."""
    expected = ProxyHeader(version=2, command=Command.LOCAL, family=family, tlvs=tlvs)
    assert decode(wire) == (expected, len(wire))
    assert decode(wire + b"GET / HTTP/1.1\r\n") == (expected, len(wire))
    for k in range(len(wire)):
        assert decode(wire[:k]) is None, k
    decoder = Decoder()
    for k in range(len(wire) - 1):
        assert decoder.feed(wire[k : k + 1]) is None
    assert decoder.feed(wire[-1:] + b"rest") == expected and decoder.rest == b"rest"
    fields = anatomy(wire)  # every byte still described
    assert sum(f.length for f in fields) == len(wire)
    assert [f.offset for f in fields] == sorted(f.offset for f in fields)


def test_local_anatomy_names_what_was_discarded() -> None:
    fields = {f.name: f.meaning for f in anatomy(local(0x41, V4_BLOCK + b"junk"))}
    assert fields["family"] == "0x41: not a defined family, ignored (LOCAL)"
    assert fields["body"] == "not a valid TLV list: discarded (LOCAL, §2.2)"
    kept = {f.name: f.meaning for f in anatomy(local(0x11, V4_BLOCK + tlv(4, b"pad")))}
    assert kept["address block"] == "ignored (LOCAL)" and kept["tlv[0].value"] == "padding, ignored"


def test_local_still_checks_version_and_its_size_limit() -> None:
    with pytest.raises(ProxyProtocolError, match=r"^version"):
        decode(SIG + b"\x10\x41\x00\x00")
    with pytest.raises(ProxyProtocolError, match=r"^length: header of 20000 bytes") as info:
        decode(local(0x00, bytes(20000 - 16))[:16])  # refused from the length field alone
    assert info.value.offset == 14
    assert decode(local(0x00, bytes(100)), DecodeLimits(max_v2_header_size=116)) is not None


def test_local_with_tlvs_and_a_family_round_trips() -> None:
    h = ProxyHeader(
        version=2,
        command=Command.LOCAL,
        family=Family.TCP4,
        tlvs=(TLV(TLVType.CRC32C, bytes(4)), TLV(TLVType.SSL, bytes(5))),
    )
    wire = encode(h, crc32c=True)
    assert wire[16:28] == bytes(12)  # a zeroed block keeps the TLVs where a receiver looks
    decoded, n = decode(wire) or (None, 0)
    assert decoded is not None and n == len(wire)
    assert decoded.tlvs[1] == h.tlvs[1] and decoded.crc32c is not None
