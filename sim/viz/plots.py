"""Figures for the notebooks and the docs: a PROXY protocol header drawn byte by byte.

Built on :func:`sim.proxy_protocol.anatomy`, which splits a complete header into contiguous,
named fields (FACTS H3: v1 is one text line; v2 is a 12-byte signature, version/command,
family, a 2-byte length, the addresses and optional TLVs). This module only draws; it never
interprets bytes itself, so the figure shows exactly what the codec decoded.

matplotlib only. Functions draw into an existing ``Axes`` or a new figure and return ``None``,
so a notebook cell ends with ``plt.show()`` and leaves no text repr behind (TOOLCHAIN: a
trailing ``;`` does not hide it under nbval).
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.patches import Patch, Rectangle

from sim.proxy_protocol import AnatomyField, anatomy

__all__ = ["anatomy_frame", "plot_header_anatomy"]

#: Fixed colours for the fields every header has; TLVs get colours from ``_TLV_PALETTE``.
_FIELD_COLOURS: dict[str, str] = {
    "signature": "#bdbdbd",
    "version/command": "#fdae6b",
    "family": "#fd8d3c",
    "length": "#fdd0a2",
    "src_addr": "#6baed6",
    "src_port": "#c6dbef",
    "dst_addr": "#74c476",
    "dst_port": "#c7e9c0",
    "address block": "#d9d9d9",
    "space": "#f0f0f0",
    "crlf": "#f0f0f0",
    "ignored": "#d9d9d9",
}
# Hues the fixed fields do not use (no grey, orange, blue or green), so a TLV never looks
# like an address.
_TLV_PALETTE: tuple[str, ...] = (
    "#9e9ac8",
    "#f768a1",
    "#41b6c4",
    "#e7ba52",
    "#d6616b",
    "#ce6dbd",
    "#b5a48b",
    "#7fcdbb",
)
_OTHER_COLOUR = "#ffffb2"
_Colour = str | tuple[float, float, float]
_SEPARATORS = frozenset({"space", "crlf"})


def _group(field: AnatomyField) -> str:
    """The legend entry a field belongs to: one per TLV (``tlv[1]``), else the field name."""
    if field.name.startswith("tlv["):
        # "tlv[2].sub[0].type" -> "tlv[2].sub[0]"; "tlv[2].client" -> "tlv[2]".
        head, _, last = field.name.rpartition(".")
        return head if last in {"type", "length", "value", "client", "verify"} else field.name
    return field.name


def _lighter(colour: str, amount: float = 0.45) -> tuple[float, float, float]:
    """``colour`` mixed towards white: the type and length bytes of a TLV."""
    hue, light, sat = colorsys.rgb_to_hls(*to_rgb(colour))
    return colorsys.hls_to_rgb(hue, light + (1.0 - light) * amount, sat)


def _glyph(byte: int) -> str:
    """A short printable rendering of one byte, shown under its hex value."""
    if byte == 0x0D:
        return "CR"
    if byte == 0x0A:
        return "LF"
    if byte == 0x20:
        return "SP"
    if 0x21 <= byte <= 0x7E:
        return chr(byte)
    return ""


def _colours(fields: Sequence[AnatomyField]) -> tuple[list[_Colour], list[tuple[str, _Colour]]]:
    """Per-field face colours and the legend entries (label, colour) in wire order."""
    tlv_colour: dict[str, str] = {}
    faces: list[_Colour] = []
    legend: list[tuple[str, _Colour]] = []
    seen: set[str] = set()
    for field in fields:
        group = _group(field)
        if group.startswith("tlv["):
            base = tlv_colour.setdefault(group, _TLV_PALETTE[len(tlv_colour) % len(_TLV_PALETTE)])
            last = field.name.rpartition(".")[2]
            faces.append(_lighter(base) if last in {"type", "length"} else base)
            if group not in seen and last == "type":
                # The type field's meaning is the TLV's name, e.g. "ALPN" or "SSL_VERSION".
                legend.append((f"{group} {field.meaning}", base))
        else:
            colour = _FIELD_COLOURS.get(field.name, _OTHER_COLOUR)
            faces.append(colour)
            if group not in seen:
                legend.append((field.name, colour))
        seen.add(group)
    return faces, legend


def plot_header_anatomy(
    data: bytes | bytearray | memoryview,
    ax: Axes | None = None,
    *,
    bytes_per_row: int = 16,
    title: str | None = None,
) -> None:
    """Draw the complete PROXY header at the start of ``data`` byte by byte, fields colour-coded.

    Each byte is a cell showing its hex value and, below it, the character it encodes (``CR``,
    ``LF`` and ``SP`` for the v1 separators). Cells take the colour of the field that
    :func:`sim.proxy_protocol.anatomy` assigns them to; all bytes of one TLV share a colour, its
    type and length bytes a lighter shade. Rows are labelled with the offset of their first byte.
    Bytes after the header are not drawn.

    Args:
        data: bytes starting with a complete v1 or v2 header.
        ax: the Axes to draw into; by default a new figure sized to the header.
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
    faces, legend = _colours(fields)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.62 * bytes_per_row + 1.0, 0.62 * rows + 1.6))

    for field, face in zip(fields, faces, strict=True):
        for i, byte in enumerate(field.raw):
            pos = field.offset + i
            x, y = pos % bytes_per_row, -(pos // bytes_per_row)
            ax.add_patch(Rectangle((x, y), 1, 1, facecolor=face, edgecolor="white", lw=1.5))
            ax.text(x + 0.5, y + 0.62, f"{byte:02X}", ha="center", va="center", fontsize=9)
            glyph = _glyph(byte)
            if glyph:
                ax.text(x + 0.5, y + 0.25, glyph, ha="center", va="center", fontsize=7, c="#404040")
        if field.name not in _SEPARATORS:
            # A dark tick on the left edge of a field's first byte marks where the field starts,
            # so adjacent fields of similar colour (a TLV's type and length) stay distinct.
            x, y = field.offset % bytes_per_row, -(field.offset // bytes_per_row)
            ax.plot([x + 0.06, x + 0.06], [y + 0.08, y + 0.92], color="#252525", lw=1.2)

    ax.set_xlim(0, bytes_per_row)
    ax.set_ylim(-rows + 1, 1)
    ax.set_aspect("equal")
    ax.set_xticks([i + 0.5 for i in range(bytes_per_row)], [str(i) for i in range(bytes_per_row)])
    ax.set_yticks([-(r) + 0.5 for r in range(rows)], [str(r * bytes_per_row) for r in range(rows)])
    ax.tick_params(length=0, labelsize=8)
    ax.xaxis.tick_top()
    for spine in ax.spines.values():
        spine.set_visible(False)
    version = "v1 (text)" if bytes(fields[0].raw[:1]) == b"P" else "v2 (binary)"
    ax.set_title(title if title is not None else f"PROXY {version} header, {size} bytes", pad=18)
    ax.legend(
        handles=[
            Patch(facecolor=colour, edgecolor="#bdbdbd", label=label) for label, colour in legend
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.02),
        ncol=min(4, len(legend)),
        fontsize=8,
        frameon=False,
    )


def anatomy_frame(data: bytes | bytearray | memoryview) -> pd.DataFrame:
    """The fields of :func:`sim.proxy_protocol.anatomy` as a table, one row per field.

    Columns: ``offset``, ``length``, ``field``, ``hex`` (the raw bytes, space-separated) and
    ``meaning``. Raises :class:`~sim.proxy_protocol.ProxyProtocolError` like ``anatomy``.
    """
    rows = [(f.offset, f.length, f.name, f.raw.hex(" "), f.meaning) for f in anatomy(data)]
    return pd.DataFrame(rows, columns=["offset", "length", "field", "hex", "meaning"])
