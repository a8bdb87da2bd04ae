"""The lab's clients: bounded real HTTP/1.1 requests, each from a chosen client address.

Each request opens a TCP connection from inside the client's namespace, bound to its address,
to the VIP (or HAProxy's frontend, or a node's NodePort), sends ``GET /`` with
``Host: app.example.com`` and the lab tag, and reads the answer. The outcome is named as the
simulator names it (``sim.results.OUTCOMES``): a status 200 is ``ok``, other statuses
``http_<code>``, an RST or an empty reply ``reset``, ECONNREFUSED ``refused``, no answer within
``client_timeout_s`` ``timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import h11

from sim.addresses import HOST
from sim.lab.http1 import TAG_HEADER, open_in, read_response

__all__ = ["Attempt", "long_connection", "request"]


@dataclass
class Attempt:
    """What one client connection saw."""

    conn_id: int
    client_ip: str
    client_port: int = 0
    t_start: float = 0.0
    t_end: float = 0.0
    outcome: str = ""
    status: int = 0
    requests: int = 0
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _classify(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | h11.RemoteProtocolError):
        return "reset"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout"
    return "reset"


def _request_bytes(conn: h11.Connection, conn_id: int, xff: str | None) -> bytes:
    headers = [("host", HOST), (TAG_HEADER, str(conn_id)), ("user-agent", "srcip-lab")]
    if xff:
        headers.append(("x-forwarded-for", xff))
    out = conn.send(h11.Request(method="GET", target="/", headers=headers))
    return out + conn.send(h11.EndOfMessage())


async def request(
    attempt: Attempt, namespace: str, dst: tuple[str, int], xff: str | None, timeout_s: float
) -> Attempt:
    """One connection, one request; fills in ``attempt``."""
    attempt.t_start = time.monotonic()
    writer = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer, local = await open_in(
                namespace, dst, source=(attempt.client_ip, 0), timeout_s=timeout_s
            )
            attempt.client_port = local[1]
            conn = h11.Connection(h11.CLIENT)
            writer.write(_request_bytes(conn, attempt.conn_id, xff))
            await writer.drain()
            attempt.status, _ = await read_response(reader, conn, timeout_s)
        attempt.outcome = "ok" if attempt.status == 200 else f"http_{attempt.status}"
        attempt.requests = 1
    except (OSError, TimeoutError, h11.RemoteProtocolError) as exc:
        attempt.outcome = _classify(exc)
        attempt.detail = f"{type(exc).__name__}: {exc}"
    finally:
        attempt.t_end = time.monotonic()
        if writer is not None:
            writer.close()
    return attempt


async def long_connection(
    attempt: Attempt,
    namespace: str,
    dst: tuple[str, int],
    *,
    every_s: float,
    until: float,
    timeout_s: float,
) -> Attempt:
    """A keep-alive connection sending a request every ``every_s`` until ``until`` (monotonic)
    or its first failure; ``outcome`` is ``ok`` if it lasted, else how it ended (M17)."""
    attempt.t_start = time.monotonic()
    writer = None
    try:
        reader, writer, local = await open_in(
            namespace, dst, source=(attempt.client_ip, 0), timeout_s=timeout_s
        )
        attempt.client_port = local[1]
        conn = h11.Connection(h11.CLIENT)
        for _ in range(10_000):
            if time.monotonic() >= until:
                break
            writer.write(_request_bytes(conn, attempt.conn_id, None))
            await writer.drain()
            attempt.status, _ = await read_response(reader, conn, timeout_s)
            attempt.requests += 1
            conn.start_next_cycle()
            await asyncio.sleep(every_s)
        attempt.outcome = "ok"
    except (OSError, TimeoutError, h11.RemoteProtocolError, h11.LocalProtocolError) as exc:
        attempt.outcome = _classify(exc)
        attempt.detail = f"{type(exc).__name__}: {exc}"
    finally:
        attempt.t_end = time.monotonic()
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
    return attempt
