"""Tests for sim.proxy_protocol.asyncio: real loopback sockets, every wait bounded.

The trust policies (who may send a header) are in test_proxy_protocol_asyncio_policy.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import howto_example
import pytest
from haproxy_harness import http_get

from sim.proxy_protocol import TLV, Command, Family, ProxyHeader, ProxyProtocolError, encode
from sim.proxy_protocol.asyncio import (
    ConnectionLost,
    MalformedProxyHeader,
    MissingProxyHeader,
    PeerPolicy,
    Policy,
    ProxyHeaderError,
    ProxyHeaderResult,
    ProxyHeaderTimeout,
    ProxyHeaderTooLarge,
    read_proxy_header,
)


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


HOSTS = [
    "127.0.0.1",
    pytest.param(
        "::1",
        marks=pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here"),
    ),
]

V1_TCP4 = ProxyHeader(
    version=1,
    command=Command.PROXY,
    family=Family.TCP4,
    src_addr=ipaddress.IPv4Address("192.0.2.10"),
    dst_addr=ipaddress.IPv4Address("198.51.100.1"),
    src_port=4242,
    dst_port=443,
)
V1_TCP6 = ProxyHeader(
    version=1,
    command=Command.PROXY,
    family=Family.TCP6,
    src_addr=ipaddress.IPv6Address("2001:db8::7"),
    dst_addr=ipaddress.IPv6Address("2001:db8::1"),
    src_port=65535,
    dst_port=8443,
)
V2_TCP4_TLVS = ProxyHeader(
    version=2,
    command=Command.PROXY,
    family=Family.TCP4,
    src_addr=ipaddress.IPv4Address("192.0.2.10"),
    dst_addr=ipaddress.IPv4Address("198.51.100.1"),
    src_port=4242,
    dst_port=443,
    tlvs=(TLV(type=0x02, value=b"srcip-lab.test"), TLV(type=0x05, value=b"req-1")),
)
V2_TCP6 = ProxyHeader(
    version=2,
    command=Command.PROXY,
    family=Family.TCP6,
    src_addr=ipaddress.IPv6Address("2001:db8::7"),
    dst_addr=ipaddress.IPv6Address("2001:db8::1"),
    src_port=1,
    dst_port=443,
)
HEADERS = {
    "v1-tcp4": encode(V1_TCP4),
    "v1-tcp6": encode(V1_TCP6),
    "v1-unknown": encode(ProxyHeader.local(version=1)),
    "v2-tcp4-tlvs-crc": encode(V2_TCP4_TLVS, crc32c=True),
    "v2-tcp6": encode(V2_TCP6),
    "v2-local": encode(ProxyHeader.local(version=2)),
}
#: A payload that itself looks like PROXY headers: reading one byte too many would show.
PAYLOAD = HEADERS["v2-tcp6"] + HEADERS["v1-tcp4"] + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
TIMEOUT = 5.0


@dataclass
class Outcome:
    """What the server side saw on one connection."""

    result: ProxyHeaderResult | None
    error: BaseException | None
    rest: bytes
    elapsed_s: float


@contextlib.asynccontextmanager
async def server(host: str, **kwargs: Any) -> AsyncIterator[tuple[int, asyncio.Queue[Outcome]]]:
    """A loopback server that runs read_proxy_header(**kwargs), then reads the rest to EOF.

    When a connection had no header but was allowed, it answers ``got:<leftover>`` at once, so
    a client can prove the sniffing did not wait for more bytes than it sent.
    """
    outcomes: asyncio.Queue[Outcome] = asyncio.Queue()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        start = time.monotonic()
        result: ProxyHeaderResult | None = None
        error: BaseException | None = None
        rest = b""
        try:
            result = await read_proxy_header(
                reader, peer=writer.get_extra_info("peername"), **kwargs
            )
            if result.header is None:
                writer.write(b"got:" + result.leftover)
                await writer.drain()
            rest = await asyncio.wait_for(reader.read(), TIMEOUT)
        except Exception as exc:
            error = exc
        finally:
            outcomes.put_nowait(Outcome(result, error, rest, time.monotonic() - start))
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), TIMEOUT)

    srv = await asyncio.start_server(handle, host, 0)
    try:
        yield srv.sockets[0].getsockname()[1], outcomes
    finally:
        srv.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(srv.wait_closed(), TIMEOUT)


async def send(
    host: str, port: int, chunks: list[bytes], delay_s: float = 0.0, eof: bool = True
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small writes stay small
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            if delay_s:
                await asyncio.sleep(delay_s)
        if eof:
            writer.write_eof()
    except ConnectionError:
        pass  # the server gave up on us (timeout, error): that is what some tests check
    return reader, writer


def run(coro_fn: Callable[[], Any]) -> Any:
    """Run one test coroutine with an overall deadline."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coro_fn(), 20)

    return asyncio.run(bounded())


