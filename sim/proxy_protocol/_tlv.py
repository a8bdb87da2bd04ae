"""Typed views and builders for the TLVs the codec understands (spec §2.2.1-§2.2.8).

The decoder keeps every TLV as raw bytes in wire order; these helpers interpret a value on
demand. Structural rules that make a header invalid (a CRC32C that is not 4 bytes, an SSL TLV
whose sub-TLVs overrun it, a UNIQUE_ID over 128 bytes) are checked by :func:`check_tlv`, which
both the decoder and :class:`~sim.proxy_protocol.ProxyHeader` call; looser content rules (the
text encodings, vendor sub-types) are checked when a view is read.

Vendor layouts (custom range 0xE0-0xEF, §2.2.8), as AWS, Azure and Google document them and as
Envoy, HAProxy and pires/go-proxyproto's ``tlvparse`` read them:

* AWS ``0xEA``: 1-byte sub-type ``0x01`` (PP2_SUBTYPE_AWS_VPCE_ID) + the VPC endpoint id text.
* Azure ``0xEE``: 1-byte sub-type ``0x01`` (private endpoint LinkID) + uint32 little-endian.
* GCP ``0xE0``: the 8-byte Private Service Connect connection id, uint64 big-endian.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ._types import (
    SSL_FIXED_SIZE,
    TLV,
    TLV_HEADER_SIZE,
    UNIQUE_ID_MAX,
    ProxyProtocolError,
    TLVType,
    new_tlv,
)

# §2.2.6: bits of pp2_tlv_ssl.client.
PP2_CLIENT_SSL = 0x01
PP2_CLIENT_CERT_CONN = 0x02
PP2_CLIENT_CERT_SESS = 0x04
AWS_SUBTYPE_VPCE_ID = 0x01
AZURE_SUBTYPE_LINK_ID = 0x01


def parse_sub_tlvs(
    data: bytes, start: int, end: int, offset: int | None, field: str
) -> tuple[TLV, ...]:
    """Split ``data[start:end]`` into TLVs; ``offset`` is the wire offset of ``data[0]``.

    Raises :class:`ProxyProtocolError` when a TLV header or value runs past ``end``.
    """
    out: list[TLV] = []
    pos = start
    while pos < end:
        if pos + TLV_HEADER_SIZE > end:
            raise ProxyProtocolError(
                f"{field}[{len(out)}]: {end - pos} trailing byte(s) cannot hold a 3-byte TLV "
                "header",
                offset=None if offset is None else offset + pos,
                field=field,
            )
        length = (data[pos + 1] << 8) | data[pos + 2]
        vend = pos + TLV_HEADER_SIZE + length
        if vend > end:
            raise ProxyProtocolError(
                f"{field}[{len(out)}].length: {length} overruns the enclosing block by "
                f"{vend - end} byte(s)",
                offset=None if offset is None else offset + pos + 1,
                field=field,
            )
        out.append(new_tlv(data[pos], data[pos + TLV_HEADER_SIZE : vend]))
        pos = vend
    return tuple(out)


def check_tlv(type_: int, value: bytes, index: int, offset: int | None) -> None:
    """Reject TLVs whose structure the spec fixes; ``offset`` is the value's wire offset."""
    if type_ == TLVType.CRC32C:
        if len(value) != 4:
            raise ProxyProtocolError(
                f"tlv[{index}].length: CRC32C value must be 4 bytes, got {len(value)}",
                offset=None if offset is None else offset - 2,
                field="tlvs",
            )
    elif type_ == TLVType.UNIQUE_ID:
        if len(value) > UNIQUE_ID_MAX:
            raise ProxyProtocolError(
                f"tlv[{index}].length: UNIQUE_ID is at most {UNIQUE_ID_MAX} bytes (spec "
                f"§2.2.5), got {len(value)}",
                offset=None if offset is None else offset - 2,
                field="tlvs",
            )
    elif type_ == TLVType.SSL:
        if len(value) < SSL_FIXED_SIZE:
            raise ProxyProtocolError(
                f"tlv[{index}].value: SSL TLV needs 5 bytes (client + verify), got {len(value)}",
                offset=offset,
                field="tlvs",
            )
        parse_sub_tlvs(value, SSL_FIXED_SIZE, len(value), offset, f"tlv[{index}].ssl.sub_tlv")


def _text(value: bytes, what: str, encoding: str) -> str:
    try:
        return value.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ProxyProtocolError(
            f"{what}: not valid {encoding} text at value byte {exc.start}", field=what
        ) from None


