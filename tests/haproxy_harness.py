"""Run a real HAProxy on loopback for the interoperability tests.

Everything here is bounded: ports are picked on 127.0.0.1 / ::1 only, HAProxy is started in the
foreground (``haproxy -f CFG -db``, FACTS/TOOLCHAIN: the Debian package does not start a service)
and stopped by its PID, and every wait has a deadline. Readiness is checked in
``/proc/net/tcp{,6}`` rather than by connecting, because a probe connection would itself be proxied
(and carry a PROXY header) or, on an ``accept-proxy`` bind, be logged as a broken header.

The skip rule lives in :func:`require_haproxy`: without HAProxy the tests skip, except when the
environment variable ``CI`` is set, where a missing HAProxy is a failure (CI must run them).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import pytest

from sim.proxy_protocol.asyncio import Policy, ProxyHeaderResult, read_proxy_header

#: Oldest HAProxy with every option the tests use (``proxy-v2-options unique-id,authority``).
MIN_VERSION = (2, 2)
#: Common head of every test configuration: log to stderr (collected into a file), one thread
#: (2 shared cores), short timeouts so nothing a test forgets can hang for long.
CONFIG_HEAD = """\
global
    log stderr format raw local0 info
    nbthread 1

defaults
    mode tcp
    log global
    log-format "SRCIPLAB fe=%ft ci=%ci cp=%cp fi=%fi fp=%fp"
    timeout connect 2s
    timeout client 5s
    timeout server 5s