async def exchange(
    host: str,
    chunks: list[bytes],
    *,
    delay_s: float = 0.0,
    eof: bool = True,
    **kwargs: Any,
) -> Outcome:
    kwargs.setdefault("timeout_s", TIMEOUT)
    kwargs.setdefault("policy", Policy.REQUIRE)
    async with server(host, **kwargs) as (port, outcomes):
        _, writer = await send(host, port, chunks, delay_s, eof)
        try:
            return await asyncio.wait_for(outcomes.get(), TIMEOUT + 2)
        finally:
            writer.close()


# ---------------------------------------------------------------- header present


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("name", sorted(HEADERS))
def test_header_exact_and_payload_untouched(host: str, name: str) -> None:
    raw = HEADERS[name]
    out = run(lambda: exchange(host, [raw + PAYLOAD]))
    assert out.error is None, out.error
    assert out.result is not None
    assert out.result.raw == raw
    assert out.result.leftover == b""
    assert out.result.header is not None
    assert encode(out.result.header, crc32c=name.endswith("crc")) == raw
    assert out.rest == PAYLOAD


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("name", ["v1-tcp6", "v2-tcp4-tlvs-crc"])
def test_header_split_across_many_small_writes(host: str, name: str) -> None:
    raw = HEADERS[name]
    chunks = [raw[i : i + 3] for i in range(0, len(raw), 3)] + [PAYLOAD]
    out = run(lambda: exchange(host, chunks, delay_s=0.005))
    assert out.error is None, out.error
    assert out.result is not None
    assert out.result.raw == raw
    assert out.rest == PAYLOAD
    assert out.elapsed_s >= 0.005 * (len(chunks) - 2)  # it really waited for the pieces


def test_local_header_has_no_addresses() -> None:
    out = run(lambda: exchange("127.0.0.1", [HEADERS["v2-local"] + b"x"]))
    assert out.result is not None and out.result.header is not None
    assert out.result.header.command is Command.LOCAL
    assert out.result.header.src_addr is None
    assert out.rest == b"x"


@pytest.mark.parametrize("name", sorted(HEADERS))
def test_one_byte_at_a_time_never_reads_past_the_header(name: str) -> None:
    raw = HEADERS[name]

    async def scenario() -> tuple[ProxyHeaderResult, bytes]:
        reader = asyncio.StreamReader()

        async def feed() -> None:
            for i in range(len(raw)):
                reader.feed_data(raw[i : i + 1])
                await asyncio.sleep(0)
            reader.feed_data(PAYLOAD)
            reader.feed_eof()

        feeder = asyncio.create_task(feed())
        result = await read_proxy_header(
            reader, peer=None, policy=Policy.REQUIRE, timeout_s=TIMEOUT
        )
        await feeder
        return result, await reader.read()

    result, rest = run(scenario)
    assert result.raw == raw
    assert rest == PAYLOAD


# ---------------------------------------------------------------- slow, stalled, broken


