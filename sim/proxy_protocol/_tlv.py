"""TLV rules, typed views and builders (spec §2.2.1-§2.2.8).

Every rule that makes a TLV invalid is checked once, by :func:`check_value`, which both the
decoder (with the value's wire offset) and :class:`~sim.proxy_protocol.ProxyHeader` (offset
``None``) call. So once a header exists, decoded or built, reading a typed view never raises:

* CRC32C (§2.2.3) is 4 bytes; UNIQUE_ID (§2.2.5) at most 128 bytes;
* AUTHORITY (§2.2.2) is a host name: UTF-8, at most 255 bytes (HAProxy's limit), without NUL,
  CR or LF (the CVE-2024-23324 class: a NUL or CRLF that a later layer cuts or splits on);
* NETNS (§2.2.7) is US-ASCII;
* SSL (§2.2.6) has its 5 fixed bytes, sub-TLVs that tile its value exactly, at most one of each
  typed sub-TLV (VERSION, CN, CIPHER, SIG_ALG, KEY_ALG), US-ASCII text in them, UTF-8 in CN.
  The walk builds no objects; :func:`parse_ssl` builds the :class:`SSLInfo` view, which the
  header caches.

Vendor layouts live in the custom range 0xE0-0xEF, which the spec leaves to applications
(§2.2.8), so their content never makes a header invalid; their views return ``None`` when a
value does not have the vendor's layout (as pires/go-proxyproto's ``tlvparse`` does). As AWS,
Azure and Google document them and as Envoy, HAProxy and go-proxyproto read them:

* AWS ``0xEA``: 1-byte sub-type ``0x01`` (PP2_SUBTYPE_AWS_VPCE_ID) + the VPC endpoint id text.
* Azure ``0xEE``: 1-byte sub-type ``0x01`` (private endpoint LinkID) + uint32 little-endian.
* GCP ``0xE0``: the 8-byte Private Service Connect connection id, uint64 big-endian.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ._types import (
    AUTHORITY_MAX,
    SSL_FIXED_SIZE,
    TLV,
    TLV_HEADER_SIZE,
    UNIQUE_ID_MAX,
    ProxyProtocolError,
    TLVType,
    new_tlv,
    tlv_type_name,
)

# §2.2.6: bits of pp2_tlv_ssl.client.
PP2_CLIENT_SSL = 0x01
PP2_CLIENT_CERT_CONN = 0x02
PP2_CLIENT_CERT_SESS = 0x04
AWS_SUBTYPE_VPCE_ID = 0x01
AZURE_SUBTYPE_LINK_ID = 0x01
# §2.2.6: the typed SSL sub-TLVs and the text each carries; each may appear once.
SSL_TEXT_SUBTYPES = {0x21: "ascii", 0x22: "utf-8", 0x23: "ascii", 0x24: "ascii", 0x25: "ascii"}
# Bytes a host name never contains and that a later layer may cut at (NUL) or split on (CR, LF).
_AUTHORITY_FORBIDDEN = {0x00: "NUL", 0x0D: "CR", 0x0A: "LF"}


def _at(offset: int | None, delta: int) -> int | None:
    return None if offset is None else offset + delta


def _bad_text(
    what: str, value: bytes, encoding: str, offset: int | None, name: str
) -> ProxyProtocolError | None:
    """The error for ``value`` that is not ``encoding`` text, or ``None`` when it is."""
    try:
        value.decode(encoding)
    except UnicodeDecodeError as exc:
        label = "US-ASCII" if encoding == "ascii" else "UTF-8"
        return ProxyProtocolError(
            f"{what}: {name} is not {label} text (byte 0x{value[exc.start]:02x} at value byte "
            f"{exc.start})",
            offset=_at(offset, exc.start),
            field="tlvs",
        )
    return None


def check_value(type_: int, value: bytes, index: int, offset: int | None) -> None:
    """Reject a TLV value that breaks its type's rule; ``offset`` is the value's wire offset.

    Only registered types with a rule are looked at (CRC32C, AUTHORITY, UNIQUE_ID, SSL,
    NETNS); the caller checks sizes against its limits and duplicates across the TLV list.
    """
    length_at = _at(offset, -2)
    name = tlv_type_name(type_)
    if type_ == 0x03:  # §2.2.3
        if len(value) != 4:
            raise ProxyProtocolError(
                f"tlv[{index}].length: CRC32C value must be 4 bytes, got {len(value)}",
                offset=length_at,
                field="tlvs",
            )
    elif type_ == 0x05:  # §2.2.5
        if len(value) > UNIQUE_ID_MAX:
            raise ProxyProtocolError(
                f"tlv[{index}].length: UNIQUE_ID is at most {UNIQUE_ID_MAX} bytes (spec "
                f"§2.2.5), got {len(value)}",
                offset=length_at,
                field="tlvs",
            )
    elif type_ == 0x02:  # §2.2.2
        check_authority(value, index, offset)
    elif type_ == 0x20:  # §2.2.6
        check_ssl(value, index, offset)
    elif type_ == 0x30:  # §2.2.7
        error = _bad_text(f"tlv[{index}].value", value, "ascii", offset, name)
        if error is not None:
            raise error


def check_authority(value: bytes, index: int, offset: int | None) -> None:
    """§2.2.2: a host name, UTF-8, at most 255 bytes, no NUL/CR/LF."""
    if len(value) > AUTHORITY_MAX:
        raise ProxyProtocolError(
            f"tlv[{index}].length: AUTHORITY is at most {AUTHORITY_MAX} bytes (a host name; "
            f"HAProxy refuses longer), got {len(value)}",
            offset=_at(offset, -2),
            field="tlvs",
        )
    # Int membership: about 20 ns each, against 200 ns for a one-byte bytes needle.
    forbidden = 0x00 in value or 0x0D in value or 0x0A in value
    try:
        value.decode("utf-8")
        bad_utf8 = -1
    except UnicodeDecodeError as exc:
        bad_utf8 = exc.start
    if not forbidden and bad_utf8 < 0:
        return
    # Report whichever offending byte comes first in the value.
    first = min((i for i in map(value.find, (b"\x00", b"\r", b"\n")) if i >= 0), default=-1)
    if first >= 0 and (bad_utf8 < 0 or first < bad_utf8):
        byte = value[first]
        raise ProxyProtocolError(
            f"tlv[{index}].value: AUTHORITY contains {_AUTHORITY_FORBIDDEN[byte]} "
            f"(0x{byte:02x}) at value byte {first}, which no host name has",
            offset=_at(offset, first),
            field="tlvs",
        )
    raise ProxyProtocolError(
        f"tlv[{index}].value: AUTHORITY is not UTF-8 text (byte 0x{value[bad_utf8]:02x} at "
        f"value byte {bad_utf8})",
        offset=_at(offset, bad_utf8),
        field="tlvs",
    )


def check_ssl(value: bytes, index: int, offset: int | None) -> None:
    """§2.2.6: 5 fixed bytes, then sub-TLVs that tile the value; typed ones once, as text.

    Linear in the value's size and builds no objects (a hostile SSL TLV can hold 20,000
    sub-TLVs).
    """
    size = len(value)
    if size < SSL_FIXED_SIZE:
        raise ProxyProtocolError(
            f"tlv[{index}].value: SSL TLV needs 5 bytes (client + verify), got {size}",
            offset=offset,
            field="tlvs",
        )
    pos = SSL_FIXED_SIZE
    sub = 0
    seen: set[int] = set()
    while pos < size:
        where = f"tlv[{index}].ssl.sub_tlv[{sub}]"
        if pos + TLV_HEADER_SIZE > size:
            raise ProxyProtocolError(
                f"{where}: {size - pos} trailing byte(s) cannot hold a 3-byte TLV header",
                offset=_at(offset, pos),
                field="tlvs",
            )
        type_ = value[pos]
        vstart = pos + TLV_HEADER_SIZE
        vend = vstart + ((value[pos + 1] << 8) | value[pos + 2])
        if vend > size:
            raise ProxyProtocolError(
                f"{where}.length: {vend - vstart} overruns the SSL TLV by {vend - size} byte(s)",
                offset=_at(offset, pos + 1),
                field="tlvs",
            )
        encoding = SSL_TEXT_SUBTYPES.get(type_)
        if encoding is not None:
            name = tlv_type_name(type_)
            if type_ in seen:
                raise ProxyProtocolError(
                    f"{where}: a second {name} sub-TLV; it may appear once (receivers would "
                    "disagree on which one counts)",
                    offset=_at(offset, pos),
                    field="tlvs",
                )
            seen.add(type_)
            error = _bad_text(
                f"{where}.value", value[vstart:vend], encoding, _at(offset, vstart), name
            )
            if error is not None:
                raise error
        pos = vend
        sub += 1


def duplicate_error(type_: int, index: int, offset: int | None) -> ProxyProtocolError:
    """The error for a second TLV of a type that may appear once (ONCE_ONLY_TYPES)."""
    name = tlv_type_name(type_)
    why = (
        "the checksum would be ambiguous"
        if type_ == 0x03
        else "receivers would disagree on which one counts"
    )
    return ProxyProtocolError(
        f"tlv[{index}]: a second {name} TLV; {name} may appear only once ({why})",
        offset=offset,
        field="tlvs",
    )


@dataclass(frozen=True, slots=True)
class SSLInfo:
    """The PP2_TYPE_SSL TLV (§2.2.6): ``client`` bit field, ``verify`` result and sub-TLVs.

    ``verify`` is 0 when the client presented a certificate that was verified. The string
    sub-TLVs are exposed as properties (``None`` when absent). Construction checks the
    sub-TLVs' text (US-ASCII, UTF-8 for CN) and that each typed one appears once, so reading
    a property never raises.
    """

    client: int
    verify: int
    sub_tlvs: tuple[TLV, ...]

    def __post_init__(self) -> None:
        seen: set[int] = set()
        for i, t in enumerate(self.sub_tlvs):
            encoding = SSL_TEXT_SUBTYPES.get(t.type)
            if encoding is None:
                continue
            name = tlv_type_name(t.type)
            if t.type in seen:
                raise ProxyProtocolError(
                    f"sub_tlvs: a second {name} sub-TLV at index {i}", field="sub_tlvs"
                )
            seen.add(t.type)
            error = _bad_text(f"sub_tlvs[{i}]", t.value, encoding, None, name)
            if error is not None:
                raise ProxyProtocolError(str(error), field="sub_tlvs")

    @property
    def client_ssl(self) -> bool:
        """PP2_CLIENT_SSL: the client connected over SSL/TLS."""
        return bool(self.client & PP2_CLIENT_SSL)

    @property
    def client_cert_conn(self) -> bool:
        """PP2_CLIENT_CERT_CONN: a client certificate was presented on this connection."""
        return bool(self.client & PP2_CLIENT_CERT_CONN)

    @property
    def client_cert_sess(self) -> bool:
        """PP2_CLIENT_CERT_SESS: a client certificate was presented in this TLS session."""
        return bool(self.client & PP2_CLIENT_CERT_SESS)

    @property
    def verified(self) -> bool:
        """True when ``verify`` is 0 (certificate presented and verified)."""
        return self.verify == 0

    def _sub(self, type_: int) -> str | None:
        for t in self.sub_tlvs:
            if t.type == type_:
                return t.value.decode(SSL_TEXT_SUBTYPES[type_])  # checked on construction
        return None

    @property
    def version(self) -> str | None:
        """PP2_SUBTYPE_SSL_VERSION, e.g. ``"TLSv1.3"`` (US-ASCII)."""
        return self._sub(TLVType.SSL_VERSION)

    @property
    def cn(self) -> str | None:
        """PP2_SUBTYPE_SSL_CN: the client certificate's Common Name (UTF-8)."""
        return self._sub(TLVType.SSL_CN)

    @property
    def cipher(self) -> str | None:
        """PP2_SUBTYPE_SSL_CIPHER, e.g. ``"ECDHE-RSA-AES128-GCM-SHA256"``."""
        return self._sub(TLVType.SSL_CIPHER)

    @property
    def sig_alg(self) -> str | None:
        """PP2_SUBTYPE_SSL_SIG_ALG, e.g. ``"RSA-SHA256"``."""
        return self._sub(TLVType.SSL_SIG_ALG)

    @property
    def key_alg(self) -> str | None:
        """PP2_SUBTYPE_SSL_KEY_ALG, e.g. ``"RSA2048"``."""
        return self._sub(TLVType.SSL_KEY_ALG)


