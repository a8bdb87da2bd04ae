"""Who may send a PROXY header (issue 9), and every way a peer can break the header read.

* A header from a peer that may not send one never reaches the application, under every policy
  that can apply to such a peer (IGNORE, REJECT, SKIP, DENY): the helper raises its own error or
  hands back no header.
* A reset or an EOF at every byte of a v1 and a v2 header raises ConnectionLost, one of the
  helper's documented errors, never ConnectionResetError; the how-to's server logs nothing
  unhandled when that happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import howto_example
import pytest

from sim.proxy_protocol import Command, Family, ProxyHeader, encode
from sim.proxy_protocol.asyncio import (
    ConnectionLost,
    PeerPolicy,
    Policy,
    ProxyHeaderError,
    ProxyHeaderResult,
    UntrustedPeer,
    UntrustedProxyHeader,
    peer_address,
    policy_from_ranges,
    read_proxy_header,
    trust_proxy_header_from,
)

TIMEOUT = 5.0
FORGED_CLIENT = ipaddress.IPv4Address("203.0.113.9")
FORGED = ProxyHeader(
    version=1,
    command=Command.PROXY,
    family=Family.TCP4,
    src_addr=FORGED_CLIENT,
    dst_addr=ipaddress.IPv4Address("127.0.0.1"),
    src_port=4242,
    dst_port=443,
)
FORGED_V1 = encode(FORGED)
FORGED_V2 = encode(
    ProxyHeader(
        version=2,
        command=Command.PROXY,
        family=Family.TCP4,
        src_addr=FORGED_CLIENT,
        dst_addr=ipaddress.IPv4Address("127.0.0.1"),
        src_port=4242,
        dst_port=443,
    ),
    crc32c=True,
)
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
#: Policies that may apply to a peer that may not send a header.
UNTRUSTED_POLICIES = [p for p in Policy if not p.honours_header]


def run(coro_fn: Callable[[], Any]) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro_fn(), 30)

    return asyncio.run(bounded())


@dataclass
class Seen:
    """What the application behind read_proxy_header saw on one connection."""

    result: ProxyHeaderResult | None
    error: BaseException | None
    client: str  # the address the application would log as the client
    payload: bytes  # leftover + everything read afterwards


@contextlib.asynccontextmanager
async def app(policy: PeerPolicy | Policy) -> AsyncIterator[tuple[int, asyncio.Queue[Seen]]]:
    """A server that uses the client address as the how-to does and records what it saw."""
    seen: asyncio.Queue[Seen] = asyncio.Queue()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        result: ProxyHeaderResult | None = None
        error: BaseException | None = None
        client, payload = "", b""
        try:
            result = await read_proxy_header(reader, peer=peer, policy=policy, timeout_s=TIMEOUT)
            header = result.header
            client = str(header.src_addr) if header is not None else peer[0]
            payload = result.leftover + await asyncio.wait_for(reader.read(), TIMEOUT)
        except Exception as exc:
            error = exc
        finally:
            seen.put_nowait(Seen(result, error, client, payload))
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1], seen
    finally:
        srv.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(srv.wait_closed(), TIMEOUT)


async def connect_send(port: int, data: bytes, *, reset: bool = False) -> None:
    """Connect from 127.0.0.1, send ``data``, then EOF, or a TCP RST when ``reset``."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        if data:
            writer.write(data)
            await writer.drain()
        if reset:
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        writer.write_eof()
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(reader.read(), TIMEOUT)
    except OSError:
        pass  # the server refused (closed or reset) us first: what some tests check
    finally:
        writer.close()


# ---------------------------------------------------------------- forged headers


def test_only_require_and_use_honour_a_header() -> None:
    assert {p for p in Policy if p.honours_header} == {Policy.REQUIRE, Policy.USE}
    assert set(UNTRUSTED_POLICIES) == {Policy.IGNORE, Policy.REJECT, Policy.SKIP, Policy.DENY}


@pytest.mark.parametrize("forged", [FORGED_V1, FORGED_V2], ids=["v1", "v2"])
@pytest.mark.parametrize("policy", UNTRUSTED_POLICIES, ids=lambda p: p.name)
def test_forged_header_from_an_untrusted_peer_never_reaches_the_app(
    policy: Policy, forged: bytes
) -> None:
    """The proxies are 10.0.0.5-6; the test client (127.0.0.1) gets ``policy``."""
    peer_policy = PeerPolicy([(["10.0.0.5/32", "10.0.0.6/32"], Policy.REQUIRE)], default=policy)

    async def scenario() -> Seen:
        async with app(peer_policy) as (port, seen):
            await connect_send(port, forged + REQUEST)
            return await asyncio.wait_for(seen.get(), TIMEOUT)

    seen = run(scenario)
    assert seen.client != str(FORGED_CLIENT)
    if policy is Policy.REJECT:
        assert isinstance(seen.error, UntrustedProxyHeader)
        assert seen.error.offset == 0 and seen.error.received <= 15  # the body was not read
    elif policy is Policy.DENY:
        assert isinstance(seen.error, UntrustedPeer) and seen.error.received == 0
    else:
        assert seen.error is None and seen.result is not None
        assert seen.result.header is None and seen.client == "127.0.0.1"
        if policy is Policy.IGNORE:  # read, checked, dropped
            assert seen.result.raw == forged and seen.payload == REQUEST
        else:  # SKIP: not read, so the forged bytes are the application's payload, not a header
            assert seen.result.raw == b"" and seen.payload == forged + REQUEST
    if seen.error is not None:
        assert isinstance(seen.error, ProxyHeaderError)