@pytest.mark.parametrize("host", HOSTS)
def test_stalled_header_times_out(host: str) -> None:
    half = HEADERS["v2-tcp4-tlvs-crc"][:20]
    out = run(lambda: exchange(host, [half], eof=False, timeout_s=0.3))
    assert isinstance(out.error, ProxyHeaderTimeout)
    assert isinstance(out.error, ProxyHeaderError) and isinstance(out.error, ProxyProtocolError)
    assert out.error.received == 20
    assert "timeout_s=0.3" in str(out.error)
    assert 0.25 <= out.elapsed_s < 2.0


def test_timeout_covers_the_whole_header_not_each_read() -> None:
    # Each piece arrives well within 0.3 s of the previous one, but the whole takes ~0.6 s.
    raw = HEADERS["v1-tcp4"]
    chunks = [raw[i : i + 4] for i in range(0, len(raw), 4)]
    out = run(lambda: exchange("127.0.0.1", chunks, delay_s=0.05, eof=False, timeout_s=0.3))
    assert isinstance(out.error, ProxyHeaderTimeout)
    assert out.elapsed_s < 1.5


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b"\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c" + bytes(12), 12),  # version 3
        (b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x04" + bytes(4), None),  # address block short
        (b"PROXY TCP4 300.1.2.3 1.2.3.4 1 2\r\n", None),
        (b"PROXY SCTP 1.2.3.4 1.2.3.4 1 2\r\n", None),
        (b"PROXY " + b"1" * 200, None),  # no CRLF within 107 bytes
    ],
)
def test_garbage_after_a_signature_is_malformed(data: bytes, offset: int | None) -> None:
    out = run(lambda: exchange("127.0.0.1", [data]))
    assert isinstance(out.error, MalformedProxyHeader)
    if offset is not None:
        assert out.error.offset == offset


def test_oversized_v2_header_refused_before_reading_its_body() -> None:
    prefix = b"\r\n\r\n\x00\r\nQUIT\n\x21\x11" + (5000).to_bytes(2, "big")
    # Only the prefix is sent: the error must come from the length field, not from a timeout.
    out = run(lambda: exchange("127.0.0.1", [prefix], eof=False, timeout_s=2.0))
    assert isinstance(out.error, ProxyHeaderTooLarge)
    assert out.error.offset == 14
    assert "max_header_bytes=4096" in str(out.error)
    ok = run(lambda: exchange("127.0.0.1", [prefix + bytes(5000)], max_header_bytes=8000))
    assert isinstance(ok.error, MalformedProxyHeader)  # 5000 zero bytes: not valid TCP4 TLVs
    assert "max_header_bytes" not in str(ok.error)


def test_peer_closes_mid_header() -> None:
    raw = HEADERS["v1-tcp4"][:-5]
    out = run(lambda: exchange("127.0.0.1", [raw]))
    assert isinstance(out.error, ConnectionLost) and not out.error.reset
    assert out.error.offset == out.error.received == len(raw)
    assert "closed" in str(out.error)


# ---------------------------------------------------------------- missing header


@pytest.mark.parametrize(
    ("data", "offset"),
    [(b"GET / HTTP/1.1\r\n\r\n", 0), (b"PROXZ", 4), (b"\r\n\r\nX", 4), (b"\x16\x03\x01", 0)],
)
def test_missing_header_refused_under_require(data: bytes, offset: int) -> None:
    out = run(lambda: exchange("127.0.0.1", [data]))
    assert isinstance(out.error, MissingProxyHeader)
    assert isinstance(out.error, ProxyProtocolError)
    assert out.error.offset == offset
    assert out.error.field == "signature"
    assert "policy REQUIRE" in str(out.error)


def test_peer_closing_without_a_byte_is_a_lost_connection_under_require() -> None:
    out = run(lambda: exchange("127.0.0.1", []))
    assert isinstance(out.error, ConnectionLost)
    assert out.error.received == 0