@dataclass(frozen=True, slots=True)
class SSLInfo:
    """The PP2_TYPE_SSL TLV (§2.2.6): ``client`` bit field, ``verify`` result and sub-TLVs.

    ``verify`` is 0 when the client presented a certificate that was verified. The string
    sub-TLVs are exposed as properties (``None`` when absent).
    """

    client: int
    verify: int
    sub_tlvs: tuple[TLV, ...]

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

    def _sub(self, type_: int, encoding: str, name: str) -> str | None:
        for t in self.sub_tlvs:
            if t.type == type_:
                return _text(t.value, f"ssl.{name}", encoding)
        return None

    @property
    def version(self) -> str | None:
        """PP2_SUBTYPE_SSL_VERSION, e.g. ``"TLSv1.3"`` (US-ASCII)."""
        return self._sub(TLVType.SSL_VERSION, "ascii", "version")

    @property
    def cn(self) -> str | None:
        """PP2_SUBTYPE_SSL_CN: the client certificate's Common Name (UTF-8)."""
        return self._sub(TLVType.SSL_CN, "utf-8", "cn")

    @property
    def cipher(self) -> str | None:
        """PP2_SUBTYPE_SSL_CIPHER, e.g. ``"ECDHE-RSA-AES128-GCM-SHA256"``."""
        return self._sub(TLVType.SSL_CIPHER, "ascii", "cipher")

    @property
    def sig_alg(self) -> str | None:
        """PP2_SUBTYPE_SSL_SIG_ALG, e.g. ``"RSA-SHA256"``."""
        return self._sub(TLVType.SSL_SIG_ALG, "ascii", "sig_alg")

    @property
    def key_alg(self) -> str | None:
        """PP2_SUBTYPE_SSL_KEY_ALG, e.g. ``"RSA2048"``."""
        return self._sub(TLVType.SSL_KEY_ALG, "ascii", "key_alg")


def parse_ssl(value: bytes) -> SSLInfo:
    """Interpret the value of a PP2_TYPE_SSL TLV."""
    if len(value) < SSL_FIXED_SIZE:
        raise ProxyProtocolError(
            f"ssl: value needs 5 bytes (client + verify), got {len(value)}", field="ssl"
        )
    subs = parse_sub_tlvs(value, SSL_FIXED_SIZE, len(value), None, "ssl.sub_tlv")
    return SSLInfo(client=value[0], verify=int.from_bytes(value[1:5], "big"), sub_tlvs=subs)


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
    """The VPC endpoint id of an AWS TLV, or ``None`` when it carries another sub-type."""
    if not value or value[0] != AWS_SUBTYPE_VPCE_ID:
        return None
    return _text(value[1:], "aws_vpce_id", "ascii")


def aws_vpce_tlv(vpce_id: str) -> TLV:
    """Build the AWS ``0xEA`` TLV carrying a VPC endpoint id (e.g. ``"vpce-0123abcd"``)."""
    try:
        raw = vpce_id.encode("ascii")
    except UnicodeEncodeError:
        raise ProxyProtocolError("vpce_id: must be ASCII", field="vpce_id") from None
    return TLV(TLVType.AWS, bytes((AWS_SUBTYPE_VPCE_ID,)) + raw)


def azure_link_id(value: bytes) -> int | None:
    """The private endpoint LinkID of an Azure TLV, or ``None`` for another sub-type."""
    if not value or value[0] != AZURE_SUBTYPE_LINK_ID:
        return None
    if len(value) != 5:
        raise ProxyProtocolError(
            f"azure_link_id: expected sub-type + 4 bytes, got {len(value)} bytes",
            field="azure_link_id",
        )
    return int.from_bytes(value[1:5], "little")


def azure_link_id_tlv(link_id: int) -> TLV:
    """Build the Azure ``0xEE`` TLV carrying a private endpoint LinkID (uint32 little-endian)."""
    if not 0 <= link_id <= 0xFFFFFFFF:
        raise ProxyProtocolError(f"link_id: must fit 32 bits, got {link_id}", field="link_id")
    return TLV(TLVType.AZURE, bytes((AZURE_SUBTYPE_LINK_ID,)) + link_id.to_bytes(4, "little"))


def gcp_psc_connection_id(value: bytes) -> int:
    """The Private Service Connect connection id of a GCP TLV (uint64 big-endian)."""
    if len(value) != 8:
        raise ProxyProtocolError(
            f"gcp_psc_connection_id: expected 8 bytes, got {len(value)}",
            field="gcp_psc_connection_id",
        )
    return int.from_bytes(value, "big")


def gcp_psc_tlv(connection_id: int) -> TLV:
    """Build the GCP ``0xE0`` TLV carrying a PSC connection id (uint64 big-endian)."""
    if not 0 <= connection_id <= 0xFFFFFFFFFFFFFFFF:
        raise ProxyProtocolError(
            f"connection_id: must fit 64 bits, got {connection_id}", field="connection_id"
        )
    return TLV(TLVType.GCP, connection_id.to_bytes(8, "big"))
