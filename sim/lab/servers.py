"""Stand-ins for the Istio ingress gateway, the app's sidecar and the app: real asyncio servers.

These are *stand-ins*, not Envoy: they implement the few rules of the real components that
decide which address is seen where, on real sockets inside the pods' namespaces.

* :class:`IngressGateway` (a gateway pod's Envoy, I1, I2): listens on ``0.0.0.0:8080``. With
  the proxy_protocol filter on it reads the header with the package's asyncio helper in strict
  mode (E1): a connection without one is closed with an RST before any HTTP (E5). Without the
  filter the bytes go to an HTTP/1 parser (``h11``) that answers ``400`` to a PROXY header
  (E6). It applies ``numTrustedProxies`` to the incoming XFF (E9), appends the remote address
  (E8), sets ``x-envoy-external-address`` (E10), forwards to the app pod and logs, per request,
  the direct peer (E7 ``DOWNSTREAM_DIRECT_REMOTE_ADDRESS``), the PROXY source and the XFF.
* :class:`Sidecar` (I1, E9, I8, I9): in the app pod, reached through an ``iptables``
  ``REDIRECT`` of port 8080 to 15006 as Istio's ``ISTIO_INBOUND`` does; it passes XFF through,
  takes the last XFF entry as the downstream remote address, and forwards to the app on the
  *pod IP* from ``127.0.0.6`` (I8, I9).
* :class:`App`: the application on ``<pod IP>:8080``; logs its socket peer and the XFF.

Every log entry is a dict appended to a shared list; ``tag`` is the client's ``x-lab-conn``.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import ipaddress
import os
import time
import traceback
from typing import Any

from sim.addresses import APP_POD_IP, APP_PORT, GATEWAY_PORT, SIDECAR_INBOUND_IP
from sim.lab.http1 import Reply, Request, abort, fetch, find_tag, serve_http
from sim.lab.netns import ns_run, ns_socket
from sim.proxy_protocol.asyncio import (
    MissingProxyHeader,
    Policy,
    ProxyHeaderError,
    read_proxy_header,
)

__all__ = ["App", "IngressGateway", "Sidecar", "read_header", "trusted_from_xff"]

SIDECAR_PORT = 15006
"""Istio's inbound capture port (``ISTIO_INBOUND`` redirects the app port here)."""
_V1 = b"PROXY "
_V2 = b"\r\n\r\n\x00\r\nQUIT\n"


async def read_header(
    reader: asyncio.StreamReader, peer: tuple[str, int], timeout_s: float
) -> tuple[str, int] | None:
    """Read a PROXY header strictly (E1); the PROXY source, or ``None`` for LOCAL (E3).

    The one call of the package's asyncio helper, :func:`sim.proxy_protocol.asyncio.
    read_proxy_header`, with the policy Envoy's filter has without
    ``allow_requests_without_proxy_protocol``: every peer must send a header (``REQUIRE``,
    E1, E2). Raises the helper's errors unchanged (:class:`~sim.proxy_protocol.asyncio.
    ProxyHeaderError` and its subclasses, ``MissingProxyHeader`` among them, E5).
    """
    result = await read_proxy_header(reader, peer=peer, policy=Policy.REQUIRE, timeout_s=timeout_s)
    header = result.header
    if header is None or header.src_addr is None or header.command.name != "PROXY":
        return None
    return str(header.src_addr), int(header.src_port or 0)


def trusted_from_xff(xff: str, hops: int) -> str | None:
    """The ``hops``-th XFF entry from the right (Envoy ``xff_num_trusted_hops``, E9), or None."""
    entries = [e.strip(" \t") for e in xff.split(",")] if xff else []
    if hops < 1 or len(entries) < hops:
        return None
    try:
        return str(ipaddress.ip_address(entries[-hops]))
    except ValueError:
        return None