def test_short_payload_without_header_is_not_stalled() -> None:
    # A direct caller sends 2 bytes and waits for an answer: sniffing must not wait for more.
    async def scenario() -> bytes:
        async with server(
            "127.0.0.1",
            timeout_s=TIMEOUT,
            policy=PeerPolicy([(["127.0.0.0/8"], Policy.REJECT)]),
        ) as (port, _):
            reader, writer = await send("127.0.0.1", port, [b"P\n"], eof=False)
            try:
                return await asyncio.wait_for(reader.read(100), 1.0)
            finally:
                writer.close()

    assert run(scenario) == b"got:P\n"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"timeout_s": 0}, ValueError, "timeout_s"),
        ({"timeout_s": -1.0}, ValueError, "timeout_s"),
        ({"timeout_s": True}, ValueError, "timeout_s"),
        ({"timeout_s": 1.0, "policy": "allow-trusted"}, TypeError, "policy"),
        ({"timeout_s": 1.0, "max_header_bytes": 100}, ValueError, "max_header_bytes"),
        ({"timeout_s": 1.0, "max_header_bytes": 70000}, ValueError, "max_header_bytes"),
        ({"timeout_s": 1.0, "limits": {"max_tlvs": 3}}, TypeError, "limits"),
    ],
)
def test_bad_arguments_rejected_before_reading(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    async def scenario() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(HEADERS["v1-tcp4"])
        kwargs.setdefault("policy", Policy.REQUIRE)
        with pytest.raises(error, match=message):
            await read_proxy_header(reader, peer=None, **kwargs)
        assert await reader.read(len(HEADERS["v1-tcp4"])) == HEADERS["v1-tcp4"]

    run(scenario)


# ---------------------------------------------------------------- the how-to's example server

#: The how-to's POLICY: HAProxy connects from 127.0.0.2 (REQUIRE), direct callers from
#: 127.0.0.1 (REJECT), anybody else is refused (DENY).
HAPROXY_SOURCE = "127.0.0.2"


async def _ask_howto_server(first_bytes: bytes, source: str) -> bytes:
    handle = howto_example.server_namespace()["handle"]
    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        port = srv.sockets[0].getsockname()[1]
        return await http_get(port, source, first_bytes, TIMEOUT)
    finally:
        srv.close()
        await asyncio.wait_for(srv.wait_closed(), TIMEOUT)


@pytest.mark.parametrize(
    ("first_bytes", "source", "expected"),
    [
        (
            HEADERS["v2-tcp4-tlvs-crc"],
            HAPROXY_SOURCE,
            b"client 192.0.2.10 port 4242 (from PROXY v2)\n",
        ),
        (HEADERS["v1-tcp6"], HAPROXY_SOURCE, b"client 2001:db8::7 port 65535 (from PROXY v1)\n"),
        (HEADERS["v2-local"], HAPROXY_SOURCE, b"(from socket peer)\n"),  # a health check
        (b"", "127.0.0.1", b"(from socket peer)\n"),  # a direct caller (REJECT range)
    ],
)
def test_howto_example_server(first_bytes: bytes, source: str, expected: bytes) -> None:
    response = run(lambda: _ask_howto_server(first_bytes, source))
    assert response.startswith(b"HTTP/1.0 200 OK\r\n")
    assert response.endswith(expected)


@pytest.mark.parametrize(
    ("first_bytes", "source", "logged"),
    [
        (HEADERS["v2-tcp4-tlvs-crc"], "127.0.0.1", "UntrustedProxyHeader"),  # forged, direct
        (b"", HAPROXY_SOURCE, "MissingProxyHeader"),  # HAProxy's address must send one
        (HEADERS["v1-tcp4"], "127.0.0.3", "UntrustedPeer"),  # in no range: DENY
    ],
)
def test_howto_example_server_refuses_what_its_policy_refuses(
    first_bytes: bytes, source: str, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="client_ip_server"):
        response = run(lambda: _ask_howto_server(first_bytes, source))
    assert response == b""  # closed without an answer, the forged address never used
    (record,) = [r for r in caplog.records if r.name == "client_ip_server"]
    assert "closing connection" in record.getMessage()
    assert record.args is not None and type(record.args[1]).__name__ == logged
