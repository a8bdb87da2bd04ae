"""An incremental decoder for a stream that arrives in pieces (h11's style, sans-I/O).

:func:`~sim.proxy_protocol.decode` looks at a whole buffer each time it is called, so a reader
that calls it after every read of a slowly arriving header re-reads the same bytes again and
again: quadratic in the header size (a 64 KiB header fed one byte at a time is 2 x 10^9 byte
looks). :class:`Decoder` keeps its state between calls instead and looks at each byte a
bounded number of times:

* until the signature is complete, only the first 12 bytes are compared;
* a v2 header is judged on its 16 fixed bytes (version, command, family, length and the
  limits), then nothing is looked at until the announced length is in, and the whole header is
  decoded once;
* a v1 line is checked byte by byte by the scanner of ``_v1`` as the bytes arrive (so errors
  name the same byte as for a whole line), and decoded once its LF is in.

``bytes_scanned`` counts that work, for tests that prove it is linear without timing anything.
"""

from __future__ import annotations

from ._codec import Buffer, DecodeLimits, _undetermined
from ._header import ProxyHeader
from ._types import V1_PREFIX, V2_FIXED_SIZE, V2_SIGNATURE, ProxyProtocolError
from ._v1 import V1Scanner, parse_line
from ._v2 import decode_v2

_DEFAULT_LIMITS = DecodeLimits()
# The shortest complete headers: "PROXY UNKNOWN\r\n" (15 bytes) and a v2 LOCAL header (16).
_MIN_HEADER = 15


