"""HTTP/1.1 plumbing shared by the lab's stand-in servers and its clients, on top of ``h11``.

``h11`` (a maintained sans-I/O HTTP/1.1 library) does all the parsing; this module only moves
bytes between it and asyncio streams, with a deadline on every wait, and opens every upstream
socket inside the right network namespace (:func:`sim.lab.netns.ns_socket`).

Why h11 here and httptools in the simulator (:mod:`sim.net.http`): the simulator parses
millions of request heads, where llhttp's 1 µs beats h11's 19 µs (``benchmarks/bench_http.py``);
the lab's servers handle at most a few thousand requests, keep long connections alive and write
responses, which h11's connection state machine (both roles, keep-alive, ``MUST_CLOSE``) does for
us in the sans-I/O style of the rest of the project. Both reject what the differential tests
depend on: PROXY bytes on an HTTP listener, v1 or v2 (E6).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import h11

from sim.lab.netns import ns_socket

__all__ = [
    "TAG_HEADER",
    "Reply",
    "Request",
    "abort",
    "fetch",
    "find_tag",
    "open_in",
    "serve_http",
]

TAG_HEADER = "x-lab-conn"
"""The header every lab client request carries: its connection id, so every hop's log line can
be matched to the client's row (bookkeeping only; no element's decision depends on it)."""
_TAG_RE = re.compile(rb"x-lab-conn:\s*(\d+)", re.IGNORECASE)
READ_BYTES = 65536


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed request: method, target and headers (names lower-case, in order)."""

    method: str
    target: str
    headers: list[tuple[str, str]]

    def values(self, name: str) -> list[str]:
        """Every value of header ``name`` (lower-case), in order."""
        return [v for k, v in self.headers if k == name]

    @property
    def tag(self) -> int:
        """The lab connection id, -1 if absent."""
        found = self.values(TAG_HEADER)
        return int(found[0]) if found and found[0].isdigit() else -1


@dataclass(frozen=True, slots=True)
class Reply:
    """A response to send: status, extra headers, body."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


def find_tag(data: bytes) -> int:
    """The ``x-lab-conn`` value somewhere in raw bytes (for connections that never parsed)."""
    match = _TAG_RE.search(data)
    return int(match[1]) if match else -1


def abort(writer: asyncio.StreamWriter) -> None:
    """Close with an RST (SO_LINGER 0), as Envoy does when a listener filter fails (E1, E5)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


async def _send(writer: asyncio.StreamWriter, data: bytes, timeout_s: float) -> None:
    writer.write(data)
    await asyncio.wait_for(writer.drain(), timeout_s)


Handler = Callable[[Request, bytes], Awaitable[Reply]]


async def serve_http(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    handler: Handler,
    *,
    first: bytes = b"",
    timeout_s: float,
    max_requests: int = 100,
) -> tuple[int, bytes]:
    """Serve HTTP/1.1 requests on one connection until it closes (at most ``max_requests``).

    Returns ``(requests served, raw bytes of a request h11 rejected)``: when the peer sends
    something that is not HTTP/1 (a PROXY header included, E6), ``h11`` raises, the peer gets
    ``400 Bad Request`` and the connection closes.
    """
    conn = h11.Connection(h11.SERVER)
    raw = bytearray(first)
    if first:  # h11 reads b"" as the end of the stream
        conn.receive_data(bytes(first))
    served = 0
    while served < max_requests:
        try:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(reader.read(READ_BYTES), timeout_s)
                raw += data[:4096]
                conn.receive_data(data)
                continue
        except h11.RemoteProtocolError:
            with contextlib.suppress(Exception):
                await _send(writer, _plain(400, b"Bad Request"), timeout_s)
            return served, bytes(raw)
        if isinstance(event, h11.Request):
            request = Request(
                event.method.decode(),
                event.target.decode("latin-1"),
                [(k.decode().lower(), v.decode("latin-1")) for k, v in event.headers],
            )
            body = await _body(conn, reader, timeout_s)
            reply = await handler(request, body)
            headers = [("content-length", str(len(reply.body))), *reply.headers]
            out = conn.send(h11.Response(status_code=reply.status, headers=headers))
            out += conn.send(h11.Data(data=reply.body)) + conn.send(h11.EndOfMessage())
            await _send(writer, out, timeout_s)
            served += 1
            raw = bytearray()
            if conn.our_state is h11.MUST_CLOSE:
                break
            conn.start_next_cycle()
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            break
    return served, b""


def _plain(status: int, text: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status} {text.decode()}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    ).encode()


async def _body(conn: h11.Connection, reader: asyncio.StreamReader, timeout_s: float) -> bytes:
    body = bytearray()
    for _ in range(1000):
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await asyncio.wait_for(reader.read(READ_BYTES), timeout_s))
        elif isinstance(event, h11.Data):
            body += event.data
        else:
            return bytes(body)
    raise h11.RemoteProtocolError("request body too long")


async def open_in(
    namespace: str, dst: tuple[str, int], *, source: tuple[str, int] | None, timeout_s: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, tuple[str, int]]:
    """Connect from inside ``namespace`` (bound to ``source`` if given); return the streams
    and the local address."""
    sock = ns_socket(namespace)
    try:
        if source is not None:
            sock.bind(source)
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(sock, dst), timeout_s)
        local = sock.getsockname()
        reader, writer = await asyncio.open_connection(sock=sock)
    except BaseException:
        sock.close()
        raise
    return reader, writer, (str(local[0]), int(local[1]))


async def read_response(
    reader: asyncio.StreamReader, conn: h11.Connection, timeout_s: float
) -> tuple[int, bytes]:
    """Read one response on a client connection: ``(status, body)``.

    Raises :class:`ConnectionResetError` when the peer closes before a status line (an empty
    reply: what a client sees when Envoy closes the connection, E5).
    """
    status = 0
    body = bytearray()
    for _ in range(10000):
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await asyncio.wait_for(reader.read(READ_BYTES), timeout_s)
            conn.receive_data(data)
            if not data and not status:
                raise ConnectionResetError("connection closed without a response")
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
    return status, bytes(body)


async def fetch(
    namespace: str,
    dst: tuple[str, int],
    request: Request,
    *,
    source: tuple[str, int] | None = None,
    timeout_s: float,
) -> tuple[int, bytes]:
    """One request on a new connection from ``namespace`` to ``dst``; ``(status, body)``."""
    reader, writer, _ = await open_in(namespace, dst, source=source, timeout_s=timeout_s)
    try:
        conn = h11.Connection(h11.CLIENT)
        headers = [*request.headers, ("connection", "close")]
        out = conn.send(h11.Request(method=request.method, target=request.target, headers=headers))
        out += conn.send(h11.EndOfMessage())
        await _send(writer, out, timeout_s)
        return await read_response(reader, conn, timeout_s)
    finally:
        writer.close()
