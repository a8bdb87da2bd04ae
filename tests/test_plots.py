"""Tests for sim.viz.plots: the byte-by-byte header figure and its table."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from ipaddress import ip_address

import matplotlib.pyplot as plt
import pytest
from matplotlib.colors import to_rgb, to_rgba
from matplotlib.patches import Rectangle

from sim.proxy_protocol import (
    TLV,
    Command,
    Family,
    ProxyHeader,
    ProxyProtocolError,
    TLVType,
    anatomy,
    encode,
    ssl_tlv,
)
from sim.viz.plots import TLV_COLOURS, TLV_SHADE_NOTE, _styles, anatomy_frame, plot_header_anatomy

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
    # Every header byte's hex value is printed once, in wire order, at 9 pt.
    hexes = [t for t in ax.texts if t.get_gid() == "hex"]
    assert [t.get_text() for t in hexes] == [f"{b:02X}" for b in wire]
    assert {t.get_fontsize() for t in ax.texts} == {9.0}


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
    legend = ax.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[:4] == ["signature", "version/command", "family", "length"]
    for name in ("ALPN (0x01)", "AUTHORITY (0x02)", "SSL (0x20)", "SSL_VERSION (0x21)"):
        assert name in labels
    assert "CRC32C (0x03)" in labels
    assert TLV_SHADE_NOTE in legend.get_title().get_text()  # the lighter shade is explained
    # Rows of 8 bytes: the y tick labels are the row offsets.
    assert [t.get_text() for t in ax.get_yticklabels()][:3] == ["0", "8", "16"]
    assert ax.get_title() == f"PROXY v2 (binary) header, {len(wire)} bytes"


def _colour_of(ax: plt.Axes, label: str) -> tuple[float, ...]:
    legend = ax.get_legend()
    for text, handle in zip(legend.get_texts(), legend.legend_handles, strict=True):
        if text.get_text() == label:
            return tuple(handle.get_facecolor())
    raise AssertionError(f"no legend entry {label!r}")


def test_a_tlv_type_has_one_colour_in_every_figure() -> None:
    first = encode(_header(2, TLVS))
    # Other TLVs before it, in another order: SSL is the first TLV here, the third above.
    second = encode(_header(2, (TLVS[2], TLV(TLVType.UNIQUE_ID, b"abc"), TLVS[0])))
    _f1, ax1 = plt.subplots()
    plot_header_anatomy(first, ax=ax1)
    _f2, ax2 = plt.subplots()
    plot_header_anatomy(second, ax=ax2)
    for label in ("ALPN (0x01)", "SSL (0x20)", "SSL_VERSION (0x21)"):
        assert _colour_of(ax1, label) == _colour_of(ax2, label)
    assert _colour_of(ax2, "UNIQUE_ID (0x05)") != _colour_of(ax2, "SSL (0x20)")
    assert _colour_of(ax1, "ALPN (0x01)") == to_rgba(TLV_COLOURS[TLVType.ALPN])


def test_neighbouring_fields_differ_in_colour() -> None:
    wire = encode(_header(2, TLVS), crc32c=True)
    fields = anatomy(wire)
    faces, _texts, _legend = _styles(fields)
    for (a, fa), (b, fb) in itertools.pairwise(zip(fields, faces, strict=True)):
        if a.name.startswith("tlv[") and a.name.rpartition(".")[0] == b.name.rpartition(".")[0]:
            continue  # parts of one TLV (type and length; SSL's client and verify) share a shade
        ra, ga, ba = to_rgb(fa)
        rb, gb, bb = to_rgb(fb)
        distance = ((ra - rb) ** 2 + (ga - gb) ** 2 + (ba - bb) ** 2) ** 0.5
        assert distance > 0.12, f"{a.name} and {b.name} look alike"


def test_characters_only_under_text_fields() -> None:
    v2 = encode(_header(2, (TLV(TLVType.ALPN, b"h2"),)))
    _fig, ax = plt.subplots()
    plot_header_anatomy(v2, ax=ax)
    glyphs = [t.get_text() for t in ax.texts if t.get_gid() == "glyph"]
    # The signature (12 bytes, CR LF NUL QUIT) and the ALPN value; no address, port or length.
    assert glyphs == ["CR", "LF", "CR", "LF", "NUL", "CR", "LF", "Q", "U", "I", "T", "LF", "h", "2"]


def test_v1_glyphs_and_default_figure() -> None:
    plot_header_anatomy(encode(_header(1)), title="v1")
    ax = plt.gca()
    assert ax.get_title() == "v1"
    glyphs = [t.get_text() for t in ax.texts if t.get_gid() == "glyph"]
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
