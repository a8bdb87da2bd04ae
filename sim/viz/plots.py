"""Figures for the notebooks and the docs: a PROXY protocol header drawn byte by byte.

Built on :func:`sim.proxy_protocol.anatomy`, which splits a complete header into contiguous,
named fields (FACTS H3: v1 is one text line; v2 is a 12-byte signature, version/command,
family, a 2-byte length, the addresses and optional TLVs). This module only draws; it never
interprets bytes itself, so the figure shows exactly what the codec decoded.

The colours are fixed, so a field or a TLV type looks the same in every figure: the header's
bookkeeping (signature, version/command, family, length) in light neutral tints, the source in
bluish green and the destination in blue (the client and HAProxy's colours in
:mod:`sim.viz.paths`), ports in a lighter shade of their address, and every TLV type in its own
colour (:data:`TLV_COLOURS`), its type and length bytes in a lighter shade of it. The hues are
Okabe-Ito's and Paul Tol's colour-blind-safe sets, chosen so that fields next to each other on
the wire differ. A byte's character is printed under it only in text fields: all of a v1 line,
the v2 signature and the values of text TLVs (ALPN, authority, unique ID, SSL strings).

matplotlib only. Functions draw into an existing ``Axes`` or a new figure and return ``None``,
so a notebook cell ends with ``plt.show()`` and leaves no text repr behind (TOOLCHAIN: a
trailing ``;`` does not hide it under nbval). A new figure is 7 inches wide at 16 bytes per
row, so its 9-pt text stays 9 pt at the docs' column width.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.patches import Patch, Rectangle

from sim.proxy_protocol import AnatomyField, TLVType, anatomy

__all__ = ["FIELD_COLOURS", "TLV_COLOURS", "TLV_SHADE_NOTE", "anatomy_frame", "plot_header_anatomy"]

FIELD_COLOURS: dict[str, str] = {
    "signature": "#D9D9D9",
    "version/command": "#F5C971",
    "family": "#F7EF8F",
    "length": "#A9D8F3",
    "src_addr": "#009E73",
    "src_port": "#80CEB9",
    "dst_addr": "#0072B2",
    "dst_port": "#80B8D8",
    "address block": "#EEEEEE",
    "body": "#EEEEEE",
    "ignored": "#EEEEEE",
    "space": "#F7F7F7",
    "crlf": "#F7F7F7",
}
"""Face colour of every field that is not part of a TLV, by its :func:`anatomy` name."""

TLV_COLOURS: dict[int, str] = {
    TLVType.ALPN: "#CC79A7",
    TLVType.AUTHORITY: "#D55E00",
    TLVType.CRC32C: "#999933",
    TLVType.NOOP: "#BBBBBB",
    TLVType.UNIQUE_ID: "#332288",
    TLVType.SSL: "#882255",
    TLVType.SSL_VERSION: "#CC6677",
    TLVType.SSL_CN: "#44AA99",
    TLVType.SSL_CIPHER: "#AA4499",
    TLVType.SSL_SIG_ALG: "#DDCC77",
    TLVType.SSL_KEY_ALG: "#117733",
    TLVType.NETNS: "#88CCEE",
}
"""The colour of a TLV by its type code, the same in every figure; other types are grey."""
_OTHER_TLV = "#C8C8C8"
_OTHER_FIELD = "#FFFFB2"

TLV_SHADE_NOTE = "Lighter shade: a TLV's type and length bytes; full colour: its value."
"""The legend's note on the shades, in figures with TLVs."""
_CELL_NOTE = "A dark tick marks where a field starts; characters are shown under text fields only."

# TLVs whose value is text (FACTS H2): their bytes get their characters printed under them.
_TEXT_TLVS = frozenset(
    {
        TLVType.ALPN,
        TLVType.AUTHORITY,
        TLVType.UNIQUE_ID,
        TLVType.NETNS,
        TLVType.SSL_VERSION,
        TLVType.SSL_CN,
        TLVType.SSL_CIPHER,
        TLVType.SSL_SIG_ALG,
        TLVType.SSL_KEY_ALG,
    }
)
_PT = 9.0
_Colour = str | tuple[float, float, float]