def test_the_allow_trusted_hole_is_closed() -> None:
    """Issue 9's exploit: a peer trusted to connect *without* a header sends one anyway."""
    direct_callers = PeerPolicy(
        [(["10.0.0.5/32"], Policy.REQUIRE), (["127.0.0.0/8"], Policy.REJECT)]
    )

    async def scenario() -> tuple[Seen, Seen]:
        async with app(direct_callers) as (port, seen):
            await connect_send(port, FORGED_V1 + REQUEST)
            forged = await asyncio.wait_for(seen.get(), TIMEOUT)
            await connect_send(port, REQUEST)
            plain = await asyncio.wait_for(seen.get(), TIMEOUT)
            return forged, plain

    forged, plain = run(scenario)
    assert isinstance(forged.error, UntrustedProxyHeader)
    assert "may not send one" in str(forged.error)
    assert plain.error is None and plain.client == "127.0.0.1" and plain.payload == REQUEST


@pytest.mark.parametrize("policy", [Policy.REQUIRE, Policy.USE])
def test_trusted_peers_header_is_used(policy: Policy) -> None:
    async def scenario() -> Seen:
        async with app(policy_from_ranges(["127.0.0.1"], policy)) as (port, seen):
            await connect_send(port, FORGED_V2 + REQUEST)
            return await asyncio.wait_for(seen.get(), TIMEOUT)

    seen = run(scenario)
    assert seen.error is None and seen.result is not None and seen.result.policy is policy
    assert seen.client == str(FORGED_CLIENT) and seen.payload == REQUEST


def test_use_serves_a_trusted_peer_without_a_header() -> None:
    async def scenario() -> Seen:
        async with app(policy_from_ranges(["127.0.0.0/8"], Policy.USE)) as (port, seen):
            await connect_send(port, REQUEST)
            return await asyncio.wait_for(seen.get(), TIMEOUT)

    seen = run(scenario)
    assert seen.error is None and seen.result is not None and seen.result.header is None
    assert seen.payload == REQUEST and seen.client == "127.0.0.1"


@pytest.mark.parametrize("policy", [Policy.SKIP, Policy.DENY])
def test_skip_and_deny_read_nothing(policy: Policy) -> None:
    async def scenario() -> tuple[ProxyHeaderResult | None, BaseException | None, bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(FORGED_V1)
        reader.feed_eof()
        try:
            result = await read_proxy_header(
                reader, peer=("127.0.0.1", 1), policy=policy, timeout_s=TIMEOUT
            )
        except ProxyHeaderError as exc:
            return None, exc, await reader.read()
        return result, None, await reader.read()

    result, error, unread = run(scenario)
    assert unread == FORGED_V1
    if policy is Policy.SKIP:
        assert result is not None and result.header is None and result.raw == b""
    else:
        assert isinstance(error, UntrustedPeer)


# ---------------------------------------------------------------- peer policies


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        (("10.0.0.5", 5000), Policy.REQUIRE),
        ("10.0.0.5", Policy.REQUIRE),
        (ipaddress.IPv4Address("10.0.0.5"), Policy.REQUIRE),
        (("::ffff:10.0.0.5", 5000, 0, 0), Policy.REQUIRE),  # dual-stack listener, IPv4 client
        (("10.1.2.3", 5000), Policy.REJECT),  # the first matching rule wins
        (("fd00::7", 1, 0, 0), Policy.REJECT),
        (("fe80::1%eth0", 1, 0, 2), Policy.DENY),
        (("203.0.113.7", 5000), Policy.DENY),
        ("", Policy.DENY),  # UNIX socket peer: no range matches, the default applies
        ("/run/app.sock", Policy.DENY),
        (None, Policy.DENY),
    ],
)
def test_peer_policy_first_match_wins(peer: Any, expected: Policy) -> None:
    policy = PeerPolicy(
        [
            (["10.0.0.5/32", ipaddress.ip_address("10.0.0.6")], Policy.REQUIRE),
            (["10.0.0.0/8", "fd00::/8"], Policy.REJECT),
        ]
    )
    assert policy.default is Policy.DENY
    assert policy.for_peer(peer) is expected