def parse_ssl(value: bytes) -> SSLInfo:
    """Build the view of a PP2_TYPE_SSL value (raises our error if it breaks §2.2.6)."""
    check_ssl(value, 0, None)
    subs: list[TLV] = []
    pos, size = SSL_FIXED_SIZE, len(value)
    while pos < size:
        vend = pos + TLV_HEADER_SIZE + ((value[pos + 1] << 8) | value[pos + 2])
        subs.append(new_tlv(value[pos], value[pos + TLV_HEADER_SIZE : vend]))
        pos = vend
    return SSLInfo(client=value[0], verify=int.from_bytes(value[1:5], "big"), sub_tlvs=tuple(subs))


def ssl_tlv(
    *,
    client: int = PP2_CLIENT_SSL,
    verify: int = 0,
    version: str | None = None,
    cn: str | None = None,
    cipher: str | None = None,
    sig_alg: str | None = None,
    key_alg: str | None = None,
    extra: Iterable[TLV] = (),
) -> TLV:
    """Build a PP2_TYPE_SSL TLV (§2.2.6) with the given fields and sub-TLVs, in that order."""
    if not 0 <= client <= 0xFF:
        raise ProxyProtocolError(f"client: must fit one byte, got {client}", field="client")
    if not 0 <= verify <= 0xFFFFFFFF:
        raise ProxyProtocolError(f"verify: must fit 32 bits, got {verify}", field="verify")
    subs: list[TLV] = []
    for type_, text, encoding in (
        (TLVType.SSL_VERSION, version, "ascii"),
        (TLVType.SSL_CN, cn, "utf-8"),
        (TLVType.SSL_CIPHER, cipher, "ascii"),
        (TLVType.SSL_SIG_ALG, sig_alg, "ascii"),
        (TLVType.SSL_KEY_ALG, key_alg, "ascii"),
    ):
        if text is not None:
            try:
                subs.append(TLV(type_, text.encode(encoding)))
            except UnicodeEncodeError:
                raise ProxyProtocolError(
                    f"{type_.name.lower()}: must be {encoding} text", field=type_.name.lower()
                ) from None
    subs.extend(extra)
    body = b"".join(bytes((t.type,)) + len(t.value).to_bytes(2, "big") + t.value for t in subs)
    return TLV(TLVType.SSL, bytes((client,)) + verify.to_bytes(4, "big") + body)