def _lighter(colour: str, amount: float = 0.55) -> tuple[float, float, float]:
    """``colour`` mixed towards white: the type and length bytes of a TLV."""
    hue, light, sat = colorsys.rgb_to_hls(*to_rgb(colour))
    return colorsys.hls_to_rgb(hue, light + (1.0 - light) * amount, sat)


def _ink(face: _Colour) -> str:
    """Black on light faces, white on dark ones (relative luminance, WCAG)."""
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in to_rgb(face))
    return "white" if 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.2 else "black"


def _glyph(byte: int) -> str:
    """A short printable rendering of one byte of a text field."""
    names = {0x0D: "CR", 0x0A: "LF", 0x20: "SP", 0x00: "NUL"}
    if byte in names:
        return names[byte]
    return chr(byte) if 0x21 <= byte <= 0x7E else "·"


def _tlv_group(name: str) -> str:
    """``"tlv[2].sub[0].type"`` -> ``"tlv[2].sub[0]"``; ``"tlv[3].client"`` -> ``"tlv[3]"``."""
    return name.rpartition(".")[0]


def _tlv_label(code: int) -> str:
    try:
        return f"{TLVType(code).name} (0x{code:02X})"
    except ValueError:
        return f"TLV 0x{code:02X}"


def _styles(
    fields: Sequence[AnatomyField],
) -> tuple[list[_Colour], list[bool], list[tuple[str, _Colour]]]:
    """Per field: its face colour and whether it is text; and the legend, in wire order."""
    v1 = bytes(fields[0].raw[:1]) == b"P"
    types: dict[str, int] = {}
    faces: list[_Colour] = []
    texts: list[bool] = []
    legend: dict[str, _Colour] = {}
    for field in fields:
        if not field.name.startswith("tlv["):
            colour = FIELD_COLOURS.get(field.name, _OTHER_FIELD)
            faces.append(colour)
            texts.append(v1 or field.name == "signature")
            legend.setdefault(field.name, colour)
            continue
        group, part = _tlv_group(field.name), field.name.rpartition(".")[2]
        if part == "type":
            types[group] = field.raw[0]
        code = types.get(group, -1)
        base = TLV_COLOURS.get(code, _OTHER_TLV)
        faces.append(_lighter(base) if part in {"type", "length"} else base)
        texts.append(part == "value" and code in _TEXT_TLVS)
        legend.setdefault(_tlv_label(code), base)
    return faces, texts, list(legend.items())


