"""The HTTP/1.1 bytes the simulated clients send, and a small strict request-head parser.

Real component modelled: the first request of an HTTP/1.1 connection as a client writes it and as
a server (HAProxy in ``mode http``, Envoy's HTTP/1 codec in the ingress gateway and the sidecar)
reads its head. Only the request head matters to the question the simulator answers (which
address ends up in ``X-Forwarded-For``), so bodies are never sent (every request is a ``GET``).

Rules enforced (RFC 9112 unless noted), each answered with :class:`HTTPRequestError`, which the
gateway turns into ``400 Bad Request`` (E6):

* request-line = ``method SP request-target SP HTTP-version`` with single spaces (§3);
  the method is a token (RFC 9110 §9.1), the target has no control characters or spaces,
  the version is ``HTTP/1.1`` or ``HTTP/1.0`` (§2.3);
* every line ends in CRLF; a bare CR or LF inside the head is rejected (§2.2 allows a server to
  accept a bare LF; strict servers, and this parser, do not);
* field-line = ``field-name ":" OWS field-value OWS`` with no whitespace before the colon (§5.1,
  "MUST respond with 400") and no obs-fold continuation lines (§5.2, reject);
* field names are tokens, field values have no control characters except HTAB (RFC 9110 §5.5);
* an HTTP/1.1 request carries exactly one ``Host`` field (§3.2, "MUST respond with 400").

Several ``X-Forwarded-For`` lines form one list, combined in order with commas
(RFC 9110 §5.3); :meth:`RequestHead.combined` does that.

Left out: bodies, ``Transfer-Encoding``/``Content-Length`` framing, absolute-form targets,
pipelining, header size limits other than :data:`MAX_HEAD_BYTES`, and HTTP/2.
"""

from __future__ import annotations

from typing import NamedTuple

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

# RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" /
# "_" / "`" / "|" / "~" / DIGIT / ALPHA. `bytes.translate(None, delete)` removes every allowed
# byte in C, so a non-empty result means an illegal byte without a Python-level loop.
_TCHAR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# RFC 9110 §5.5: field-value octets are VCHAR, obs-text (0x80-0xFF), SP and HTAB.
_FIELD_VALUE_OK = bytes([0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])
# RFC 9112 §3.2: a request-target has no whitespace or control characters.
_TARGET_OK = bytes([*range(0x21, 0x7F), *range(0x80, 0x100)])
_VERSIONS = frozenset((b"HTTP/1.1", b"HTTP/1.0"))
# Request-lines and field names already validated by the strict parser, so the fast path can
# accept them with one dict lookup. All caches are bounded: past _CACHE_MAX entries new ones are
# not added (parsing still works, only slower).
_CACHE_MAX = 4096
_REQUEST_LINES: dict[str, tuple[str, str, str]] = {}
_FIELD_NAMES: dict[str, str] = {}
# Whole heads already parsed: a simulation sends the same few heads (one per client address at
# most) millions of times, and RequestHead is immutable, so a hit returns the same object.
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
    (A named tuple rather than a frozen dataclass: it is built for every simulated request and
    costs a quarter as much.)
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
            _parse_request_line(data[:first_eol])
        elif data.find(b"\n") >= 0:
            raise HTTPRequestError("bare LF in request head (lines end in CRLF)", offset=0)
        return None
    if end + 4 > MAX_HEAD_BYTES:
        raise HTTPRequestError(f"request head longer than {MAX_HEAD_BYTES} bytes", offset=0)
    head = data[:end]
    cached = _HEADS.get(head)
    if cached is not None:
        return cached
    # Fast path (the simulator parses every simulated request twice): one C-level pass over the
    # whole head -- deleting every octet allowed in a field value must leave exactly the CRLFs --
    # then cached validation of the request-line and field names, which repeat across requests.
    # Anything unusual goes to the line-by-line parser, which finds and reports the fault.
    parsed = None
    if len(head.translate(None, _FIELD_VALUE_OK)) == 2 * head.count(b"\r\n"):
        parsed = _parse_clean(head)
    if parsed is None:
        parsed = _parse_strict(head)
    if len(_HEADS) < _CACHE_MAX:
        _HEADS[head] = parsed
    return parsed


def _parse_clean(head: bytes) -> RequestHead | None:
    lines = head.decode("latin-1").split("\r\n")
    request_line = _REQUEST_LINES.get(lines[0])
    if request_line is None:
        return None
    headers: list[tuple[str, str]] = []
    hosts = 0
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        key = _FIELD_NAMES.get(name)
        if key is None or not colon:
            return None
        if key == "host":
            hosts += 1
        headers.append((key, value.strip(" \t")))
    if hosts != 1 and request_line[2] == "HTTP/1.1":
        return None
    return RequestHead(*request_line, tuple(headers), len(head) + 4)


def _parse_strict(head: bytes) -> RequestHead:
    lines = head.split(b"\r\n")
    method, target, version = _parse_request_line(lines[0])
    headers: list[tuple[str, str]] = []
    hosts = 0
    offset = len(lines[0]) + 2
    for line in lines[1:]:
        colon = line.find(b":")
        if colon <= 0:
            raise HTTPRequestError("field line without a field name and ':'", offset=offset)
        name = line[:colon]
        if name.translate(None, _TCHAR):
            # Covers whitespace before the colon (§5.1) and obs-fold lines starting with SP/HTAB
            # (§5.2), both rejected with 400.
            raise HTTPRequestError(f"invalid field name {name!r}", offset=offset)
        value = line[colon + 1 :]
        if value.translate(None, _FIELD_VALUE_OK):
            raise HTTPRequestError(
                f"control character in the value of field {name.decode('ascii')!r}",
                offset=offset + colon + 1,
            )
        key = name.decode("ascii").lower()
        if len(_FIELD_NAMES) < _CACHE_MAX:
            _FIELD_NAMES[name.decode("ascii")] = key
        if key == "host":
            hosts += 1
        headers.append((key, value.strip(b" \t").decode("latin-1")))
        offset += len(line) + 2
    if version == "HTTP/1.1" and hosts != 1:
        raise HTTPRequestError(f"HTTP/1.1 request needs exactly one Host field, got {hosts}")
    return RequestHead(method, target, version, tuple(headers), len(head) + 4)


def _parse_request_line(line: bytes) -> tuple[str, str, str]:
    parts = line.split(b" ")
    if len(parts) != 3:
        raise HTTPRequestError(
            f"request-line must be 'method SP target SP version', got {line[:40]!r}", offset=0
        )
    method, target, version = parts
    if not method or method.translate(None, _TCHAR):
        raise HTTPRequestError(f"invalid method {method[:20]!r}", offset=0)
    if not target or target.translate(None, _TARGET_OK):
        raise HTTPRequestError(f"invalid request-target {target[:40]!r}", offset=len(method) + 1)
    if version not in _VERSIONS:
        raise HTTPRequestError(
            f"unsupported HTTP version {version[:20]!r} (allowed: HTTP/1.1, HTTP/1.0)",
            offset=len(method) + len(target) + 2,
        )
    parsed = method.decode("ascii"), target.decode("latin-1"), version.decode("ascii")
    if len(_REQUEST_LINES) < _CACHE_MAX:
        _REQUEST_LINES[line.decode("latin-1")] = parsed
    return parsed