def test_policy_helpers_match_go_proxyproto_and_haproxy() -> None:
    strict = trust_proxy_header_from(["10.0.0.5"])
    assert (strict.for_peer("10.0.0.5"), strict.for_peer("10.0.0.6")) == (
        Policy.REQUIRE,
        Policy.DENY,
    )
    expect_proxy = policy_from_ranges(["10.0.0.5"], Policy.REQUIRE, Policy.SKIP)
    assert expect_proxy.for_peer("192.0.2.1") is Policy.SKIP
    assert peer_address(("::ffff:1.2.3.4", 1, 0, 0)) == ipaddress.IPv4Address("1.2.3.4")


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: PeerPolicy([(["not-a-net"], Policy.USE)]), ValueError),
        (lambda: PeerPolicy([("10.0.0.0/8", Policy.USE)]), TypeError),  # a string, not a list
        (lambda: PeerPolicy([(["10.0.0.0/8"], "use")]), TypeError),
        (lambda: PeerPolicy([(["10.0.0.0/8"],)]), TypeError),
        (lambda: PeerPolicy([], default="deny"), TypeError),  # type: ignore[arg-type]
    ],
)
def test_bad_policies_are_refused_when_built(build: Callable[[], object], error: type) -> None:
    with pytest.raises(error):
        build()


# ---------------------------------------------------------------- reset or EOF at every byte

V1_HEADER = encode(FORGED)
V2_HEADER = FORGED_V2


async def _read_from_stream(
    data: bytes, end: str, policy: Policy
) -> tuple[ProxyHeaderResult | None, BaseException | None]:
    reader = asyncio.StreamReader()
    if data:
        reader.feed_data(data)
    if end == "eof":
        reader.feed_eof()
    else:
        reader.set_exception(ConnectionResetError(104, "Connection reset by peer"))
    try:
        return (
            await read_proxy_header(
                reader, peer=("127.0.0.1", 1), policy=policy, timeout_s=TIMEOUT
            ),
            None,
        )
    except Exception as exc:
        return None, exc


@pytest.mark.parametrize("end", ["eof", "reset"])
@pytest.mark.parametrize("raw", [V1_HEADER, V2_HEADER], ids=["v1", "v2"])
def test_reset_or_eof_at_every_byte_is_a_documented_error(raw: bytes, end: str) -> None:
    for k in range(len(raw)):
        result, error = run(lambda k=k: _read_from_stream(raw[:k], end, Policy.REQUIRE))
        assert result is None
        assert isinstance(error, ConnectionLost), (k, error)
        assert error.reset is (end == "reset")
        assert error.received <= k and error.field == "header"


@pytest.mark.parametrize("raw", [V1_HEADER, V2_HEADER], ids=["v1", "v2"])
def test_eof_inside_a_signature_is_payload_for_a_policy_without_a_required_header(
    raw: bytes,
) -> None:
    signature = 6 if raw.startswith(b"PROXY") else 12
    for k in range(len(raw)):
        result, error = run(lambda k=k: _read_from_stream(raw[:k], "eof", Policy.USE))
        if k < signature:  # "PROX" and then EOF: no header, the bytes were the payload
            assert error is None and result is not None, k
            assert result.header is None and result.leftover == raw[:k]
        else:
            assert isinstance(error, ConnectionLost) and not error.reset, k
        result, error = run(lambda k=k: _read_from_stream(raw[:k], "reset", Policy.USE))
        assert isinstance(error, ConnectionLost) and error.reset, k


@pytest.mark.parametrize("reset", [False, True], ids=["eof", "rst"])
@pytest.mark.parametrize("raw", [V1_HEADER, V2_HEADER], ids=["v1", "v2"])
def test_real_socket_reset_or_eof_at_every_byte(raw: bytes, reset: bool) -> None:
    """The same over loopback TCP: FIN or RST after each prefix of the header."""

    async def scenario() -> list[Seen]:
        async with app(Policy.REQUIRE) as (port, seen):
            out = []
            for k in range(len(raw)):
                await connect_send(port, raw[:k], reset=reset)
                out.append(await asyncio.wait_for(seen.get(), TIMEOUT))
            return out

    for k, seen in enumerate(run(scenario)):
        assert isinstance(seen.error, ConnectionLost), (k, seen.error)
        assert seen.error.received <= k


def test_howto_server_logs_nothing_unhandled_when_clients_reset(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """HAProxy's address (127.0.0.2) resets after every prefix of a v2 header, a direct caller
    after every prefix of a request: the how-to's handler logs ConnectionLost warnings, and
    asyncio reports nothing unhandled."""
    handle = howto_example.server_namespace()["handle"]
    unhandled: list[dict[str, Any]] = []

    async def scenario() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: unhandled.append(ctx))
        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        try:
            for source, raw in (("127.0.0.2", V2_HEADER), ("127.0.0.1", REQUEST)):
                for k in range(len(raw)):
                    _, writer = await asyncio.open_connection(
                        "127.0.0.1", port, local_addr=(source, 0)
                    )
                    writer.write(raw[:k])
                    await writer.drain()
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
            await asyncio.sleep(0.2)  # let the handlers finish
        finally:
            srv.close()
            await asyncio.wait_for(srv.wait_closed(), TIMEOUT)

    with caplog.at_level("WARNING"):
        run(scenario)
    assert unhandled == []
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    warnings = [r for r in caplog.records if r.name == "client_ip_server"]
    assert warnings, "the resets mid-header were logged as closed connections"
    assert all(r.args and type(r.args[1]).__name__ == "ConnectionLost" for r in warnings)
