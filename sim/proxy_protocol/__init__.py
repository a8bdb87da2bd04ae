"""A sans-I/O PROXY protocol v1/v2 codec (HAProxy's ``doc/proxy-protocol.txt``).

Bytes in, header out; header out, bytes in. Nothing here touches a socket, asyncio or SimPy:
a real server feeds what it reads to a :class:`Decoder` (or calls :func:`decode` on a buffer;
``None`` means "read more"), the simulated HAProxy calls :func:`encode` and the simulated
gateway :func:`decode` (FACTS H1, H3, H4, E1, E3). For asyncio servers,
:mod:`sim.proxy_protocol.asyncio` reads the header from a stream with per-peer trust policies;
it is the only module here that imports :mod:`asyncio`, and this package does not import it.

>>> from ipaddress import ip_address
>>> h = ProxyHeader(version=2, command=Command.PROXY, family=Family.TCP4,
...                 src_addr=ip_address("192.168.0.1"), dst_addr=ip_address("192.168.0.11"),
...                 src_port=56324, dst_port=443)
>>> wire = encode(h)
>>> len(wire)
28
>>> decode(wire + b"GET / HTTP/1.1\\r\\n") == (h, 28)
True
>>> decode(wire[:10]) is None
True

Reference: docs/reference/codec.md.
"""

from __future__ import annotations

from ._anatomy import AnatomyField, anatomy
from ._codec import DEFAULT_MAX_TLVS, DecodeLimits, decode, encode
from ._decoder import Decoder
from ._header import ProxyHeader
from ._tlv import (
    PP2_CLIENT_CERT_CONN,
    PP2_CLIENT_CERT_SESS,
    PP2_CLIENT_SSL,
    SSLInfo,
    aws_vpce_tlv,
    azure_link_id_tlv,
    gcp_psc_tlv,
    ssl_tlv,
)
from ._types import (
    TLV,
    V1_MAX_LINE,
    V2_MAX_HEADER,
    V2_SIGNATURE,
    Command,
    Family,
    ProxyProtocolError,
    TLVType,
)

__all__ = [
    "DEFAULT_MAX_TLVS",
    "PP2_CLIENT_CERT_CONN",
    "PP2_CLIENT_CERT_SESS",
    "PP2_CLIENT_SSL",
    "TLV",
    "V1_MAX_LINE",
    "V2_MAX_HEADER",
    "V2_SIGNATURE",
    "AnatomyField",
    "Command",
    "DecodeLimits",
    "Decoder",
    "Family",
    "ProxyHeader",
    "ProxyProtocolError",
    "SSLInfo",
    "TLVType",
    "anatomy",
    "aws_vpce_tlv",
    "azure_link_id_tlv",
    "decode",
    "encode",
    "gcp_psc_tlv",
    "ssl_tlv",
]
