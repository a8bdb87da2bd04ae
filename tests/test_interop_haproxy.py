"""Interoperability with a real HAProxy (2.6 on Debian) on loopback.

HAProxy encodes, our codec decodes (cases a, b, d); our codec encodes, HAProxy decodes (case c);
the how-to's asyncio server, run as written, behind a real HAProxy (case f).
Each test starts its own HAProxy with free ports and stops it by PID (tests/haproxy_harness.py).
Without HAProxy these tests skip, but with ``CI`` set they fail: CI must run them.

``SRCIP_RECORD_FIXTURES=1`` makes the TLS test (case b, IPv4) also write the exact header HAProxy
sent to ``notebooks/data/haproxy_send_proxy_v2.bin``; that committed file is checked below too.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import ssl
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import crc32c
import howto_example
import pytest
from haproxy_harness import (
    V2_LOCAL_HEADER,
    HAProxy,
    ProxyListener,
    Received,
    free_port,
    has_ipv6_loopback,
    hp,
    http_get,
    is_listening,
    make_self_signed_cert,
    relay_config,
    require_haproxy,
    running_haproxy,
)
from test_proxy_protocol_local import ACCEPTED as LOCAL_BODIES

from sim.proxy_protocol import (
    TLV,
    Command,
    Family,
    ProxyHeader,
    TLVType,
    decode,
    encode,
)

FIXTURE = Path(__file__).resolve().parents[1] / "notebooks" / "data" / "haproxy_send_proxy_v2.bin"
SNI = "srcip-lab.test"
TIMEOUT = 5.0

HOSTS = [
    "127.0.0.1",
    pytest.param(
        "::1", marks=pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback here")
    ),
]


@pytest.fixture(scope="module")
def haproxy_bin() -> str:
    return require_haproxy()


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_self_signed_cert(tmp_path_factory.mktemp("tls"))


def run(coro_fn: Callable[[], Any]) -> Any:
    """Run one scenario with an overall deadline."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coro_fn(), 30)

    return asyncio.run(bounded())


def ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(host)