class _Server(abc.ABC):
    """An asyncio server on a socket created inside a pod's namespace; subclasses answer in
    :meth:`handle`."""

    namespace: str
    port: int
    bind_ip: str = "0.0.0.0"

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.errors: list[str] = []

    async def start(self) -> None:
        sock = ns_socket(self.namespace)
        sock.setsockopt(1, 2, 1)  # SOL_SOCKET, SO_REUSEADDR
        sock.bind((self.bind_ip, self.port))
        sock.listen(128)
        self.server = await asyncio.start_server(self._accept, sock=sock)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        try:
            await self.handle(reader, writer)
        except asyncio.CancelledError:
            pass  # stop(): the pod's node lost power or the run is over
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug in a stand-in must show, not hang the client
            self.errors.append(f"{type(exc).__name__}: {exc}")
            if os.environ.get("SLAB_DEBUG"):
                traceback.print_exc()
        finally:
            if task is not None:
                self.tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    @abc.abstractmethod
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one accepted connection (the gateway, the sidecar or the app)."""

    async def stop(self) -> None:
        """Stop listening and reset every open connection (a powered-off pod keeps none)."""
        if self.server is not None:
            self.server.close()
            self.server = None
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=2.0)


class IngressGateway(_Server):
    """One gateway pod's stand-in Envoy (see the module docstring)."""

    def __init__(
        self,
        place: tuple[str, str, str, str],
        *,
        proxy_protocol: bool,
        num_trusted_proxies: int,
        log: list[dict[str, Any]],
        listener_timeout_s: float,
    ) -> None:
        """``place`` is ``(pod, pod_ip, namespace, node)``."""
        super().__init__()
        self.pod, self.pod_ip, self.namespace, self.node = place
        self.port = GATEWAY_PORT
        self.proxy_protocol = proxy_protocol
        self.num_trusted_proxies = num_trusted_proxies
        self.log = log
        self.timeout_s = listener_timeout_s

    def _row(self, peer: tuple[str, int]) -> dict[str, Any]:
        return {
            "kind": "gateway",
            "t": time.monotonic(),
            "pod": self.pod,
            "pod_ip": self.pod_ip,
            "node": self.node,
            "direct_ip": peer[0],
            "direct_port": peer[1],
            "proxy_src": "",
            "tag": -1,
        }

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        peer = (str(peer[0]), int(peer[1]))
        remote = peer
        proxy_src = ""
        if self.proxy_protocol:
            try:
                source = await read_header(reader, peer, self.timeout_s)
            except ProxyHeaderError as exc:  # E1, E4, E5: closed before HTTP
                missing = isinstance(exc, MissingProxyHeader)
                await self._failed(reader, writer, peer, missing)
                return
            if source is not None:
                remote = source
                proxy_src = f"{source[0]}:{source[1]}"

        async def on_request(request: Request, body: bytes) -> Reply:
            return await self._forward(request, body, peer, remote, proxy_src)

        _served, rejected = await serve_http(reader, writer, on_request, timeout_s=self.timeout_s)
        if rejected:
            row = self._row(peer)
            unexpected = rejected.startswith((_V1, _V2))
            row.update(
                outcome="http_400",
                reason="proxy_header_unexpected" if unexpected else "bad_request",
                tag=find_tag(rejected),
                client_ip=remote[0],
            )
            if row["tag"] >= 0:  # untagged ones are HAProxy's checks
                self.log.append(row)

    async def _failed(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: tuple[str, int],
        missing: bool,
    ) -> None:
        # Lab bookkeeping only: peek at what is already queued to learn the connection id.
        data = b""
        with contextlib.suppress(Exception):
            data = await asyncio.wait_for(reader.read(4096), 0.2)
        row = self._row(peer)
        row.update(
            outcome="reset",
            reason="proxy_header_missing" if missing else "proxy_header_invalid",
            tag=find_tag(data),
            client_ip=peer[0],
        )
        if row["tag"] >= 0:  # untagged ones are HAProxy's checks, not client connections
            self.log.append(row)
        abort(writer)

    async def _forward(
        self,
        request: Request,
        body: bytes,
        peer: tuple[str, int],
        remote: tuple[str, int],
        proxy_src: str,
    ) -> Reply:
        incoming = ",".join(request.values("x-forwarded-for"))
        client_ip = remote[0]
        if self.num_trusted_proxies:
            trusted = trusted_from_xff(incoming, self.num_trusted_proxies)
            if trusted is not None:
                client_ip = trusted  # E9: from XFF, port 0
        xff_out = f"{incoming},{remote[0]}" if incoming else remote[0]  # E8
        drop = {"x-forwarded-for", "x-envoy-external-address", "connection", "content-length"}
        headers = [(k, v) for k, v in request.headers if k not in drop]
        headers += [("x-forwarded-for", xff_out), ("x-envoy-external-address", client_ip)]
        row = self._row(peer)
        row.update(
            tag=request.tag,
            proxy_src=proxy_src,
            xff_in=incoming,
            xff_out=xff_out,
            client_ip=client_ip,
            external_address=client_ip,
        )
        try:
            status, data = await fetch(
                self.namespace,
                (APP_POD_IP, APP_PORT),
                Request(request.method, request.target, headers),
                timeout_s=5.0,
            )
        except (OSError, TimeoutError):
            status, data = 503, b""
        row.update(outcome="ok" if status == 200 else f"http_{status}", reason="")
        self.log.append(row)
        return Reply(status, data)


