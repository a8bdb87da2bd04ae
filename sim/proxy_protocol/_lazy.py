"""Deferred construction of a decoded :class:`~sim.proxy_protocol.ProxyHeader`'s fields.

Why: ``decode`` runs on every connection, and on the common headers building the field values
costs more than checking the bytes: two ``IPv4Address`` objects (about 0.2 us each), one
:class:`TLV` per TLV, the enum look-ups and eight slot stores. So the decoder checks *every*
byte (all errors are still raised by ``decode``), then stores only the header's bytes in the
private ``_wire`` slot and leaves the public slots empty.

How: reading an empty slot makes CPython's member descriptor raise ``AttributeError``, after
which CPython calls the class's ``__getattr__`` (installed by :func:`install`). That builds the
*group* of fields the name belongs to from the already validated bytes, stores them in their
slots, and returns the value. Every later read is a plain slot read at C speed, and headers
built through ``__init__`` have all slots filled, so they never reach ``__getattr__``.
Equality, hashing, ``repr``, ``dataclasses.replace`` and pickling read the fields through
normal attribute access, so they see the built values.

Groups (each built on the first read of one of its names):

* scalars: ``version``, ``command``, ``family``, ``src_port``, ``dst_port`` (cheap);
* addresses: ``src_addr``, ``dst_addr`` (the address objects, the costly part);
* ``tlvs``: one :class:`TLV` per TLV, in wire order.

``_wire`` holds exactly the header's bytes: a v2 header (§2.2) or a v1 ``PROXY TCP4`` line
(§2.1) that the canonical-line check accepted. The v1 TCP6 and UNKNOWN forms are decoded
eagerly (they are rare, and TCP6 validation builds the ``IPv6Address`` anyway).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from ._types import (
    ADDRESS_BLOCK_SIZE,
    FAMILY_BY_VALUE,
    TLV,
    TLV_HEADER_SIZE,
    UNIX_PATH_SIZE,
    Command,
    Family,
    new_tlv,
)

_ADDRS4 = struct.Struct("!II").unpack_from
_PORTS = struct.Struct("!HH").unpack_from
_PROXY = Command.PROXY
_LOCAL = Command.LOCAL
_TCP4 = Family.TCP4
# §2.2: ports follow the two addresses of an inet block (offset 16 + 8 or 16 + 32).
_PORTS_AT = {0x11: 24, 0x12: 24, 0x21: 48, 0x22: 48}
_Setter = Callable[[Any, object], None]


def _v1_tokens(wire: bytes) -> list[bytes]:
    # "PROXY TCP4 <src> <dst> <sport> <dport>\r\n", already matched as canonical text.
    return wire[11:-2].split(b" ")


def _ipv4_from_text(token: bytes) -> IPv4Address:
    # IPv4Address(str) re-parses and re-validates the text (about 1.5 us); the octets are
    # known to be canonical decimal 0..255, so build the int directly.
    a, b, c, d = token.split(b".")
    return IPv4Address((int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d))


def _unix_path(wire: bytes, start: int) -> str:
    # §2.2: a 108-byte sun_path, NUL-padded; decode already checked it is UTF-8.
    raw = wire[start : start + UNIX_PATH_SIZE]
    nul = raw.find(b"\x00")
    return (raw if nul < 0 else raw[:nul]).decode("utf-8")


def _scalars(wire: bytes) -> tuple[int, Command, Family, int | None, int | None]:
    if wire[0] == 0x50:  # "P": a v1 TCP4 line
        tokens = _v1_tokens(wire)
        return 1, _PROXY, _TCP4, int(tokens[2]), int(tokens[3])
    family = FAMILY_BY_VALUE[wire[13]]
    # §2.2: a LOCAL header's address block is ignored; UNSPEC and UNIX carry no ports.
    at = _PORTS_AT.get(wire[13]) if wire[12] == 0x21 else None
    if at is None:
        return 2, _PROXY if wire[12] == 0x21 else _LOCAL, family, None, None
    sport, dport = _PORTS(wire, at)
    return 2, _PROXY, family, sport, dport


def _addresses(wire: bytes) -> tuple[object, object]:
    if wire[0] == 0x50:
        tokens = _v1_tokens(wire)
        return _ipv4_from_text(tokens[0]), _ipv4_from_text(tokens[1])
    if wire[12] != 0x21:
        return None, None  # LOCAL (§2.2, FACTS E3)
    block = ADDRESS_BLOCK_SIZE[wire[13]]
    if block == 12:
        src, dst = _ADDRS4(wire, 16)
        return IPv4Address(src), IPv4Address(dst)
    if block == 36:
        return IPv6Address(wire[16:32]), IPv6Address(wire[32:48])
    if block:
        return _unix_path(wire, 16), _unix_path(wire, 16 + UNIX_PATH_SIZE)
    return None, None  # UNSPEC


def _tlvs(wire: bytes) -> tuple[TLV, ...]:
    if wire[0] == 0x50:
        return ()
    block = ADDRESS_BLOCK_SIZE[wire[13]]
    if len(wire) - 16 < block:
        block = 0  # a LOCAL header that omits the address block (length 0)
    out = []
    pos = 16 + block
    end = len(wire)
    while pos < end:
        vend = pos + TLV_HEADER_SIZE + ((wire[pos + 1] << 8) | wire[pos + 2])
        out.append(new_tlv(wire[pos], wire[pos + TLV_HEADER_SIZE : vend]))
        pos = vend
    return tuple(out)


_SCALAR_NAMES = ("version", "command", "family", "src_port", "dst_port")
_ADDRESS_NAMES = ("src_addr", "dst_addr")


def install(cls: type) -> _Setter:
    """Give ``cls`` (ProxyHeader) the lazy-field ``__getattr__``; return the ``_wire`` setter.

    The hook is attached after the class body so that type checkers keep reporting unknown
    attribute names (a ``__getattr__`` in the class body would make every name valid).
    """
    slots = {name: cls.__dict__[name] for name in cls.__dict__["__slots__"]}
    get_wire = slots["_wire"].__get__
    setters: dict[str, _Setter] = {name: slot.__set__ for name, slot in slots.items()}
    scalar_setters = [setters[name] for name in _SCALAR_NAMES]
    set_src, set_dst, set_tlvs = setters["src_addr"], setters["dst_addr"], setters["tlvs"]

    def __getattr__(self: Any, name: str) -> Any:
        try:
            wire = get_wire(self, cls)
        except AttributeError:  # not even _wire is set: an object that was never initialized
            wire = None
        if wire is not None:
            if name in _SCALAR_NAMES:
                for set_, value in zip(scalar_setters, _scalars(wire), strict=True):
                    set_(self, value)
            elif name in _ADDRESS_NAMES:
                src, dst = _addresses(wire)
                set_src(self, src)
                set_dst(self, dst)
            elif name == "tlvs":
                set_tlvs(self, _tlvs(wire))
            else:
                wire = None
            if wire is not None:
                return slots[name].__get__(self, cls)
        raise AttributeError(
            f"{cls.__name__!r} object has no attribute {name!r}", name=name, obj=self
        )

    type.__setattr__(cls, "__getattr__", __getattr__)
    return setters["_wire"]