async def client_roundtrip(
    host: str,
    port: int,
    first_bytes: bytes = b"",
    *,
    tls: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> tuple[tuple[Any, ...], bytes, ssl.SSLObject | None]:
    """Connect, send ``first_bytes + b"hello\\n"``, return (sockname, reply, ssl object)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=tls, server_hostname=server_hostname), TIMEOUT
    )
    try:
        sockname = writer.get_extra_info("sockname")
        writer.write(first_bytes + b"hello\n")
        await asyncio.wait_for(writer.drain(), TIMEOUT)
        try:
            reply = await asyncio.wait_for(reader.read(100), TIMEOUT)
        except ConnectionResetError:
            reply = b""  # HAProxy resets connections it refuses; callers assert on the reply
        return sockname, reply, writer.get_extra_info("ssl_object")
    finally:
        writer.close()


def assert_clean(rec: Received) -> ProxyHeader:
    assert rec.error is None, repr(rec.error)
    assert rec.result is not None and rec.result.header is not None
    assert rec.payload == b"hello\n"
    return rec.result.header


def crc_is_valid(raw: bytes) -> bool:
    """Check the CRC32C TLV independently of the codec (spec §2.2.5: CRC over the whole header
    with the checksum field zeroed)."""
    header, consumed = decode(raw) or (None, 0)
    assert header is not None and consumed == len(raw)
    offset = 16 + {Family.TCP4: 12, Family.TCP6: 36}[header.family]
    zeroed = bytearray(raw)
    while offset < len(raw):
        tlv_type, length = raw[offset], int.from_bytes(raw[offset + 1 : offset + 3], "big")
        if tlv_type == TLVType.CRC32C:
            wire = raw[offset + 3 : offset + 7]
            zeroed[offset + 3 : offset + 7] = bytes(4)
            return crc32c.crc32c(bytes(zeroed)).to_bytes(4, "big") == wire
        offset += 3 + length
    raise AssertionError("no CRC32C TLV in header")


def tlv_values(header: ProxyHeader, tlv_type: int) -> list[bytes]:
    return [t.value for t in header.tlvs if t.type == tlv_type]


# ------------------------------------------------ a. send-proxy (v1): addresses are the sockets'


@pytest.mark.interop
@pytest.mark.parametrize("host", HOSTS)
def test_a_send_proxy_v1_carries_the_client_socket(
    haproxy_bin: str, tmp_path: Path, host: str
) -> None:
    async def scenario() -> None:
        async with ProxyListener(host) as backend:
            fe_port = free_port(host)
            config = f"""
frontend fe
    bind {hp(host, fe_port)}
    default_backend be
backend be
    server s1 {hp(host, backend.port)} send-proxy
"""
            with running_haproxy(haproxy_bin, config, tmp_path, [(host, fe_port)]) as ha:
                sockname, reply, _ = await client_roundtrip(host, fe_port)
                rec = await backend.next()
                ha.wait_log(rf"ci={host} cp={sockname[1]} ")
        header = assert_clean(rec)
        assert reply == b"echo:hello\n"
        assert rec.result is not None and rec.result.raw.startswith(b"PROXY TCP")
        assert header.version == 1
        assert header.command is Command.PROXY
        assert header.family is (Family.TCP6 if ":" in host else Family.TCP4)
        assert (header.src_addr, header.src_port) == (ip(host), sockname[1])
        assert (header.dst_addr, header.dst_port) == (ip(host), fe_port)
        # The header really is the only thing that changed hands: HAProxy's own socket differs.
        assert rec.peer[1] != sockname[1]

    run(scenario)


@pytest.mark.interop
@pytest.mark.parametrize("option", ["send-proxy", "send-proxy-v2"])
def test_a_ipv4_client_on_a_v4v6_listener_is_ipv4_mapped(
    haproxy_bin: str, tmp_path: Path, option: str
) -> None:
    """A v4v6 listener sees an IPv4 client as ::ffff:a.b.c.d; HAProxy then sends TCP6, and in
    v1 it writes the RFC 4291 dotted-quad form, which a decoder must accept (HAProxy does)."""
    mapped = "::ffff:127.0.0.1"

    async def scenario() -> None:
        async with ProxyListener("127.0.0.1") as backend:
            fe_port = free_port("127.0.0.1")
            config = f"""
frontend fe
    bind {hp(mapped, fe_port)} v4v6
    default_backend be
backend be
    server s1 {hp("127.0.0.1", backend.port)} {option}
"""
            with running_haproxy(haproxy_bin, config, tmp_path, [(mapped, fe_port)]):
                sockname, reply, _ = await client_roundtrip("127.0.0.1", fe_port)
                rec = await backend.next()
        header = assert_clean(rec)
        assert reply == b"echo:hello\n"
        assert rec.result is not None
        if option == "send-proxy":
            assert rec.result.raw.startswith(f"PROXY TCP6 {mapped} {mapped} ".encode())
        assert header.family is Family.TCP6
        assert header.src_addr == ipaddress.IPv6Address(mapped)
        assert header.src_addr.ipv4_mapped == ipaddress.IPv4Address(sockname[0])
        assert (header.src_port, header.dst_port) == (sockname[1], fe_port)

    run(scenario)


# ------------------------------------------------ b. send-proxy-v2 + TLVs behind a TLS frontend


@pytest.mark.interop
@pytest.mark.parametrize("host", HOSTS)
def test_b_send_proxy_v2_tlvs_behind_tls(
    haproxy_bin: str, cert: Path, tmp_path: Path, host: str
) -> None:
    async def scenario() -> None:
        async with ProxyListener(host) as backend:
            fe_port = free_port(host)
            config = rf"""
frontend fe_tls
    bind {hp(host, fe_port)} ssl crt {cert} alpn h2,http/1.1
    unique-id-format %{{+X}}o\ %ci:%cp_%fi:%fp_%Ts_%rt
    default_backend be
backend be
    server s1 {hp(host, backend.port)} send-proxy-v2 proxy-v2-options crc32c,unique-id,ssl,authority
"""
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE  # throwaway self-signed certificate
            tls.set_alpn_protocols(["http/1.1"])
            with running_haproxy(haproxy_bin, config, tmp_path, [(host, fe_port)]):
                sockname, reply, ssl_obj = await client_roundtrip(
                    host, fe_port, tls=tls, server_hostname=SNI
                )
                rec = await backend.next()
        header = assert_clean(rec)
        assert rec.result is not None
        raw = rec.result.raw
        assert reply == b"echo:hello\n"
        assert ssl_obj is not None
        assert header.version == 2
        assert header.command is Command.PROXY
        assert header.family is (Family.TCP6 if ":" in host else Family.TCP4)
        assert (header.src_addr, header.src_port) == (ip(host), sockname[1])
        assert (header.dst_addr, header.dst_port) == (ip(host), fe_port)

        assert crc_is_valid(raw)
        assert header.crc32c is not None
        assert header.authority == SNI
        assert tlv_values(header, TLVType.AUTHORITY) == [SNI.encode()]
        assert tlv_values(header, TLVType.ALPN) == [b"http/1.1"]  # negotiated on the frontend
        # unique-id-format "%{+X}o %ci:%cp_%fi:%fp_...": client and frontend in hex (FACTS H2).
        (unique_id,) = tlv_values(header, TLVType.UNIQUE_ID)
        assert header.unique_id is not None
        client_hex = ip(host).packed.hex().upper()
        assert unique_id.decode().startswith(
            f"{client_hex}:{sockname[1]:X}_{client_hex}:{fe_port:X}_"
        )
        (ssl_tlv,) = tlv_values(header, TLVType.SSL)
        assert ssl_tlv[0] & 0x01  # PP2_CLIENT_SSL: the client connected over TLS
        assert int.from_bytes(ssl_tlv[1:5], "big") == 0  # verify: no client certificate
        assert header.ssl is not None
        version_tlv = bytes([TLVType.SSL_VERSION]) + len(ssl_obj.version() or "").to_bytes(2, "big")
        assert version_tlv + (ssl_obj.version() or "").encode() in ssl_tlv[5:]

        if host == "127.0.0.1" and os.environ.get("SRCIP_RECORD_FIXTURES") == "1":
            FIXTURE.parent.mkdir(parents=True, exist_ok=True)
            FIXTURE.write_bytes(raw)

    run(scenario)


def test_e_recorded_fixture_decodes() -> None:
    """The committed header a real HAProxy sent (recorded by case b) still decodes."""
    raw = FIXTURE.read_bytes()
    decoded = decode(raw)
    assert decoded is not None
    header, consumed = decoded
    assert consumed == len(raw)
    assert header.version == 2
    assert header.command is Command.PROXY
    assert header.family is Family.TCP4
    assert header.src_addr == header.dst_addr == ipaddress.IPv4Address("127.0.0.1")
    assert crc_is_valid(raw)
    assert header.authority == SNI
    assert header.unique_id is not None
    assert header.ssl is not None
    assert [t.type for t in header.tlvs] == [
        TLVType.CRC32C,
        TLVType.ALPN,
        TLVType.AUTHORITY,
        TLVType.UNIQUE_ID,
        TLVType.SSL,
    ]


# ------------------------------------------------ c. our headers into HAProxy's accept-proxy

CLIENT4 = ProxyHeader(
    version=1,
    command=Command.PROXY,
    family=Family.TCP4,
    src_addr=ipaddress.IPv4Address("192.0.2.10"),  # TEST-NET-1: only ever written, never dialled
    dst_addr=ipaddress.IPv4Address("198.51.100.1"),
    src_port=4242,
    dst_port=443,
)
CLIENT6 = ProxyHeader(
    version=1,
    command=Command.PROXY,
    family=Family.TCP6,
    src_addr=ipaddress.IPv6Address("2001:db8::7"),  # documentation prefix, never dialled
    dst_addr=ipaddress.IPv6Address("2001:db8::1"),
    src_port=65000,
    dst_port=8443,
)


def _v2(h: ProxyHeader, tlvs: tuple[TLV, ...] = ()) -> ProxyHeader:
    return ProxyHeader(
        version=2,
        command=h.command,
        family=h.family,
        src_addr=h.src_addr,
        dst_addr=h.dst_addr,
        src_port=h.src_port,
        dst_port=h.dst_port,
        tlvs=tlvs,
    )


OUR_HEADERS = {
    "v1-tcp4": (CLIENT4, encode(CLIENT4)),
    "v1-tcp6": (CLIENT6, encode(CLIENT6)),
    "v2-tcp4-tlvs-crc": (
        CLIENT4,
        encode(
            _v2(CLIENT4, (TLV(type=TLVType.AUTHORITY, value=b"api.example"), TLV(4, b"\0\0"))),
            crc32c=True,
        ),
    ),
    "v2-tcp6-crc": (CLIENT6, encode(_v2(CLIENT6), crc32c=True)),
}


@pytest.mark.interop
@pytest.mark.parametrize("name", sorted(OUR_HEADERS))
def test_c_haproxy_accepts_our_headers(haproxy_bin: str, tmp_path: Path, name: str) -> None:
    sent, raw = OUR_HEADERS[name]

    async def scenario() -> None:
        async with ProxyListener("127.0.0.1") as backend:
            fe_port = free_port("127.0.0.1")
            config = relay_config(fe_port, backend.port, "send-proxy-v2 proxy-v2-options authority")
            with running_haproxy(haproxy_bin, config, tmp_path, [("127.0.0.1", fe_port)]) as ha:
                _, reply, _ = await client_roundtrip("127.0.0.1", fe_port, raw)
                rec = await backend.next()
                # HAProxy's log shows the client we claimed, not the loopback socket (FACTS H6).
                ha.wait_log(
                    rf"fe=fe_in ci={sent.src_addr} cp={sent.src_port} "
                    rf"fi={sent.dst_addr} fp={sent.dst_port}"
                )
        forwarded = assert_clean(rec)
        assert reply == b"echo:hello\n"
        # Second hop: HAProxy forwards the addresses it accepted (FACTS H1) in its own v2 header.
        assert forwarded.version == 2
        assert forwarded.family is sent.family
        assert (forwarded.src_addr, forwarded.src_port) == (sent.src_addr, sent.src_port)
        assert (forwarded.dst_addr, forwarded.dst_port) == (sent.dst_addr, sent.dst_port)
        if name == "v2-tcp4-tlvs-crc":
            assert forwarded.authority == "api.example"  # our AUTHORITY TLV survived the hop

    run(scenario)


@pytest.mark.interop
def test_c_haproxy_rejects_a_corrupted_crc(haproxy_bin: str, tmp_path: Path) -> None:
    """The positive cases mean something only if HAProxy checks the CRC: flip one bit."""
    _, raw = OUR_HEADERS["v2-tcp6-crc"]
    bad = raw[:-1] + bytes([raw[-1] ^ 0x01])

    async def scenario() -> None:
        async with ProxyListener("127.0.0.1") as backend:
            fe_port = free_port("127.0.0.1")
            config = relay_config(fe_port, backend.port, "send-proxy-v2")
            with running_haproxy(haproxy_bin, config, tmp_path, [("127.0.0.1", fe_port)]):
                _, reply, _ = await client_roundtrip("127.0.0.1", fe_port, bad)
                assert reply == b""  # HAProxy closed (reset) the connection
                with pytest.raises(TimeoutError):
                    await backend.next(timeout_s=0.5)  # and never opened the second hop

    run(scenario)


@pytest.mark.interop
def test_c_haproxy_accepts_the_local_bodies_we_accept(haproxy_bin: str, tmp_path: Path) -> None:
    """Every LOCAL body tests/test_proxy_protocol_local.py decodes, HAProxy accepts too: it
    uses the real connection's addresses and forwards the payload (§2.2)."""

    async def scenario() -> list[tuple[str, bytes, Received]]:
        async with ProxyListener("127.0.0.1") as backend:
            fe_port = free_port("127.0.0.1")
            config = relay_config(fe_port, backend.port, "send-proxy-v2")
            out = []
            with running_haproxy(haproxy_bin, config, tmp_path, [("127.0.0.1", fe_port)]):
                for name, wire, _, _ in LOCAL_BODIES:
                    _, reply, _ = await client_roundtrip("127.0.0.1", fe_port, wire)
                    out.append((name, reply, await backend.next()))
        return out

    for name, reply, rec in run(scenario):
        assert reply == b"echo:hello\n", name
        header = assert_clean(rec)
        assert header.command is Command.PROXY  # HAProxy forwards the real client socket
        assert header.src_addr == ipaddress.IPv4Address("127.0.0.1"), name


# ------------------------------------------------ d. health checks send a v2 LOCAL header


@pytest.mark.interop
def test_d_health_check_sends_v2_local(haproxy_bin: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with ProxyListener("127.0.0.1") as backend:
            fe_port = free_port("127.0.0.1")
            config = relay_config(
                fe_port, backend.port, "send-proxy-v2 check inter 200ms", accept_proxy=False
            )
            with running_haproxy(haproxy_bin, config, tmp_path, [("127.0.0.1", fe_port)]):
                checks = [await backend.next(), await backend.next()]
        for rec in checks:
            assert rec.error is None, repr(rec.error)
            assert rec.result is not None and rec.result.header is not None
            assert rec.result.raw == V2_LOCAL_HEADER  # FACTS H4, byte for byte
            assert rec.payload == b""  # a TCP check sends nothing after the header ...
            assert rec.reset  # ... and HAProxy aborts the check connection with a RST
            header = rec.result.header
            assert header.command is Command.LOCAL
            assert header.family is Family.UNSPEC
            assert header.src_addr is None and header.dst_addr is None
            assert header.src_port is None and header.dst_port is None

    run(scenario)


# ------------------------------------------------ f. the how-to's server behind a real HAProxy


async def _connect_and_reset(port: int, data: bytes, source: str = "127.0.0.1") -> None:
    _, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), TIMEOUT
    )
    writer.write(data)
    await writer.drain()
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()  # SO_LINGER 0: the close is a TCP RST


