"""The HTTP/1.1 request bytes and the strict request-head parser (sim.net.http)."""

from __future__ import annotations

import pytest

from sim.net.http import (
    MAX_HEAD_BYTES,
    HTTPRequestError,
    build_request,
    parse_request_head,
)

REQUEST = build_request(host="app.example.com", path="/hello", xff="6.6.6.6")


def test_build_request_bytes() -> None:
    assert build_request(host="app.example.com") == (
        b"GET / HTTP/1.1\r\nHost: app.example.com\r\nUser-Agent: srcip-lab-client/1.0\r\n\r\n"
    )
    assert REQUEST.endswith(b"X-Forwarded-For: 6.6.6.6\r\n\r\n")
    assert REQUEST.startswith(b"GET /hello HTTP/1.1\r\n")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"host": "a\r\nX-Evil: 1"}, "host"),
        ({"host": ""}, "host"),
        ({"host": "a", "xff": "1.2.3.4\n"}, "xff"),
        ({"host": "a", "path": "no-slash"}, "path"),
        ({"host": "a", "path": "/a b"}, "path"),
    ],
)
def test_build_request_rejects_framing_breakers(kwargs: dict[str, str], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        build_request(**kwargs)


def test_parse_round_trip() -> None:
    head = parse_request_head(REQUEST)
    assert head is not None
    assert (head.method, head.target, head.version) == ("GET", "/hello", "HTTP/1.1")
    assert head.headers == (
        ("host", "app.example.com"),
        ("user-agent", "srcip-lab-client/1.0"),
        ("x-forwarded-for", "6.6.6.6"),
    )
    assert head.length == len(REQUEST)


def test_parse_whole_byte_by_byte_and_with_trailing_bytes() -> None:
    # h11 style: every prefix is "need more data", the full head parses, trailing bytes stay.
    for cut in range(len(REQUEST)):
        assert parse_request_head(REQUEST[:cut]) is None, cut
    head = parse_request_head(REQUEST + b"BODY-OR-NEXT")
    assert head is not None and head.length == len(REQUEST)


def test_multiple_xff_lines_are_one_list() -> None:
    data = (
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-for:2.2.2.2 \r\n\r\n"
    )
    head = parse_request_head(data)
    assert head is not None
    assert head.get_all("X-Forwarded-For") == ["1.1.1.1", "2.2.2.2"]
    assert head.combined("x-forwarded-for") == "1.1.1.1, 2.2.2.2"  # RFC 9110 §5.3
    assert head.combined("x-forwarded-for", separator=",") == "1.1.1.1,2.2.2.2"
    assert head.combined("x-missing") is None


def test_http10_without_host_is_fine() -> None:
    head = parse_request_head(b"GET / HTTP/1.0\r\n\r\n")
    assert head is not None and head.version == "HTTP/1.0" and head.headers == ()


@pytest.mark.parametrize(
    ("data", "message", "offset"),
    [
        (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "invalid field name", 16),  # RFC 9112 §5.1
        (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", "field", 25),  # obs-fold §5.2
        (b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", "control character", 21),  # bare LF
        (b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n", "control character", 21),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", "unsupported HTTP version", 6),
        (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "request-line", 0),
        (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "invalid method", 0),
        (b"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", "request-target", 4),
        (b"GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n", "exactly one Host", None),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "exactly one Host", None),
        (b"GET / HTTP/1.1\r\nnocolon\r\n\r\n", "without a field name", 16),
        # E6: what an HTTP listener makes of PROXY bytes.
        (b"PROXY TCP4 10.0.1.7 10.0.0.5 40000 80\r\nGET / HTTP/1.1\r\n\r\n", "request-line", 0),
        (b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c", "request-line", 0),
    ],
)
def test_strict_errors(data: bytes, message: str, offset: int | None) -> None:
    with pytest.raises(HTTPRequestError, match=message) as info:
        parse_request_head(data)
    assert info.value.offset == offset
    assert isinstance(info.value, ValueError)


def test_bad_request_line_is_reported_before_the_blank_line() -> None:
    with pytest.raises(HTTPRequestError, match="request-line"):
        parse_request_head(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET / HTT")
    with pytest.raises(HTTPRequestError, match="bare LF"):
        parse_request_head(b"GET / HTTP/1.1\n")


def test_oversized_head() -> None:
    with pytest.raises(HTTPRequestError, match="longer than"):
        parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * MAX_HEAD_BYTES)
    big = b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n"
    with pytest.raises(HTTPRequestError, match="longer than"):
        parse_request_head(big)