def aws_vpce_id(value: bytes) -> str | None:
    """The VPC endpoint id of an AWS TLV; ``None`` for another sub-type or non-ASCII text."""
    if not value or value[0] != AWS_SUBTYPE_VPCE_ID:
        return None
    try:
        return value[1:].decode("ascii")
    except UnicodeDecodeError:
        return None


def aws_vpce_tlv(vpce_id: str) -> TLV:
    """Build the AWS ``0xEA`` TLV carrying a VPC endpoint id (e.g. ``"vpce-0123abcd"``)."""
    try:
        raw = vpce_id.encode("ascii")
    except UnicodeEncodeError:
        raise ProxyProtocolError("vpce_id: must be ASCII", field="vpce_id") from None
    return TLV(TLVType.AWS, bytes((AWS_SUBTYPE_VPCE_ID,)) + raw)


def azure_link_id(value: bytes) -> int | None:
    """The LinkID of an Azure TLV; ``None`` for another sub-type or a value not 5 bytes long."""
    if len(value) != 5 or value[0] != AZURE_SUBTYPE_LINK_ID:
        return None
    return int.from_bytes(value[1:5], "little")


def azure_link_id_tlv(link_id: int) -> TLV:
    """Build the Azure ``0xEE`` TLV carrying a private endpoint LinkID (uint32 little-endian)."""
    if not 0 <= link_id <= 0xFFFFFFFF:
        raise ProxyProtocolError(f"link_id: must fit 32 bits, got {link_id}", field="link_id")
    return TLV(TLVType.AZURE, bytes((AZURE_SUBTYPE_LINK_ID,)) + link_id.to_bytes(4, "little"))


def gcp_psc_connection_id(value: bytes) -> int | None:
    """The PSC connection id of a GCP TLV (uint64 big-endian); ``None`` unless 8 bytes."""
    if len(value) != 8:
        return None
    return int.from_bytes(value, "big")


def gcp_psc_tlv(connection_id: int) -> TLV:
    """Build the GCP ``0xE0`` TLV carrying a PSC connection id (uint64 big-endian)."""
    if not 0 <= connection_id <= 0xFFFFFFFFFFFFFFFF:
        raise ProxyProtocolError(
            f"connection_id: must fit 64 bits, got {connection_id}", field="connection_id"
        )
    return TLV(TLVType.GCP, connection_id.to_bytes(8, "big"))
