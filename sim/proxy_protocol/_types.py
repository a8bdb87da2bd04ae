"""Wire constants, enums, the error type and the TLV record of the PROXY protocol codec.

Every number here comes from HAProxy's ``doc/proxy-protocol.txt`` (section numbers in the
comments) and FACTS H3 (v1 line <= 107 bytes; v2 = 12-byte signature + ver/cmd + fam + length).
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from enum import IntEnum
from ipaddress import IPv4Address, IPv6Address
from typing import Final

# §2.2: the 12-byte v2 signature; it contains a NUL at the 5th position on purpose.
V2_SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"
# §2.1: a v1 header starts with "PROXY" and exactly one space.
V1_PREFIX: Final = b"PROXY "
# §2.1: "If the CRLF sequence is not found in the first 107 characters, the receiver should
# declare the line invalid" (FACTS H3).
V1_MAX_LINE: Final = 107
# §2.2: the 16-byte fixed part; the length field is 16 bits, so a header is at most 16 + 65535.
V2_FIXED_SIZE: Final = 16
V2_MAX_HEADER: Final = V2_FIXED_SIZE + 0xFFFF
# §2.2.5: "an opaque byte sequence of up to 128 bytes".
UNIQUE_ID_MAX: Final = 128
# §2.2.2: AUTHORITY is a host name (TLS SNI); HAProxy refuses more than 255 bytes
# (HA_PP2_AUTHORITY_MAX in its src/connection.c), the longest DNS name.
AUTHORITY_MAX: Final = 255
# What a real receiver accepts, used as the default DecodeLimits: HAProxy reads a header into
# one buffer of tune.bufsize (16384 bytes by default) and refuses a TLV value over
# HA_PP2_MAX_ALLOC (1024 bytes, "to prevent DoS") in its conn_recv_proxy().
HAPROXY_MAX_HEADER: Final = 16384
HAPROXY_MAX_TLV_VALUE: Final = 1024
# §2.2: AF_UNIX addresses are exactly 108 bytes each (sockaddr_un.sun_path).
UNIX_PATH_SIZE: Final = 108
# §2.2.6: pp2_tlv_ssl = uint8 client + uint32 verify, then sub-TLVs.
SSL_FIXED_SIZE: Final = 5
# A TLV is type (1 byte) + length (2 bytes) + value (§2.2, struct pp2_tlv).
TLV_HEADER_SIZE: Final = 3
# TLV types that mean one thing per connection (§2.2.2, .3, .5, .6, .7): a second one is an
# error, because two receivers may disagree on which one counts (HAProxy keeps the last
# AUTHORITY, a first-match reader the first: a parser differential).
ONCE_ONLY_TYPES: Final = frozenset({0x02, 0x03, 0x05, 0x20, 0x30})


class ProxyProtocolError(ValueError):
    """Anything wrong with a PROXY protocol header, read from the wire or built by hand.

    The message starts with the name of the offending field (``signature``, ``version``,
    ``command``, ``family``, ``length``, ``src_addr``, ``tlv[2].value``, ...) and, for bytes
    read from the wire, ends with the byte offset of the offending byte.

    Attributes:
        offset: byte offset in the decoded data, or ``None`` when the error is not about
            received bytes (e.g. an invalid :class:`ProxyHeader` built in code).
        field: the name of the field at fault (``"tlvs"`` for every TLV error; the message
            then starts with ``tlv[i]``), or ``None``.
    """

    def __init__(self, message: str, *, offset: int | None = None, field: str | None = None):
        if offset is not None:
            message = f"{message} (at byte offset {offset})"
        super().__init__(message)
        self.offset = offset
        self.field = field


class Command(IntEnum):
    """The v2 command nibble (§2.2, 13th byte, low 4 bits)."""

    LOCAL = 0x0
    PROXY = 0x1


class Family(IntEnum):
    """The v2 address family and transport byte (§2.2, 14th byte).

    v1 carries only ``TCP4``, ``TCP6`` and ``UNKNOWN`` (decoded as :attr:`UNSPEC`).
    """

    UNSPEC = 0x00
    TCP4 = 0x11
    UDP4 = 0x12
    TCP6 = 0x21
    UDP6 = 0x22
    UNIX_STREAM = 0x31
    UNIX_DGRAM = 0x32


class TLVType(IntEnum):
    """Registered TLV types (§2.2) and the cloud vendors' custom ones (range 0xE0-0xEF, §2.2.8).

    ``SSL_*`` values are sub-types found inside the :attr:`SSL` TLV (§2.2.6). ``GCP``, ``AWS``
    and ``AZURE`` are the vendor types used by Google Private Service Connect, AWS NLB/VPC
    endpoint services and Azure Private Link.
    """

    ALPN = 0x01
    AUTHORITY = 0x02
    CRC32C = 0x03
    NOOP = 0x04
    UNIQUE_ID = 0x05
    SSL = 0x20
    SSL_VERSION = 0x21
    SSL_CN = 0x22
    SSL_CIPHER = 0x23
    SSL_SIG_ALG = 0x24
    SSL_KEY_ALG = 0x25
    NETNS = 0x30
    GCP = 0xE0
    AWS = 0xEA
    AZURE = 0xEE


# §2.2: size of the address block that each family byte announces.
ADDRESS_BLOCK_SIZE: Final[dict[int, int]] = {
    0x00: 0,
    0x11: 12,
    0x12: 12,
    0x21: 36,
    0x22: 36,
    0x31: 2 * UNIX_PATH_SIZE,
    0x32: 2 * UNIX_PATH_SIZE,
}
INET4_FAMILIES: Final = frozenset({Family.TCP4, Family.UDP4})
INET6_FAMILIES: Final = frozenset({Family.TCP6, Family.UDP6})
UNIX_FAMILIES: Final = frozenset({Family.UNIX_STREAM, Family.UNIX_DGRAM})
FAMILY_BY_VALUE: Final[dict[int, Family]] = {f.value: f for f in Family}
TLV_TYPE_BY_VALUE: Final[dict[int, TLVType]] = {t.value: t for t in TLVType}
# The same as a 256-entry tuple: the TLVType member for a registered type, else the int
# (a tuple index is cheaper than a dict look-up on the decoder's per-TLV path).
TLV_TYPE_OBJECT: Final[tuple[int, ...]] = tuple(TLV_TYPE_BY_VALUE.get(t, t) for t in range(256))

FAMILY_MEANING: Final[dict[Family, str]] = {
    Family.UNSPEC: "AF_UNSPEC, transport UNSPEC (addresses ignored)",
    Family.TCP4: "TCP over IPv4",
    Family.UDP4: "UDP over IPv4",
    Family.TCP6: "TCP over IPv6",
    Family.UDP6: "UDP over IPv6",
    Family.UNIX_STREAM: "AF_UNIX stream",
    Family.UNIX_DGRAM: "AF_UNIX datagram",
}


def tlv_type_name(type_: int) -> str:
    """Return ``"ALPN"`` for 0x01, ``"0xe3"`` for an unregistered type, and so on."""
    known = TLV_TYPE_BY_VALUE.get(type_)
    return known.name if known is not None else f"0x{type_:02x}"


class TLV:
    """One Type-Length-Value vector of a v2 header (§2.2, ``struct pp2_tlv``): ``TLV(type, value)``.

    ``type`` is an ``int`` in 0..255 (a :class:`TLVType` member when the type is known);
    ``value`` is at most 65535 bytes. Construction validates both and raises
    :class:`ProxyProtocolError` naming the field. Immutable and hashable, compared by value,
    like a frozen dataclass (assigning a field raises ``dataclasses.FrozenInstanceError``).

    Not a dataclass, for speed: the decoder builds one per TLV by storing the two private slots
    of ``object.__new__(TLV)``, about 0.1 us less than the layout-twin and ``__class__`` switch a
    frozen dataclass needs (measured on the benchmark machine).
    """

    __slots__ = ("_type", "_value")
    __match_args__ = ("type", "value")
    _type: int
    _value: bytes

    def __init__(self, type: int, value: bytes) -> None:
        t = type
        if t.__class__ is bool or not isinstance(t, int) or not 0 <= t <= 0xFF:
            raise ProxyProtocolError(f"type: must be an int in 0..255, got {t!r}", field="type")
        # Show registered types by name in reprs; IntEnum members compare equal to ints.
        self._type = TLV_TYPE_OBJECT[t] if t.__class__ is int else t
        v: object = value
        if isinstance(v, bytearray | memoryview):
            v = bytes(v)
        if not isinstance(v, bytes):
            raise ProxyProtocolError(
                f"value: must be bytes, got {v.__class__.__name__}", field="value"
            )
        if len(v) > 0xFFFF:
            raise ProxyProtocolError(
                f"value: {len(v)} bytes does not fit the 16-bit TLV length", field="value"
            )
        self._value = v

    @property
    def type(self) -> int:
        """The type byte (a :class:`TLVType` member when registered)."""
        return self._type

    @type.setter
    def type(self, value: int) -> None:
        raise FrozenInstanceError("cannot assign to field 'type'")

    @property
    def value(self) -> bytes:
        """The value bytes."""
        return self._value

    @value.setter
    def value(self, value: bytes) -> None:
        raise FrozenInstanceError("cannot assign to field 'value'")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TLV):
            return self._type == other._type and self._value == other._value
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._type, self._value))

    def __repr__(self) -> str:
        return f"TLV(type={self._type!r}, value={self._value!r})"

    def __reduce__(self) -> tuple[object, tuple[int, bytes]]:
        return TLV, (self._type, self._value)


_new = object.__new__


def new_tlv(type_: int, value: bytes) -> TLV:
    """Build a :class:`TLV` from already-validated parts without the checks of ``__init__``."""
    t = _new(TLV)
    t._type = TLV_TYPE_OBJECT[type_]
    t._value = value
    return t


def _fast_addresses_work() -> bool:
    """Whether an address object can be made with ``object.__new__`` plus its ``_ip`` slot.

    ``IPv4Address(int)`` checks the range and goes through two Python-level calls (about
    0.24 us); the decoder knows the value is a 32- or 128-bit integer, and storing the slot
    directly costs about 0.1 us. CPython's ``ipaddress`` has kept these slots (``_ip``, and
    ``_scope_id`` for IPv6) since 3.3; if a future version changes them, this check fails and
    the decoders call the public constructors instead.
    """
    try:
        a = object.__new__(IPv4Address)
        a._ip = 0x01020304  # type: ignore[attr-defined]
        b = object.__new__(IPv6Address)
        b._ip = 1  # type: ignore[attr-defined]
        b._scope_id = None  # type: ignore[attr-defined]
        ref_a, ref_b = IPv4Address("1.2.3.4"), IPv6Address("::1")
        return (
            a == ref_a
            and hash(a) == hash(ref_a)
            and str(a) == "1.2.3.4"
            and a.packed == ref_a.packed
            and b == ref_b
            and hash(b) == hash(ref_b)
            and str(b) == "::1"
            and b.scope_id is None
        )
    except Exception:  # pragma: no cover - only on an ipaddress with another layout
        return False


FAST_ADDRESSES: Final = _fast_addresses_work()


def ipv4_from_int(value: int) -> IPv4Address:
    """An ``IPv4Address`` for a 32-bit int known to be in range (see FAST_ADDRESSES)."""
    if FAST_ADDRESSES:
        a = object.__new__(IPv4Address)
        a._ip = value  # type: ignore[attr-defined]
        return a
    return IPv4Address(value)  # pragma: no cover


def ipv6_from_int(value: int) -> IPv6Address:
    """An ``IPv6Address`` (no zone id) for a 128-bit int known to be in range."""
    if FAST_ADDRESSES:
        a = object.__new__(IPv6Address)
        a._ip = value  # type: ignore[attr-defined]
        a._scope_id = None  # type: ignore[attr-defined]
        return a
    return IPv6Address(value)  # pragma: no cover