class Decoder:
    """Feed it the bytes of a connection as they arrive; it returns the header once complete.

    >>> d = Decoder()
    >>> d.feed(b"PROXY TCP4 192.0.2.1 ") is None      # need more data
    True
    >>> h = d.feed(b"198.51.100.1 4242 443\\r\\nGET / HTTP/1.1\\r\\n")
    >>> (str(h.src_addr), h.src_port, d.header_size, d.rest)
    ('192.0.2.1', 4242, 44, b'GET / HTTP/1.1\\r\\n')

    ``feed(data)`` returns ``None`` while more bytes are needed and the header once it is
    complete; bytes after the header are kept in :attr:`rest` (later feeds append to it, and
    keep returning the same header). ``feed(b"")`` means the stream ended: before the header is
    complete that is an error. An invalid byte raises :class:`ProxyProtocolError` with the
    same message and offset as :func:`decode` gives for the same bytes; after an error, every
    call raises it again.

    Args:
        limits: the listener's limits, as for :func:`decode` (``None``: ``DecodeLimits()``).
    """

    __slots__ = (
        "_buf",
        "_error",
        "_header",
        "_limits",
        "_rest",
        "_scanner",
        "_size",
        "_version",
        "bytes_scanned",
    )

    def __init__(self, limits: DecodeLimits | None = None) -> None:
        if limits is not None and limits.__class__ is not DecodeLimits:
            raise ProxyProtocolError(
                f"limits: expected a DecodeLimits or None, got {type(limits).__name__}",
                field="limits",
            )
        self._limits = _DEFAULT_LIMITS if limits is None else limits
        self._buf = bytearray()
        self._rest = bytearray()
        self._version: int | None = None
        self._size: int | None = None
        self._header: ProxyHeader | None = None
        self._error: ProxyProtocolError | None = None
        self._scanner: V1Scanner | None = None
        #: How many bytes the decoder has looked at or copied so far (a diagnostic: it grows
        #: linearly with the bytes fed, however they are split).
        self.bytes_scanned = 0

    @property
    def header(self) -> ProxyHeader | None:
        """The decoded header, once complete."""
        return self._header

    @property
    def version(self) -> int | None:
        """1 or 2 as soon as the signature (``"PROXY "`` or the 12-byte v2 one) is complete."""
        return self._version

    @property
    def header_size(self) -> int | None:
        """The header's size in bytes: known after 16 bytes of a v2 header, at the end of v1."""
        return self._size

    @property
    def received(self) -> int:
        """All bytes fed so far, header and rest."""
        return len(self._buf) + len(self._rest)

    @property
    def rest(self) -> bytes:
        """The bytes fed after the header (``b""`` until the header is complete)."""
        return bytes(self._rest)

    @property
    def next_read_size(self) -> int:
        """How many bytes can be read next without reading past the header (0 once complete).

        A reader that reads at most this much never takes a byte of the payload, so it can
        hand its stream to TLS or HTTP code afterwards.
        """
        if self._header is not None:
            return 0
        n = len(self._buf)
        if self._version == 2:
            if self._size is not None:
                return self._size - n
            return V2_FIXED_SIZE - n
        if n < _MIN_HEADER:
            return _MIN_HEADER - n
        # Inside a v1 line: it ends with CRLF, so unless the last byte is CR at least 2 more
        # bytes belong to it; after a CR only the LF can be ours.
        return 1 if self._buf[-1] == 0x0D else 2

    def feed(self, data: Buffer) -> ProxyHeader | None:
        """Add ``data``; return the header once it is complete, ``None`` while more is needed."""
        if self._error is not None:
            raise self._error
        try:
            return self._feed(data)
        except ProxyProtocolError as exc:
            self._error = exc
            raise

    def _feed(self, data: Buffer) -> ProxyHeader | None:
        try:
            view = memoryview(data)
            if view.itemsize != 1 or view.ndim != 1:
                view = view.cast("B")
        except (TypeError, ValueError):
            raise ProxyProtocolError(
                f"data: expected bytes, bytearray or memoryview, got {type(data).__name__}",
                field="data",
            ) from None
        size = len(view)
        self.bytes_scanned += size
        if self._header is not None:
            self._rest += view
            return self._header
        if not size:
            what = {None: "PROXY", 1: "v1", 2: "v2"}[self._version]
            raise ProxyProtocolError(
                f"header: the stream ended after {len(self._buf)} byte(s), before the {what} "
                "header was complete",
                offset=len(self._buf),
                field="header",
            )
        buf = self._buf
        start = len(buf)
        buf += view
        limits = self._limits
        if self._version is None:
            head = bytes(buf[: len(V2_SIGNATURE)])
            self.bytes_scanned += len(head)
            if limits.allow_v2 and head == V2_SIGNATURE:
                self._version = 2
            elif limits.allow_v1 and head[:6] == V1_PREFIX:
                self._version = 1
                self._scanner = V1Scanner(limits.max_v1_line_size)
                start = 6
            else:
                _undetermined(head, limits.allow_v1, limits.allow_v2)  # raises on garbage
                return None
        if self._version == 2:
            return self._feed_v2()
        return self._feed_v1(start)

    def _feed_v2(self) -> ProxyHeader | None:
        buf = self._buf
        n = len(buf)
        limits = self._limits
        if self._size is None:
            fixed = bytes(buf[:V2_FIXED_SIZE])
            self.bytes_scanned += len(fixed)
            # Checks version, command, family, length and max_v2_header_size; None = more.
            decode_v2(fixed, len(fixed), limits.max_v2_header_size, 0, 0)
            if n < V2_FIXED_SIZE:
                return None
            self._size = V2_FIXED_SIZE + int.from_bytes(fixed[14:16], "big")
        size = self._size
        if n < size:
            return None
        wire = bytes(buf[:size])
        self.bytes_scanned += 2 * size  # the copy, then the one decode over it
        result = decode_v2(
            wire, size, limits.max_v2_header_size, limits.max_tlvs, limits.max_tlv_value_size
        )
        assert result is not None
        return self._complete(result[0], size)

    def _feed_v1(self, start: int) -> ProxyHeader | None:
        buf = self._buf
        scanner = self._scanner
        assert scanner is not None
        max_line = scanner.max_line
        lf = buf.find(b"\n", max(start, 6), max_line)
        self.bytes_scanned += max(0, min(len(buf), max_line) - max(start, 6))
        if lf >= 0:
            line = bytes(buf[: lf + 1])
            self.bytes_scanned += len(line)
            header = parse_line(line, lf)
            if header is not None:
                return self._complete(header, lf + 1)
            before = scanner.work
            scanner.scan(line, lf + 1)  # raises at the first offending byte
            self.bytes_scanned += scanner.work - before
            raise ProxyProtocolError(  # pragma: no cover - parse_line and the scanner agree
                "line: not a valid v1 line", offset=6, field="line"
            )
        before = scanner.work
        try:
            scanner.scan(buf, min(len(buf), max_line))
        finally:
            self.bytes_scanned += scanner.work - before
        return None

    def _complete(self, header: ProxyHeader, size: int) -> ProxyHeader:
        self._header = header
        self._size = size
        self._rest = self._buf[size:]
        self._buf = self._buf[:size]
        return header