class Sidecar(_Server):
    """The app pod's sidecar inbound listener (``use_remote_address=false``, N=0; I1, E9)."""

    def __init__(self, *, namespace: str, log: list[dict[str, Any]]) -> None:
        super().__init__()
        self.namespace = namespace
        self.port = SIDECAR_PORT
        self.log = log

    async def start(self) -> None:
        # Istio's ISTIO_INBOUND: incoming (PREROUTING, not the sidecar's own OUTPUT) traffic to
        # the app port goes to the sidecar; its own connection to the app is not redirected.
        rules = (
            "*nat\n:PREROUTING ACCEPT [0:0]\n:ISTIO_INBOUND - [0:0]\n"
            "-A PREROUTING -p tcp -j ISTIO_INBOUND\n"
            f"-A ISTIO_INBOUND -p tcp --dport {APP_PORT} -j REDIRECT --to-ports {SIDECAR_PORT}\n"
            "COMMIT\n"
        )
        ns_run(self.namespace, ["iptables-restore"], stdin=rules)
        await super().start()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")

        async def on_request(request: Request, body: bytes) -> Reply:
            xff = ",".join(request.values("x-forwarded-for"))
            last = trusted_from_xff(xff, 1)  # E9: use_remote_address=false, N=0
            self.log.append(
                {
                    "kind": "sidecar",
                    "t": time.monotonic(),
                    "tag": request.tag,
                    "direct_ip": str(peer[0]),
                    "xff": xff,
                    "remote_ip": last if last is not None else str(peer[0]),
                }
            )
            headers = [(k, v) for k, v in request.headers if k not in ("connection",)]
            status, data = await fetch(
                self.namespace,
                (APP_POD_IP, APP_PORT),
                Request(request.method, request.target, headers),
                source=(SIDECAR_INBOUND_IP, 0),  # I8, I9: to the pod IP from 127.0.0.6
                timeout_s=5.0,
            )
            return Reply(status, data)

        await serve_http(reader, writer, on_request, timeout_s=10.0)


class App(_Server):
    """The application behind the sidecar: answers 200 and logs its socket peer (I8)."""

    def __init__(self, *, namespace: str, log: list[dict[str, Any]]) -> None:
        super().__init__()
        self.namespace = namespace
        self.port = APP_PORT
        self.bind_ip = APP_POD_IP
        self.log = log

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")

        async def on_request(request: Request, body: bytes) -> Reply:
            xff = ",".join(request.values("x-forwarded-for"))
            self.log.append(
                {"kind": "app", "t": time.monotonic(), "tag": request.tag, "peer_ip": peer[0]}
            )
            return Reply(200, f"ok {request.tag} xff={xff}\n".encode())

        await serve_http(reader, writer, on_request, timeout_s=10.0)
