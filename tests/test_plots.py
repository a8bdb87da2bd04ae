"""Tests for sim.viz.plots: the byte-by-byte header figure and its table."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import ip_address

import matplotlib.pyplot as plt
import pytest
from matplotlib.patches import Rectangle

from sim.proxy_protocol import (
    TLV,
    Command,
    Family,
    ProxyHeader,
    ProxyProtocolError,
    TLVType,
    encode,
    ssl_tlv,
)
from sim.viz.plots import anatomy_frame, plot_header_anatomy

PAYLOAD = b"GET / HTTP/1.1\r\nHost: shop.example\r\n\r\n"


def _header(version: int, tlvs: tuple[TLV, ...] = ()) -> ProxyHeader:
    return ProxyHeader(
        version=version,
        command=Command.PROXY,
        family=Family.TCP4,
        src_addr=ip_address("10.0.1.23"),
        dst_addr=ip_address("10.0.0.5"),
        src_port=51234,
        dst_port=80,
        tlvs=tlvs,
    )


TLVS = (
    TLV(TLVType.ALPN, b"http/1.1"),
    TLV(TLVType.AUTHORITY, b"shop.example.com"),
    ssl_tlv(version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256"),
)


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def _cells(ax: plt.Axes) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle)]


@pytest.mark.parametrize(
    ("wire", "size"),
    [
        (encode(_header(1)), 40),
        (encode(_header(2)), 28),
        (encode(ProxyHeader.local()), 16),
        (encode(_header(2, TLVS), crc32c=True), None),
    ],
    ids=["v1", "v2", "v2-local", "v2-tlvs-crc"],
)
def test_one_cell_per_header_byte_and_payload_not_drawn(wire: bytes, size: int | None) -> None:
    if size is not None:
        assert len(wire) == size
    _fig, ax = plt.subplots()
    assert plot_header_anatomy(wire + PAYLOAD, ax=ax) is None
    cells = _cells(ax)
    assert len(cells) == len(wire)
    # Every header byte's hex value is printed once, in wire order.
    hexes = [t.get_text() for t in ax.texts if len(t.get_text()) == 2 and t.get_fontsize() == 9]
    assert hexes == [f"{b:02X}" for b in wire]


def test_cells_of_one_field_share_a_colour_and_tlvs_are_in_the_legend() -> None:
    wire = encode(_header(2, TLVS), crc32c=True)
    _fig, ax = plt.subplots()
    plot_header_anatomy(wire, ax=ax, bytes_per_row=8)
    cells = _cells(ax)
    # The 12 signature bytes share one colour; the source address (bytes 16..19) another.
    signature = {tuple(c.get_facecolor()) for c in cells[:12]}
    src_addr = {tuple(c.get_facecolor()) for c in cells[16:20]}
    assert len(signature) == 1
    assert len(src_addr) == 1
    assert signature != src_addr
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:4] == ["signature", "version/command", "family", "length"]
    assert "tlv[0] ALPN" in labels
    assert "tlv[1] AUTHORITY" in labels
    assert "tlv[2] SSL" in labels
    assert "tlv[2].sub[0] SSL_VERSION" in labels
    assert "tlv[3] CRC32C" in labels
    # Rows of 8 bytes: the y tick labels are the row offsets.
    assert [t.get_text() for t in ax.get_yticklabels()][:3] == ["0", "8", "16"]
    assert ax.get_title() == f"PROXY v2 (binary) header, {len(wire)} bytes"


def test_v1_glyphs_and_default_figure() -> None:
    plot_header_anatomy(encode(_header(1)), title="v1")
    ax = plt.gca()
    assert ax.get_title() == "v1"
    glyphs = [t.get_text() for t in ax.texts if t.get_fontsize() == 7]
    assert glyphs[:6] == ["P", "R", "O", "X", "Y", "SP"]
    assert glyphs[-2:] == ["CR", "LF"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PROXY TCP4 10.0.1.23", "incomplete header"),
        (b"GET / HTTP/1.1\r\n\r\n", "signature"),
        (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "family"),
    ],
)
def test_bad_header_raises_codec_error(data: bytes, message: str) -> None:
    with pytest.raises(ProxyProtocolError, match=message):
        plot_header_anatomy(data)


@pytest.mark.parametrize("bad", [3, 65, 16.0, True])
def test_bytes_per_row_is_validated(bad: object) -> None:
    with pytest.raises(ValueError, match="bytes_per_row"):
        plot_header_anatomy(encode(_header(2)), bytes_per_row=bad)  # type: ignore[arg-type]


def test_anatomy_frame_covers_the_header_exactly() -> None:
    wire = encode(_header(2, TLVS), crc32c=True)
    frame = anatomy_frame(wire + PAYLOAD)
    assert list(frame.columns) == ["offset", "length", "field", "hex", "meaning"]
    assert frame["length"].sum() == len(wire)
    assert (frame["offset"].diff().dropna() == frame["length"].iloc[:-1].to_numpy()).all()
    first = frame.iloc[0]
    assert first["field"] == "signature"
    assert first["hex"] == "0d 0a 0d 0a 00 0d 0a 51 55 49 54 0a"
    assert frame.loc[frame["field"] == "src_addr", "meaning"].item() == "10.0.1.23"