def _draw_cells(ax: Axes, fields: Sequence[AnatomyField], per_row: int) -> None:
    faces, texts, _ = _styles(fields)
    for field, face, text in zip(fields, faces, texts, strict=True):
        ink = _ink(face)
        for i, byte in enumerate(field.raw):
            pos = field.offset + i
            x, y = pos % per_row, -(pos // per_row)
            ax.add_patch(Rectangle((x, y), 1, 1, facecolor=face, edgecolor="white", lw=1.5))
            value = ax.text(
                x + 0.5,
                y + (0.66 if text else 0.5),
                f"{byte:02X}",
                ha="center",
                va="center",
                fontsize=_PT,
                c=ink,
                family="monospace",
            )
            value.set_gid("hex")
            if text:
                glyph = ax.text(
                    x + 0.5,
                    y + 0.26,
                    _glyph(byte),
                    ha="center",
                    va="center",
                    fontsize=_PT,
                    c=ink,
                    alpha=0.75,
                )
                glyph.set_gid("glyph")
        if field.name not in {"space", "crlf"}:
            # A dark tick on the left edge of a field's first byte marks where the field starts,
            # so adjacent cells of similar colour (a TLV's type and length) stay distinct.
            x, y = field.offset % per_row, -(field.offset // per_row)
            ax.plot([x + 0.07, x + 0.07], [y + 0.1, y + 0.9], color="#252525", lw=1.4)


def _has_tlvs(fields: Sequence[AnatomyField]) -> bool:
    return any(f.name.startswith("tlv[") for f in fields)


def _new_axes(rows: int, per_row: int, entries: int, *, any_tlv: bool) -> Axes:
    """A figure laid out in inches: row labels, the grid of cells, then legend and notes."""
    cell = min(0.42, 6.4 / per_row)  # 16 bytes per row: 0.4 in, the figure 7 in wide
    left, right, top = 0.5, 0.1, 0.75
    below = 0.3 + 0.21 * (-(-entries // 3)) + 0.19 * (2 if any_tlv else 1)
    width, height = left + cell * per_row + right, top + cell * rows + below
    fig = plt.figure(figsize=(width, height))
    return fig.add_axes(
        (left / width, below / height, cell * per_row / width, cell * rows / height)
    )


def plot_header_anatomy(
    data: bytes | bytearray | memoryview,
    ax: Axes | None = None,
    *,
    bytes_per_row: int = 16,
    title: str | None = None,
) -> None:
    """Draw the complete PROXY header at the start of ``data`` byte by byte, fields colour-coded.

    Each byte is a cell showing its hex value and, in text fields only, the character under it
    (``CR``, ``LF``, ``SP`` and ``NUL`` by name). Cells take the colour of the field that
    :func:`sim.proxy_protocol.anatomy` assigns them to (:data:`FIELD_COLOURS`); TLVs take the
    colour of their type (:data:`TLV_COLOURS`), their type and length bytes a lighter shade.
    Rows are labelled with the offset of their first byte. Bytes after the header are not drawn.

    Args:
        data: bytes starting with a complete v1 or v2 header.
        ax: the Axes to draw into; by default a new figure sized to the header (7 inches wide
            at 16 bytes per row).
        bytes_per_row: cells per row, 4..64.
        title: the Axes title; by default the header's version and size.

    Raises:
        ProxyProtocolError: ``data`` does not start with a complete, valid header (the message
            names the field and the byte offset).
        ValueError: ``bytes_per_row`` is out of range.
    """
    if isinstance(bytes_per_row, bool) or not isinstance(bytes_per_row, int):
        raise ValueError(f"bytes_per_row: must be an int in 4..64, got {bytes_per_row!r}")
    if not 4 <= bytes_per_row <= 64:
        raise ValueError(f"bytes_per_row: must be an int in 4..64, got {bytes_per_row}")
    fields = anatomy(data)
    size = fields[-1].offset + fields[-1].length
    rows = -(-size // bytes_per_row)
    _, _, legend = _styles(fields)
    if ax is None:
        ax = _new_axes(rows, bytes_per_row, len(legend), any_tlv=_has_tlvs(fields))
    _draw_cells(ax, fields, bytes_per_row)
    ax.set_xlim(0, bytes_per_row)
    ax.set_ylim(-rows + 1, 1)
    ax.set_aspect("equal")
    ax.set_xticks([i + 0.5 for i in range(bytes_per_row)], [str(i) for i in range(bytes_per_row)])
    ax.set_yticks([-r + 0.5 for r in range(rows)], [str(r * bytes_per_row) for r in range(rows)])
    ax.tick_params(length=0, labelsize=_PT)
    ax.xaxis.tick_top()
    for spine in ax.spines.values():
        spine.set_visible(False)
    version = "v1 (text)" if bytes(fields[0].raw[:1]) == b"P" else "v2 (binary)"
    default = f"PROXY {version} header, {size} bytes"
    ax.set_title(title if title is not None else default, pad=20, fontsize=_PT + 1.5)
    handles = [Patch(facecolor=c, edgecolor="#bdbdbd", label=label) for label, c in legend]
    notes = [TLV_SHADE_NOTE] if _has_tlvs(fields) else []
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.02),
        ncol=3,
        fontsize=_PT,
        frameon=False,
        title="\n".join([*notes, _CELL_NOTE]),
        title_fontsize=_PT,
    )


def anatomy_frame(data: bytes | bytearray | memoryview) -> pd.DataFrame:
    """The fields of :func:`sim.proxy_protocol.anatomy` as a table, one row per field.

    Columns: ``offset``, ``length``, ``field``, ``hex`` (the raw bytes, space-separated) and
    ``meaning``. Raises :class:`~sim.proxy_protocol.ProxyProtocolError` like ``anatomy``.
    """
    rows = [(f.offset, f.length, f.name, f.raw.hex(" "), f.meaning) for f in anatomy(data)]
    return pd.DataFrame(rows, columns=["offset", "length", "field", "hex", "meaning"])
