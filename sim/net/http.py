"""The HTTP/1.1 bytes the simulated clients send, and the request-head reader the servers use.

Real component modelled: the first request of an HTTP/1.1 connection as a client writes it and as
a server (HAProxy in ``mode http``, Envoy's HTTP/1 codec in the ingress gateway and the sidecar)
reads its head. Only the request head matters to the question the simulator answers (which
address ends up in ``X-Forwarded-For``), so bodies are never sent (every request is a ``GET``).

The head is parsed by **httptools**, the Python binding of llhttp (Node.js's HTTP parser, the one
uvicorn uses), in its strict default mode: it rejects whitespace before a field's colon (RFC 9112
§5.1), obs-fold lines (§5.2), bare LF line ends (§2.2), control characters in field values (RFC
9110 §5.5), and unknown methods or bad characters in the request-target. Chosen over h11 by the
benchmark (a 3-field head: httptools 1.6 µs, h11 18.7 µs, our old parser 2.7 µs) and because h11
accepts obs-fold and bare LF, which Envoy answers with 400. This module adds only what llhttp
does not do, each answered with :class:`HTTPRequestError` (the gateway turns it into ``400 Bad
Request``, E6):

* framing for a sans-I/O caller: ``None`` until the blank line arrives, a size bound
  (:data:`MAX_HEAD_BYTES`), and an early error for a request-line that cannot be HTTP (PROXY
  bytes on an HTTP listener, E6) before any blank line;
* the strict choices RFC 9112 leaves open: the request-line has exactly one SP between its three
  parts (§3), the version is ``HTTP/1.1`` or ``HTTP/1.0`` (§2.3), and an HTTP/1.1 request carries
  exactly one ``Host`` field (§3.2, "MUST respond with 400");
* where the fault is: llhttp reports no position, so a rejected head is bisected (an invalid
  prefix stays invalid when extended) and the error names the byte offset of the line, field
  name or field value at fault.

Several ``X-Forwarded-For`` lines form one list, combined in order with commas
(RFC 9110 §5.3); :meth:`RequestHead.combined` does that.

Left out: bodies, ``Transfer-Encoding``/``Content-Length`` framing, absolute-form targets,
pipelining, header size limits other than :data:`MAX_HEAD_BYTES`, and HTTP/2.
"""

from __future__ import annotations

from typing import NamedTuple

import httptools

__all__ = [
    "MAX_HEAD_BYTES",
    "HTTPRequestError",
    "RequestHead",
    "build_request",
    "parse_request_head",
]

#: Largest request head accepted, in bytes (Envoy's default ``max_request_headers_kb`` is 60 KiB).
MAX_HEAD_BYTES = 60 * 1024

_USER_AGENT = "srcip-lab-client/1.0"

# RFC 9110 §5.5: field-value octets are VCHAR, obs-text (0x80-0xFF), SP and HTAB. Used only to
# check what build_request is asked to write.
_FIELD_VALUE_OK = bytes([0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])
_VERSIONS = frozenset((b"HTTP/1.1", b"HTTP/1.0"))
# Whole heads already parsed: a simulation sends the same few heads (one per client address at
# most) millions of times, and RequestHead is immutable, so a hit returns the same object.
# Bounded: past _CACHE_MAX entries new heads are parsed every time.
_CACHE_MAX = 4096
_HEADS: dict[bytes, RequestHead] = {}


class HTTPRequestError(ValueError):
    """The peer sent a request head that a strict HTTP/1.1 server answers with 400.

    ``offset`` is the byte offset (from the start of the data given to the parser) of the line
    or field at fault, or ``None`` when the problem is not tied to one place.
    """

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        where = f" (byte offset {offset})" if offset is not None else ""
        super().__init__(message + where)
        self.offset = offset


class RequestHead(NamedTuple):
    """A parsed request head.

    ``headers`` keeps every field line in wire order as ``(name, value)`` with the name
    lower-cased (field names are case-insensitive, RFC 9110 §5.1) and the value stripped of
    surrounding whitespace; ``length`` is the number of bytes the head took, final CRLF included.
    """

    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]
    length: int

    def get_all(self, name: str) -> list[str]:
        """Values of every field line called ``name`` (case-insensitive), in wire order."""
        key = name.lower()
        return [value for field, value in self.headers if field == key]

    def combined(self, name: str, *, separator: str = ", ") -> str | None:
        """All lines of field ``name`` joined into one list value (RFC 9110 §5.3), or ``None``."""
        values = self.get_all(name)
        return separator.join(values) if values else None


