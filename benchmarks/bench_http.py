"""Which HTTP/1.1 parser for the request heads: httptools (llhttp) or h11? Measured in one run.

Parses the head a simulated client sends behind HAProxy ``mode http`` (request-line, Host,
User-Agent, X-Forwarded-For) with ``httptools.HttpRequestParser`` and with ``h11.Connection``
(server role), each fresh per request as a server meets them, best of several repeats, and
prints microseconds per head and the ratio. ``sim.net.http.parse_request_head`` (httptools plus
our framing and RFC checks) is shown uncached and cached, as the simulator calls it.

    python benchmarks/bench_http.py
"""

from __future__ import annotations

import timeit

import httptools

from sim.net import http

HEAD = http.build_request(host="app.example.com", xff="10.0.1.7")
NUMBER = 20_000


class _Sink:
    def on_header(self, name: bytes, value: bytes) -> None:
        pass


def with_httptools() -> None:
    httptools.HttpRequestParser(_Sink()).feed_data(HEAD)


def with_h11() -> None:
    import h11

    conn = h11.Connection(h11.SERVER)
    conn.receive_data(HEAD)
    conn.next_event()


def ours_uncached() -> None:
    http._HEADS.clear()
    http.parse_request_head(HEAD)


def ours_cached() -> None:
    http.parse_request_head(HEAD)


def best_us(func: object) -> float:
    return min(timeit.repeat(func, number=NUMBER, repeat=5)) / NUMBER * 1e6  # type: ignore[arg-type]


def main() -> None:
    rows = [("httptools (llhttp)", best_us(with_httptools))]
    try:
        rows.append(("h11", best_us(with_h11)))
    except ImportError:
        print("h11 is not installed: pip install h11 to compare")
    rows.append(("sim.net.http, uncached", best_us(ours_uncached)))
    rows.append(("sim.net.http, cached", best_us(ours_cached)))
    base = rows[0][1]
    print(f"{'parser':<26} {'us/head':>8} {'x httptools':>12}")
    for name, us in rows:
        print(f"{name:<26} {us:>8.2f} {us / base:>12.1f}")


if __name__ == "__main__":
    main()