"""
#: The 16-byte v2 LOCAL header HAProxy's health checks send (FACTS H4).
V2_LOCAL_HEADER = bytes.fromhex("0D0A0D0A000D0A515549540A") + bytes.fromhex("20000000")


def _parse_version(text: str) -> tuple[int, int] | None:
    match = re.search(r"version (\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2])) if match else None


def find_haproxy() -> str | None:
    """HAProxy's path: on PATH, else Debian's ``/usr/sbin`` (not on a non-root user's PATH)."""
    found = shutil.which("haproxy")
    if found is None and os.access("/usr/sbin/haproxy", os.X_OK):
        found = "/usr/sbin/haproxy"
    return found


def require_haproxy() -> str:
    """Return the HAProxy binary, or skip (locally) / fail (when ``CI`` is set) without it."""
    path = find_haproxy()
    reason = None
    if path is None:
        reason = "haproxy is not installed (not on PATH nor /usr/sbin); apt-get install haproxy"
    else:
        out = subprocess.run(
            [path, "-v"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        version = _parse_version(out)
        if version is None or version < MIN_VERSION:
            reason = f"haproxy at {path} is {version}, the interop tests need >= {MIN_VERSION}"
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so HAProxy interop tests must run: {reason}")
        pytest.skip(reason)
    assert path is not None
    return path


def has_ipv6_loopback() -> bool:
    """True when ``::1`` can be bound (some containers have no IPv6 at all)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def free_port(host: str) -> int:
    """A currently free TCP port on ``host`` (a loopback address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def hp(host: str, port: int) -> str:
    """``host:port`` as HAProxy's configuration wants it (IPv6 in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def make_self_signed_cert(directory: Path) -> Path:
    """Generate a throwaway certificate + key (one PEM, as ``bind ... ssl crt`` wants it).

    Generated at test time into a temporary directory: no private key is ever committed.
    """
    key, cert, both = directory / "key.pem", directory / "cert.pem", directory / "both.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=srcip-lab.test", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    both.write_bytes(cert.read_bytes() + key.read_bytes())
    return both


def _proc_net_hex(host: str) -> str:
    """``host`` as /proc/net/tcp{,6} prints it: 32-bit words in host (little-endian) order."""
    packed = ipaddress.ip_address(host).packed
    return "".join(
        f"{int.from_bytes(packed[i : i + 4], 'little'):08X}" for i in range(0, len(packed), 4)
    )


def is_listening(host: str, port: int) -> bool:
    """Whether some socket LISTENs on host:port (read from /proc, no connection made)."""
    table = "/proc/net/tcp6" if ":" in host else "/proc/net/tcp"
    wanted = f"{_proc_net_hex(host)}:{port:04X}"
    with open(table) as f:
        next(f)
        for line in f:
            cols = line.split()
            if cols[1] == wanted and cols[3] == "0A":  # 0A = TCP_LISTEN
                return True
    return False


class HAProxy:
    """One HAProxy process in the foreground; use as a context manager so it is always stopped."""

    def __init__(self, binary: str, config: str, workdir: Path) -> None:
        self.binary = binary
        self.config_path = workdir / "haproxy.cfg"
        self.log_path = workdir / "haproxy.log"
        self.config_path.write_text(config)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, listen: list[tuple[str, int]], timeout_s: float = 5.0) -> HAProxy:
        """Start HAProxy and wait until every (host, port) in ``listen`` is listening."""
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-f", str(self.config_path), "-db"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while not all(is_listening(h, p) for h, p in listen):
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"haproxy exited with status {self.proc.returncode}:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"haproxy not listening on {listen} after {timeout_s} s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop the process by its PID: SIGTERM, then SIGKILL after 5 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def log(self) -> str:
        """Everything HAProxy wrote so far (its log lines and warnings)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, pattern: str, timeout_s: float = 5.0) -> re.Match[str]:
        """Wait until a log line matches ``pattern`` (a regex) and return the match."""
        deadline = time.monotonic() + timeout_s
        while True:
            match = re.search(pattern, self.log())
            if match:
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line matching {pattern!r}; log:\n{self.log()}")
            time.sleep(0.05)

    def __enter__(self) -> HAProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def running_haproxy(
    binary: str, config: str, workdir: Path, listen: list[tuple[str, int]]
) -> Iterator[HAProxy]:
    """Start HAProxy with ``CONFIG_HEAD + config``; always stop it on exit."""
    ha = HAProxy(binary, CONFIG_HEAD + config, workdir)
    try:
        ha.start(listen)
        yield ha
    finally:
        ha.stop()


@dataclass
class Received:
    """One connection a :class:`ProxyListener` accepted."""

    peer: tuple[object, ...]
    sockname: tuple[object, ...]
    result: ProxyHeaderResult | None = None
    error: BaseException | None = None
    payload: bytes = b""
    reset: bool = False  # the peer reset the connection after the header (health checks do)


@dataclass
class ProxyListener:
    """An asyncio server standing for a PROXY-aware backend (HAProxy's ``server`` line).

    Each connection: read the header with :func:`read_proxy_header` (``Policy.REQUIRE``: on
    loopback only HAProxy connects), read one payload line, answer ``echo:<line>``, close.
    Every connection is queued as a :class:`Received` for the test to inspect.
    """

    host: str
    timeout_s: float = 5.0
    port: int = 0
    received: asyncio.Queue[Received] = field(default_factory=asyncio.Queue)
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> ProxyListener:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        rec = Received(
            peer=writer.get_extra_info("peername"), sockname=writer.get_extra_info("sockname")
        )
        try:
            rec.result = await read_proxy_header(
                reader, peer=rec.peer, policy=Policy.REQUIRE, timeout_s=self.timeout_s
            )
            try:
                rec.payload = await asyncio.wait_for(reader.readline(), self.timeout_s)
            except ConnectionResetError:
                rec.reset = True
            if rec.payload:
                writer.write(b"echo:" + rec.payload)
                await asyncio.wait_for(writer.drain(), self.timeout_s)
        except Exception as exc:  # recorded for the test to assert on
            rec.error = exc
        finally:
            self.received.put_nowait(rec)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), self.timeout_s)

    async def next(self, timeout_s: float = 5.0) -> Received:
        """The next accepted connection (waits at most ``timeout_s``)."""
        return await asyncio.wait_for(self.received.get(), timeout_s)


async def http_get(
    port: int, source: str = "127.0.0.1", first: bytes = b"", timeout_s: float = 5.0
) -> bytes:
    """One ``GET /`` on 127.0.0.1:``port`` from ``source``, after ``first`` (a PROXY header, or
    nothing); the whole reply, or ``b""`` when the server reset the connection."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), timeout_s
    )
    try:
        writer.write(first + b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        await writer.drain()
        try:
            return await asyncio.wait_for(reader.read(), timeout_s)
        except ConnectionResetError:
            return b""
    finally:
        writer.close()


def relay_config(
    fe_port: int, be_port: int, server_options: str, *, accept_proxy: bool = True
) -> str:
    """A frontend on 127.0.0.1:``fe_port`` (``accept-proxy`` unless told otherwise) relaying to
    one server on 127.0.0.1:``be_port`` with ``server_options``."""
    bind = f"127.0.0.1:{fe_port}" + (" accept-proxy" if accept_proxy else "")
    return f"""
frontend fe_in
    bind {bind}
    default_backend be
backend be
    server s1 127.0.0.1:{be_port} {server_options}
"""