def build_request(*, host: str, path: str = "/", xff: str | None = None) -> bytes:
    """The bytes of an HTTP/1.1 ``GET`` a simulated client sends.

    ``xff`` adds a client-supplied ``X-Forwarded-For`` line (a spoofing or upstream-proxy client,
    I5); ``None`` sends none. Raises :class:`ValueError` naming the parameter if a value would
    break the request framing.
    """
    for name, value in (("host", host), ("path", path), ("xff", xff)):
        if value is None:
            continue
        raw = value.encode("latin-1", "replace")
        if not raw or raw.translate(None, _FIELD_VALUE_OK):
            raise ValueError(f"build_request: {name}={value!r} must be non-empty printable text")
    if not path.startswith("/") or " " in path:
        raise ValueError(f"build_request: path={path!r} must start with '/' and contain no space")
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", f"User-Agent: {_USER_AGENT}"]
    if xff is not None:
        lines.append(f"X-Forwarded-For: {xff}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_request_head(data: bytes) -> RequestHead | None:
    """Parse the request head at the start of ``data``.

    Returns ``None`` when ``data`` holds no complete head yet (sans-I/O: the caller waits for more
    bytes), the :class:`RequestHead` otherwise; bytes after the head are ignored. Raises
    :class:`HTTPRequestError` for anything a strict server rejects with 400.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if len(data) > MAX_HEAD_BYTES:
            raise HTTPRequestError(f"request head longer than {MAX_HEAD_BYTES} bytes", offset=0)
        # A complete request-line that is not HTTP shows up early: report it now rather than
        # wait for a blank line that may never come (E6: PROXY bytes on an HTTP listener).
        first_eol = data.find(b"\r\n")
        if first_eol >= 0:
            _request_line(data[:first_eol])
            _llhttp(data, _Fields())
        elif data.find(b"\n") >= 0:
            raise HTTPRequestError("bare LF in request head (lines end in CRLF)", offset=0)
        return None
    if end + 4 > MAX_HEAD_BYTES:
        raise HTTPRequestError(f"request head longer than {MAX_HEAD_BYTES} bytes", offset=0)
    head = data[: end + 4]
    cached = _HEADS.get(head)
    if cached is not None:
        return cached
    parsed = _parse(head)
    if len(_HEADS) < _CACHE_MAX:
        _HEADS[head] = parsed
    return parsed


class _Fields:
    """httptools callbacks: collect the field lines."""

    __slots__ = ("fields",)

    def __init__(self) -> None:
        self.fields: list[tuple[bytes, bytes]] = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name, value))


def _parse(head: bytes) -> RequestHead:
    eol = head.find(b"\r\n")
    method, target, version = _request_line(head[:eol])
    sink = _Fields()
    _llhttp(head, sink)
    headers = tuple(
        (name.decode("latin-1").lower(), value.strip(b" \t").decode("latin-1"))
        for name, value in sink.fields
    )
    if version == "HTTP/1.1":
        hosts = sum(1 for name, _ in headers if name == "host")
        if hosts != 1:
            raise HTTPRequestError(f"HTTP/1.1 request needs exactly one Host field, got {hosts}")
    return RequestHead(method, target, version, headers, len(head))


def _request_line(line: bytes) -> tuple[str, str, str]:
    # RFC 9112 §3: exactly one SP between the parts (llhttp tolerates more); §2.3: the version.
    parts = line.split(b" ")
    if len(parts) != 3 or not all(parts):
        raise HTTPRequestError(
            f"request-line must be 'method SP target SP version', got {line[:40]!r}", offset=0
        )
    method, target, version = parts
    if version not in _VERSIONS:
        raise HTTPRequestError(
            f"unsupported HTTP version {version[:20]!r} (allowed: HTTP/1.1, HTTP/1.0)",
            offset=len(method) + len(target) + 2,
        )
    return method.decode("latin-1"), target.decode("latin-1"), version.decode("ascii")


def _llhttp(data: bytes, sink: _Fields) -> None:
    try:
        httptools.HttpRequestParser(sink).feed_data(data)
    except httptools.HttpParserInvalidMethodError:
        method = data.split(b" ", 1)[0]
        raise HTTPRequestError(f"invalid method {method[:20]!r}", offset=0) from None
    except httptools.HttpParserInvalidURLError:
        method, _, rest = data.partition(b" ")
        target = rest.split(b" ", 1)[0]
        raise HTTPRequestError(
            f"invalid request-target {target[:40]!r}", offset=len(method) + 1
        ) from None
    except httptools.HttpParserError as exc:
        raise _locate(data, str(exc)) from None


def _locate(data: bytes, reason: str) -> HTTPRequestError:
    """Name the line, field name or field value where llhttp stopped, with its offset."""
    good, bad = 0, len(data)  # the longest prefix llhttp accepts; the shortest it rejects
    while bad - good > 1:
        mid = (good + bad) // 2
        try:
            httptools.HttpRequestParser(_Fields()).feed_data(data[:mid])
        except httptools.HttpParserError:
            bad = mid
        else:
            good = mid
    pos = bad - 1  # the byte llhttp refused
    start = data.rfind(b"\r\n", 0, pos) + 2 if data.rfind(b"\r\n", 0, pos) >= 0 else 0
    stop = data.find(b"\r\n", start)
    line = data[start : stop if stop >= 0 else len(data)]
    if start == 0:
        return HTTPRequestError(f"invalid request-line ({reason})", offset=0)
    if line[:1] in (b" ", b"\t"):
        return HTTPRequestError(f"obs-fold field line ({reason}; RFC 9112 §5.2)", offset=start)
    colon = line.find(b":")
    if colon <= 0:
        return HTTPRequestError("field line without a field name and ':'", offset=start)
    name = line[:colon]
    if pos < start + colon:
        return HTTPRequestError(f"invalid field name {name!r} ({reason})", offset=start)
    return HTTPRequestError(
        f"control character in the value of field {name.decode('latin-1')!r} ({reason})",
        offset=start + colon + 1,
    )