@pytest.mark.interop
def test_f_howto_server_behind_haproxy_send_proxy_v2(
    haproxy_bin: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """docs/howto/asyncio-server.md, run as written (only the two ports are free ones here):
    HAProxy's send-proxy-v2 traffic gets the client address, direct callers the socket's, a
    forged header is refused, health checks and clients that reset are handled, and asyncio
    logs nothing unhandled."""
    namespace = howto_example.server_namespace()
    seen: list[tuple[Any, Any]] = []  # (peer, result) of every header read, for the asserts
    real_read = namespace["read_proxy_header"]

    async def recording_read(reader: asyncio.StreamReader, **kwargs: Any) -> Any:
        result = await real_read(reader, **kwargs)
        seen.append((kwargs["peer"], result))
        return result

    namespace["read_proxy_header"] = recording_read
    app_port, fe_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    config = (
        howto_example.haproxy_config()
        .replace("127.0.0.1:8080", f"127.0.0.1:{fe_port}")
        .replace("127.0.0.1:9000", f"127.0.0.1:{app_port}")
    )
    assert f"127.0.0.1:{app_port} send-proxy-v2 source 127.0.0.2 check" in config
    unhandled: list[dict[str, Any]] = []

    async def scenario() -> dict[str, bytes]:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: unhandled.append(ctx))
        server = asyncio.create_task(namespace["main"]("127.0.0.1", app_port))
        for _ in range(200):
            if is_listening("127.0.0.1", app_port):
                break
            await asyncio.sleep(0.01)
        replies: dict[str, bytes] = {}
        ha = HAProxy(haproxy_bin, config, tmp_path)
        try:
            ha.start([("127.0.0.1", fe_port)])
            replies["via haproxy"] = await http_get(fe_port)
            replies["direct"] = await http_get(app_port)
            replies["forged"] = await http_get(
                app_port, first=b"PROXY TCP4 203.0.113.9 127.0.0.1 1 9000\r\n"
            )
            for k in range(0, len(V2_LOCAL_HEADER) + 8, 3):  # resets mid-header and after
                await _connect_and_reset(fe_port, b"GET / HTTP/1.0\r\n"[:k])
                await _connect_and_reset(app_port, b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"[:k])
            # HAProxy's first check comes within `inter 2s`: a LOCAL header, then a reset.
            for _ in range(100):
                if any(r.header is not None and r.header.command is Command.LOCAL for _, r in seen):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
        finally:
            ha.stop()
            server.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await server
        return replies

    with caplog.at_level("WARNING"):
        replies = run(scenario)
    assert replies["via haproxy"].startswith(b"HTTP/1.0 200 OK\r\n")
    assert replies["via haproxy"].endswith(b"(from PROXY v2)\n")
    assert b"client 127.0.0.1 port " in replies["via haproxy"]
    assert b"client 127.0.0.1 port " in replies["direct"]
    assert replies["direct"].endswith(b"(from socket peer)\n")
    assert replies["forged"] == b""
    checks = [
        (peer, r) for peer, r in seen if r.header is not None and r.header.command is Command.LOCAL
    ]
    assert checks and all(peer[0] == "127.0.0.2" for peer, _ in checks)  # HAProxy's `source`
    assert unhandled == []
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    refused = {
        type(r.args[1]).__name__
        for r in caplog.records
        if r.name == "client_ip_server" and isinstance(r.args, tuple)
    }
    assert "UntrustedProxyHeader" in refused  # the forged header
    assert "ConnectionLost" in refused  # the resets mid-header


def test_skip_rule_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without HAProxy: skip locally, fail when CI is set."""
    import haproxy_harness

    monkeypatch.setattr(haproxy_harness, "find_haproxy", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        haproxy_harness.require_haproxy()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        haproxy_harness.require_haproxy()


def test_harness_sees_listening_sockets() -> None:
    """/proc-based readiness check (used instead of probe connections) really works."""
    import haproxy_harness

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert not haproxy_harness.is_listening("127.0.0.1", port)
        s.listen()
        assert haproxy_harness.is_listening("127.0.0.1", port)
