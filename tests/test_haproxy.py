"""The simulated HAProxy (sim.net.haproxy): bytes it writes upstream, check bytes, check states.

The ``LAB_*`` vectors were captured from Debian's HAProxy 2.6.12 on loopback (``send-proxy-v2
proxy-v2-options ssl,unique-id,authority,crc32c``, ``send-proxy``, ``mode http`` + ``option
forwardfor``); the model must produce them byte for byte.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from sim.net.haproxy import HAProxy, HAProxyConfig
from sim.net.http import HTTPRequestError, build_request
from sim.proxy_protocol import Command, Family, TLVType, decode

REQUEST = build_request(host="app.example.com")
CLIENT = {"client_ip": "10.0.1.7", "client_port": 40001}
SERVER_SIDE = {"src_port": 51000, "server_ip": "10.0.0.100", "server_port": 80}

LAB_REQUEST = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
LAB_V2_ALL_OPTIONS = bytes.fromhex(
    "0d0a0d0a000d0a515549540a"  # signature
    "2111001e"  # PROXY, TCP4, 30 bytes follow
    "7f000001"
    "7f000001"
    "b334"
    "47e1"  # client 127.0.0.1:45876 -> frontend 127.0.0.1:18401
    "030004b9ecb771"  # CRC32C
    "050000"  # UNIQUE_ID, empty (no unique-id-format)
    "2000050000000000"  # SSL: client 0, verify 0
)
LAB_V2_CHECK_ALL_OPTIONS = bytes.fromhex(
    "0d0a0d0a000d0a515549540a2000000f030004889da1df2000050000000000"
)
LAB_V1_CHECK = b"PROXY TCP4 127.0.0.1 127.0.0.1 50568 18503\r\n"
LAB_HTTP_IN = b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"
LAB_HTTP_OUT = (
    b"GET / HTTP/1.1\r\nhost: a\r\nuser-agent: x\r\nx-forwarded-for: 6.6.6.6\r\n"
    b"x-forwarded-for: 127.0.0.1\r\n\r\n"
)


def make(**config: Any) -> HAProxy:
    return HAProxy(HAProxyConfig(**config), ip="10.0.0.5", frontend_ip="10.0.0.5", frontend_port=80)


def test_tcp_without_proxy_passes_bytes_unchanged() -> None:
    assert make().upstream_bytes(request=REQUEST, **CLIENT, **SERVER_SIDE) == REQUEST


def test_send_proxy_v2_header_carries_client_and_frontend() -> None:
    data = make(send_proxy="v2").upstream_bytes(request=REQUEST, **CLIENT, **SERVER_SIDE)
    assert len(data) == 28 + len(REQUEST)  # H3: IPv4 v2 header is 28 bytes
    assert data[12:16] == bytes.fromhex("2111000c")
    decoded = decode(data)
    assert decoded is not None
    header, consumed = decoded
    assert consumed == 28
    assert header.version == 2 and header.command is Command.PROXY
    assert header.family is Family.TCP4
    # H1: addresses of the client-side connection, not of HAProxy's server-side one.
    assert header.src_addr == ipaddress.ip_address("10.0.1.7") and header.src_port == 40001
    assert header.dst_addr == ipaddress.ip_address("10.0.0.5") and header.dst_port == 80
    assert data[consumed:] == REQUEST


def test_send_proxy_v1_line() -> None:
    data = make(send_proxy="v1").upstream_bytes(request=REQUEST, **CLIENT, **SERVER_SIDE)
    assert data == b"PROXY TCP4 10.0.1.7 10.0.0.5 40001 80\r\n" + REQUEST


def test_v2_options_match_haproxy_lab_bytes() -> None:
    hap = HAProxy(
        HAProxyConfig(
            send_proxy="v2", proxy_v2_options=("ssl", "unique-id", "authority", "crc32c")
        ),
        ip="127.0.0.1",
        frontend_ip="127.0.0.1",
        frontend_port=18401,
    )
    data = hap.upstream_bytes(
        client_ip="127.0.0.1",
        client_port=0xB334,
        request=LAB_REQUEST,
        src_port=50000,
        server_ip="127.0.0.1",
        server_port=18501,
    )
    assert data == LAB_V2_ALL_OPTIONS + LAB_REQUEST
    decoded = decode(data)
    assert decoded is not None
    assert [t.type for t in decoded[0].tlvs] == [TLVType.CRC32C, TLVType.UNIQUE_ID, TLVType.SSL]
    # H4 + lab: checks are LOCAL but keep the CRC32C and SSL TLVs.
    assert hap.check_bytes() == LAB_V2_CHECK_ALL_OPTIONS


def test_v1_check_matches_haproxy_lab_bytes() -> None:
    hap = HAProxy(
        HAProxyConfig(send_proxy="v1"), ip="127.0.0.1", frontend_ip="127.0.0.1", frontend_port=1
    )
    assert hap.check_bytes(src_port=50568, server_ip="127.0.0.1", server_port=18503) == LAB_V1_CHECK
    with pytest.raises(ValueError, match="src_port, server_ip and server_port"):
        hap.check_bytes()


def test_http_forwardfor_matches_haproxy_lab_bytes() -> None:
    hap = HAProxy(
        HAProxyConfig(mode="http"), ip="127.0.0.1", frontend_ip="127.0.0.1", frontend_port=18402
    )
    out = hap.upstream_bytes(
        client_ip="127.0.0.1",
        client_port=1234,
        request=LAB_HTTP_IN,
        src_port=50000,
        server_ip="127.0.0.1",
        server_port=18502,
    )
    assert out == LAB_HTTP_OUT  # H7: appended after the client's own XFF line


def test_http_xff_line_appended_after_client_line() -> None:
    request = build_request(host="app.example.com", xff="6.6.6.6")
    out = make(mode="http").upstream_bytes(request=request, **CLIENT, **SERVER_SIDE)
    assert out.endswith(b"x-forwarded-for: 6.6.6.6\r\nx-forwarded-for: 10.0.1.7\r\n\r\n")
    plain = make(mode="http", forwardfor=False).upstream_bytes(
        request=request, **CLIENT, **SERVER_SIDE
    )
    assert b"10.0.1.7" not in plain and plain.count(b"x-forwarded-for") == 1


def test_http_mode_rejects_garbage_with_our_error() -> None:
    with pytest.raises(HTTPRequestError):
        make(mode="http").upstream_bytes(request=b"GET /\r\n\r\n", **CLIENT, **SERVER_SIDE)
    with pytest.raises(HTTPRequestError, match="incomplete"):
        make(mode="http").upstream_bytes(request=b"GET / HTTP/1.1\r\n", **CLIENT, **SERVER_SIDE)


def test_bad_addresses_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="client_ip"):
        make(send_proxy="v2").upstream_bytes(
            request=REQUEST, client_ip="nope", client_port=1, **SERVER_SIDE
        )
    with pytest.raises(ValueError, match="different IP versions"):
        make(send_proxy="v2").upstream_bytes(
            request=REQUEST, client_ip="2001:db8::1", client_port=1, **SERVER_SIDE
        )
    with pytest.raises(ValueError, match="frontend_ip"):
        HAProxy(HAProxyConfig(), ip="10.0.0.5", frontend_ip="x", frontend_port=80)
    with pytest.raises(ValueError, match="frontend_port"):
        HAProxy(HAProxyConfig(), ip="10.0.0.5", frontend_ip="10.0.0.5", frontend_port=70000)


def test_check_bytes() -> None:
    assert make().check_bytes() == b""
    assert make(mode="http").check_bytes() == b""
    v2 = make(send_proxy="v2").check_bytes()
    assert v2 == bytes.fromhex("0d0a0d0a000d0a515549540a20000000")  # H4: 16-byte LOCAL
    decoded = decode(v2)
    assert decoded is not None and decoded[0].command is Command.LOCAL
    v1 = make(send_proxy="v1").check_bytes(src_port=50001, server_ip="10.0.0.100", server_port=80)
    assert v1 == b"PROXY TCP4 10.0.0.5 10.0.0.100 50001 80\r\n"


def test_check_state_machine_defaults() -> None:
    hap = make()  # inter 2 s, fall 3, rise 2 (H5)
    assert hap.server_up
    # HAProxy starts a server at health=rise: "up, but will fall down at first failure".
    assert hap.record_check(False) == "DOWN" and not hap.server_up
    assert hap.record_check(False) is None
    assert hap.record_check(True) is None and not hap.server_up
    assert hap.record_check(True) == "UP" and hap.server_up
    # Once fully up, `fall` consecutive failures are needed ...
    assert hap.record_check(False) is None
    assert hap.record_check(False) is None
    assert hap.record_check(True) is None  # ... and a pass in between restores full health
    assert [hap.record_check(False) for _ in range(3)] == [None, None, "DOWN"]
    # A failure while coming back up restarts the rise count.
    assert hap.record_check(True) is None
    assert hap.record_check(False) is None
    assert [hap.record_check(True) for _ in range(2)] == [None, "UP"]


@pytest.mark.parametrize(("fall", "rise"), [(1, 1), (2, 5), (5, 1)])
def test_check_state_machine_fall_rise(fall: int, rise: int) -> None:
    hap = make(fall=fall, rise=rise)
    hap.record_check(True)  # reach full health
    for _ in range(rise):
        hap.record_check(True)
    results = [hap.record_check(False) for _ in range(fall)]
    assert results == [None] * (fall - 1) + ["DOWN"]
    results = [hap.record_check(True) for _ in range(rise)]
    assert results == [None] * (rise - 1) + ["UP"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "udp"}, "mode='udp': allowed values are 'tcp', 'http'"),
        ({"send_proxy": "v3"}, "send_proxy='v3': allowed values are None, 'v1', 'v2'"),
        ({"mode": "http", "send_proxy": "v2"}, "send_proxy='v2' with mode='http'"),
        ({"inter_s": 0}, "inter_s=0"),
        ({"inter_s": -1.0}, "inter_s=-1.0"),
        ({"inter_s": "2s"}, "inter_s='2s'"),
        ({"fall": 0}, "fall=0: must be an integer >= 1"),
        ({"rise": 1.5}, "rise=1.5: must be an integer >= 1"),
        ({"send_proxy": "v2", "proxy_v2_options": ("cert-cn",)}, "unknown option"),
        ({"send_proxy": "v2", "proxy_v2_options": ["crc32c"]}, "must be a tuple"),
        ({"send_proxy": "v2", "proxy_v2_options": ("crc32c", "crc32c")}, "repeated"),
        ({"send_proxy": "v1", "proxy_v2_options": ("crc32c",)}, "needs send_proxy='v2'"),
        ({"proxy_v2_options": ("ssl",)}, "needs send_proxy='v2'"),
        ({"check": "yes"}, "must be bool"),
    ],
)
def test_config_validation_messages(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="HAProxyConfig") as info:
        HAProxyConfig(**kwargs)
    assert message in str(info.value)


def test_config_is_frozen_keyword_only() -> None:
    config = HAProxyConfig(send_proxy="v2", proxy_v2_options=("crc32c",))
    with pytest.raises(AttributeError):
        config.mode = "http"  # type: ignore[misc]
    with pytest.raises(TypeError):
        HAProxyConfig("tcp")  # type: ignore[misc]
