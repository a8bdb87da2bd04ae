"""Deferred construction of a decoded :class:`~sim.proxy_protocol.ProxyHeader`'s fields.

Why: ``decode`` runs on every connection, and on the common headers building the field values
costs more than checking the bytes: two ``IPv4Address`` objects (about 0.2 us each), one
:class:`TLV` per TLV, the enum look-ups and eight slot stores. So the decoder checks *every*
byte (all errors are still raised by ``decode``), then stores only the header's bytes in the
private ``_wire`` slot and leaves the public slots empty.

How: reading an empty slot makes CPython's member descriptor raise ``AttributeError``, after
which CPython calls the class's ``__getattr__`` (installed by :func:`install`). That builds all
eight fields from the already validated bytes, stores them in their slots, and returns the one
asked for. Every later read is a plain slot read at C speed, and headers built through
``__init__`` have all slots filled, so they never reach ``__getattr__``. Equality, hashing,
``repr``, ``dataclasses.replace`` and pickling read the fields through normal attribute
access, so they see the built values. The fields are built together, not one group at a time,
because each trip through the hook costs about as much as building them all (measured on the
benchmark machine for a v2 TCP4 header: 0.4 us for the hook, 0.7 us for the eight values,
0.5 us to store them; later reads about 30 ns, as for a header built by ``ProxyHeader(...)``).

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

# §2.2: the inet4 block is src, dst (4 bytes each), src port, dst port (2 bytes each).
_INET4 = struct.Struct("!IIHH").unpack_from
_PORTS = struct.Struct("!HH").unpack_from
_PROXY = Command.PROXY
_LOCAL = Command.LOCAL
_TCP4 = Family.TCP4
_Setter = Callable[[Any, object], None]


def _v1_tokens(wire: bytes) -> list[bytes]:
    # "PROXY TCP4 <src> <dst> <sport> <dport>\r\n", already matched as canonical text.
    return wire[11:-2].split(b" ")


# The canonical text of each octet value (§2.1: decimal, no leading zeros) and its value.
_OCTET_VALUE = {b"%d" % i: i for i in range(256)}


def _ipv4_from_text(token: bytes) -> IPv4Address:
    # IPv4Address(str) re-parses and re-validates the text (about 1.5 us); the octets are
    # known to be canonical, so four dict look-ups give their values (int() costs 3x more).
    a, b, c, d = token.split(b".")
    v = _OCTET_VALUE
    return IPv4Address((v[a] << 24) | (v[b] << 16) | (v[c] << 8) | v[d])


def _unix_path(wire: bytes, start: int) -> str:
    # §2.2: a 108-byte sun_path, NUL-padded; decode already checked it is UTF-8.
    raw = wire[start : start + UNIX_PATH_SIZE]
    nul = raw.find(b"\x00")
    return (raw if nul < 0 else raw[:nul]).decode("utf-8")


_Fields = tuple[int, Command, Family, object, object, int | None, int | None, tuple[TLV, ...]]
# Index of each field in _Fields (the dataclass field order).
_INDEX = {
    "version": 0,
    "command": 1,
    "family": 2,
    "src_addr": 3,
    "dst_addr": 4,
    "src_port": 5,
    "dst_port": 6,
    "tlvs": 7,
}


def _fields(wire: bytes) -> _Fields:
    """All eight field values of the header in ``wire`` (validated by the decoder)."""
    if wire[0] == 0x50:  # "P": a v1 TCP4 line
        src, dst, sport, dport = _v1_tokens(wire)
        return (
            1,
            _PROXY,
            _TCP4,
            _ipv4_from_text(src),
            _ipv4_from_text(dst),
            int(sport),
            int(dport),
            (),
        )
    fam = wire[13]
    family = FAMILY_BY_VALUE[fam]
    block = ADDRESS_BLOCK_SIZE[fam]
    tlvs = _tlvs(wire, block) if len(wire) > 16 + block else ()
    if wire[12] != 0x21:
        # LOCAL: "discard the protocol block including the family" (§2.2, FACTS E3).
        return 2, _LOCAL, family, None, None, None, None, tlvs
    if block == 12:
        src4, dst4, sport4, dport4 = _INET4(wire, 16)
        return 2, _PROXY, family, IPv4Address(src4), IPv4Address(dst4), sport4, dport4, tlvs
    if block == 36:
        sport6, dport6 = _PORTS(wire, 48)
        src6, dst6 = IPv6Address(wire[16:32]), IPv6Address(wire[32:48])
        return 2, _PROXY, family, src6, dst6, sport6, dport6, tlvs
    if block:
        src_path = _unix_path(wire, 16)
        dst_path = _unix_path(wire, 16 + UNIX_PATH_SIZE)
        return 2, _PROXY, family, src_path, dst_path, None, None, tlvs
    # UNSPEC: "the receiver should ignore address information" (§2.2).
    return 2, _PROXY, family, None, None, None, None, tlvs


def _tlvs(wire: bytes, block: int) -> tuple[TLV, ...]:
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


def install(cls: type) -> _Setter:
    """Give ``cls`` (ProxyHeader) the lazy-field ``__getattr__``; return the ``_wire`` setter.

    The hook is attached after the class body so that type checkers keep reporting unknown
    attribute names (a ``__getattr__`` in the class body would make every name valid).
    """
    slots = {name: cls.__dict__[name] for name in cls.__dict__["__slots__"]}
    get_wire = slots["_wire"].__get__
    set_version, set_command, set_family, set_src, set_dst, set_sport, set_dport, set_tlvs = (
        slots[name].__set__ for name in _INDEX
    )
    index = _INDEX.get

    def __getattr__(self: Any, name: str) -> Any:
        # CPython calls this only when normal lookup failed: here, an empty slot. One call
        # builds every field: the trip through this hook (the AttributeError CPython raises
        # and clears first) costs about as much as building them.
        i = index(name)
        if i is not None:
            try:
                wire = get_wire(self, cls)
            except AttributeError:  # not even _wire is set: a never-initialized object
                wire = None
            if wire is not None:
                values = _fields(wire)
                # Eight explicit calls: a loop over zip(setters, values) costs twice as much.
                # Two threads reading a fresh header at once both build and store equal values.
                set_version(self, values[0])
                set_command(self, values[1])
                set_family(self, values[2])
                set_src(self, values[3])
                set_dst(self, values[4])
                set_sport(self, values[5])
                set_dport(self, values[6])
                set_tlvs(self, values[7])
                return values[i]
        raise AttributeError(
            f"{cls.__name__!r} object has no attribute {name!r}", name=name, obj=self
        )

    type.__setattr__(cls, "__getattr__", __getattr__)
    set_wire: _Setter = slots["_wire"].__set__
    return set_wire
