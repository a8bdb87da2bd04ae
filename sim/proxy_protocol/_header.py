"""The decoded/encodable PROXY protocol header: :class:`ProxyHeader`.

A frozen, slotted, keyword-only dataclass that validates itself on construction (house style,
like h11's events). Decoding is hot (every connection through the simulated HAProxy and gateway,
and a real server's accept path), so the decoder does not go through ``__init__``: it checks
every byte, builds every field value, fills a layout-twin object and switches its ``__class__``
(see :class:`HeaderBuilder`). The decoder applies the same rules as ``__post_init__``, so
skipping it loses no validation, and a decoded header is complete: reading a field or a typed
view never raises and never does deferred work (except ``ssl``, parsed once and cached).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address

from ._tlv import (
    SSLInfo,
    aws_vpce_id,
    azure_link_id,
    check_value,
    duplicate_error,
    gcp_psc_connection_id,
    parse_ssl,
)
from ._types import (
    ADDRESS_BLOCK_SIZE,
    INET4_FAMILIES,
    ONCE_ONLY_TYPES,
    TLV,
    TLV_HEADER_SIZE,
    UNIX_FAMILIES,
    UNIX_PATH_SIZE,
    Command,
    Family,
    ProxyProtocolError,
    TLVType,
)

Address = IPv4Address | IPv6Address | str | None


def _err(name: str, message: str) -> ProxyProtocolError:
    return ProxyProtocolError(f"{name}: {message}", field=name)


def _check_port(name: str, port: object) -> None:
    if port.__class__ is not int or not 0 <= port <= 0xFFFF:
        raise _err(name, f"must be an int in 0..65535, got {port!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyHeader:
    """One PROXY protocol header, v1 or v2.

    Attributes:
        version: 1 (text line, §2.1) or 2 (binary, §2.2).
        command: :attr:`Command.PROXY` (relayed connection) or :attr:`Command.LOCAL` (the proxy's
            own connection, e.g. HAProxy's health checks, FACTS H4). v1 has no command field:
            v1 headers are always PROXY.
        family: the v2 family/transport byte; v1 knows TCP4, TCP6 and UNKNOWN (= UNSPEC).
        src_addr, dst_addr: ``IPv4Address``/``IPv6Address`` for inet families, a ``str`` path
            for UNIX families, ``None`` for UNSPEC and for every LOCAL header (§2.2: the
            receiver "must use the real connection endpoints").
        src_port, dst_port: ``int`` for inet families, else ``None``.
        tlvs: v2 TLVs in wire order, duplicates kept (always ``()`` for v1).

    Construction checks all of the above plus the TLV rules the decoder applies (4-byte
    CRC32C; UNIQUE_ID <= 128 bytes; AUTHORITY UTF-8, <= 255 bytes, no NUL/CR/LF; NETNS
    US-ASCII; a well-formed SSL TLV; at most one AUTHORITY, CRC32C, UNIQUE_ID, SSL and NETNS)
    and that a v2 header fits the 16-bit length field; a violation raises
    :class:`ProxyProtocolError` naming the field. For convenience an inet address may be given
    as text and a command/family as a plain int.
    """

    version: int
    command: Command
    family: Family
    src_addr: Address = None
    dst_addr: Address = None
    src_port: int | None = None
    dst_port: int | None = None
    tlvs: tuple[TLV, ...] = ()
    # The parsed SSL TLV, cached by the ``ssl`` property (None: not parsed yet, or no SSL TLV).
    _ssl_view: SSLInfo | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        setattr_ = object.__setattr__
        version = self.version
        if version.__class__ is not int or version not in (1, 2):
            raise _err("version", f"must be 1 or 2, got {version!r}")
        try:
            command = Command(self.command)
        except (ValueError, TypeError):
            raise _err(
                "command", f"must be a Command (LOCAL or PROXY), got {self.command!r}"
            ) from None
        try:
            family = Family(self.family)
        except (ValueError, TypeError):
            raise _err("family", f"must be a Family, got {self.family!r}") from None
        setattr_(self, "command", command)
        setattr_(self, "family", family)
        tlvs: object = self.tlvs
        if not isinstance(tlvs, tuple):
            if not isinstance(tlvs, Iterable):
                raise _err("tlvs", f"must be a tuple of TLV, got {type(tlvs).__name__}")
            tlvs = tuple(tlvs)
            setattr_(self, "tlvs", tlvs)
        self._check_addresses(command, family)
        if version == 1:
            if command is not Command.PROXY:
                raise _err(
                    "command",
                    "v1 has no LOCAL command; use family UNSPEC (PROXY UNKNOWN) instead",
                )
            if family not in (Family.TCP4, Family.TCP6, Family.UNSPEC):
                raise _err("family", f"v1 carries only TCP4, TCP6 or UNSPEC, not {family.name}")
            if tlvs:
                raise _err("tlvs", "v1 headers cannot carry TLVs")
            return
        total = ADDRESS_BLOCK_SIZE[family] if tlvs or command is Command.PROXY else 0
        seen: set[int] = set()
        for i, tlv in enumerate(tlvs):
            if not isinstance(tlv, TLV):
                raise _err("tlvs", f"item {i} must be a TLV, got {type(tlv).__name__}")
            type_ = tlv.type
            if type_ in ONCE_ONLY_TYPES:
                if type_ in seen:
                    raise duplicate_error(type_, i, None)
                seen.add(type_)
                check_value(type_, tlv.value, i, None)
            total += TLV_HEADER_SIZE + len(tlv.value)
        if total > 0xFFFF:
            raise _err("tlvs", f"address block + TLVs = {total} bytes, over the 65535 limit")

    def _check_addresses(self, command: Command, family: Family) -> None:
        setattr_ = object.__setattr__
        if command is Command.LOCAL or family is Family.UNSPEC:
            why = "LOCAL" if command is Command.LOCAL else "UNSPEC"
            for name in ("src_addr", "dst_addr", "src_port", "dst_port"):
                if getattr(self, name) is not None:
                    raise _err(name, f"must be None for a {why} header")
            return
        if family in UNIX_FAMILIES:
            for name in ("src_addr", "dst_addr"):
                path = getattr(self, name)
                if not isinstance(path, str):
                    raise _err(name, f"must be a str path for {family.name}, got {path!r}")
                if "\x00" in path:
                    raise _err(name, "a UNIX path cannot contain NUL")
                try:
                    size = len(path.encode("utf-8"))
                except UnicodeEncodeError:
                    raise _err(name, "a UNIX path must be encodable as UTF-8") from None
                if size > UNIX_PATH_SIZE:
                    raise _err(name, f"{size} bytes, over the {UNIX_PATH_SIZE}-byte limit")
            for name in ("src_port", "dst_port"):
                if getattr(self, name) is not None:
                    raise _err(name, f"must be None for {family.name}")
            return
        want = IPv4Address if family in INET4_FAMILIES else IPv6Address
        for name in ("src_addr", "dst_addr"):
            addr = getattr(self, name)
            if isinstance(addr, str):
                try:
                    addr = ip_address(addr)
                except ValueError:
                    raise _err(name, f"{addr!r} is not an IP address") from None
                setattr_(self, name, addr)
            if not isinstance(addr, want):
                raise _err(name, f"must be an {want.__name__} for {family.name}, got {addr!r}")
            if isinstance(addr, IPv6Address) and addr.scope_id is not None:
                raise _err(name, "an IPv6 zone id (%scope) cannot be carried by PROXY")
        _check_port("src_port", self.src_port)
        _check_port("dst_port", self.dst_port)

    @classmethod
    def local(cls, version: int = 2) -> ProxyHeader:
        """The header a proxy sends on its own connections (health checks, FACTS H4).

        v2: LOCAL command, UNSPEC family, no address (16 bytes on the wire). v1 has no LOCAL
        command, so ``version=1`` gives ``PROXY UNKNOWN``: command PROXY, family UNSPEC, which
        the spec (§2.1) also tells receivers to treat as "use the real connection endpoints".
        """
        if version == 1:
            return cls(version=1, command=Command.PROXY, family=Family.UNSPEC)
        return cls(version=version, command=Command.LOCAL, family=Family.UNSPEC)

    # -- typed TLV views ---------------------------------------------------------------------

    def get_tlv(self, type_: int) -> bytes | None:
        """The value of the first TLV of ``type_``, or ``None``."""
        for tlv in self.tlvs:
            if tlv.type == type_:
                return tlv.value
        return None

    @property
    def alpn(self) -> bytes | None:
        """PP2_TYPE_ALPN (§2.2.1): the negotiated protocol, e.g. ``b"h2"``."""
        return self.get_tlv(TLVType.ALPN)

    @property
    def noop(self) -> bytes | None:
        """PP2_TYPE_NOOP (§2.2.4): padding the receiver ignores; its bytes, for inspection."""
        return self.get_tlv(TLVType.NOOP)

    @property
    def authority(self) -> str | None:
        """PP2_TYPE_AUTHORITY (§2.2.2): the host name (TLS SNI); UTF-8, no NUL/CR/LF."""
        value = self.get_tlv(TLVType.AUTHORITY)
        return None if value is None else value.decode("utf-8")  # checked on construction

    @property
    def crc32c(self) -> int | None:
        """PP2_TYPE_CRC32C (§2.2.3) as an int; the decoder has verified it."""
        value = self.get_tlv(TLVType.CRC32C)
        return None if value is None else int.from_bytes(value, "big")

    @property
    def unique_id(self) -> bytes | None:
        """PP2_TYPE_UNIQUE_ID (§2.2.5): opaque connection id, at most 128 bytes."""
        return self.get_tlv(TLVType.UNIQUE_ID)

    @property
    def ssl(self) -> SSLInfo | None:
        """PP2_TYPE_SSL (§2.2.6) with its client/verify fields and sub-TLVs.

        Parsed on the first read and cached: the value was validated when the header was made.
        """
        view = self._ssl_view
        if view is None:
            value = self.get_tlv(TLVType.SSL)
            if value is None:
                return None
            view = parse_ssl(value)
            object.__setattr__(self, "_ssl_view", view)
        return view

    @property
    def netns(self) -> str | None:
        """PP2_TYPE_NETNS (§2.2.7): the network namespace name, US-ASCII."""
        value = self.get_tlv(TLVType.NETNS)
        return None if value is None else value.decode("ascii")  # checked on construction

    @property
    def aws_vpce_id(self) -> str | None:
        """AWS ``0xEA`` sub-type 0x01: the VPC endpoint id (e.g. ``"vpce-0123abcd"``)."""
        for tlv in self.tlvs:
            if tlv.type == TLVType.AWS:
                found = aws_vpce_id(tlv.value)
                if found is not None:
                    return found
        return None

    @property
    def azure_link_id(self) -> int | None:
        """Azure ``0xEE`` sub-type 0x01: the private endpoint LinkID (uint32 little-endian).

        ``None`` when no Azure TLV has that sub-type and 5 bytes (custom range: never an error).
        """
        for tlv in self.tlvs:
            if tlv.type == TLVType.AZURE:
                found = azure_link_id(tlv.value)
                if found is not None:
                    return found
        return None

    @property
    def gcp_psc_connection_id(self) -> int | None:
        """GCP ``0xE0``: the Private Service Connect connection id (uint64 big-endian).

        ``None`` when there is no ``0xE0`` TLV or it is not 8 bytes (custom range, §2.2.8).
        """
        value = self.get_tlv(TLVType.GCP)
        return None if value is None else gcp_psc_connection_id(value)


class HeaderBuilder:
    """Layout twin of :class:`ProxyHeader` (same ``__slots__``) for the decoder.

    The decoder makes one with ``HeaderBuilder()`` (it has no ``__init__``, so the call costs
    less than ``object.__new__``), sets the fields with plain attribute stores and then assigns
    ``__class__ = ProxyHeader``, which CPython allows between classes with identical slot
    layouts. Measured on the benchmark machine: about 0.2 us, against 0.45 us for nine
    slot-descriptor ``__set__`` calls and 2 us through the validating ``__init__``.
    """

    __slots__ = ProxyHeader.__slots__
    version: int
    command: Command
    family: Family
    src_addr: Address
    dst_addr: Address
    src_port: int | None
    dst_port: int | None
    tlvs: tuple[TLV, ...]
    _ssl_view: SSLInfo | None


if list(HeaderBuilder.__slots__) != list(ProxyHeader.__slots__):  # pragma: no cover
    raise RuntimeError("HeaderBuilder must mirror ProxyHeader.__slots__")
