"""The Istio ingress gateway element (sim.net.gateway), with FACTS.md C4 at the element level."""

from __future__ import annotations

import ipaddress

import pytest

from sim.net.gateway import IngressGateway, trusted_from_xff
from sim.net.haproxy import HAProxy, HAProxyConfig
from sim.net.http import build_request, parse_request_head
from sim.net.sidecar import Sidecar
from sim.proxy_protocol import Command, ProxyHeader, encode

C_IP, C_PORT = "10.0.1.7", 40001
L_NODE_IP = "10.0.0.13"  # the announcing node's NIC address
L_TUNNEL_IP = "172.16.3.0"  # the announcing node's Calico tunnel address (N2/N3)
SNAT_PORT = 61001
GW_POD_IP = "172.16.2.10"
REQUEST = build_request(host="app.example.com")
V2_LOCAL = bytes.fromhex("0d0a0d0a000d0a515549540a20000000")


def gateway(*, pp: bool = False, n: int = 0) -> IngressGateway:
    return IngressGateway(pod="gw-1", pod_ip=GW_POD_IP, proxy_protocol=pp, num_trusted_proxies=n)


def haproxy_bytes(config: HAProxyConfig, request: bytes = REQUEST) -> bytes:
    hap = HAProxy(config, ip="10.0.0.5", frontend_ip="10.0.0.5", frontend_port=80)
    return hap.upstream_bytes(
        client_ip=C_IP,
        client_port=C_PORT,
        request=request,
        src_port=50000,
        server_ip="10.0.0.100",
        server_port=80,
    )


V2 = HAProxyConfig(send_proxy="v2")
HTTP = HAProxyConfig(mode="http")

# FACTS.md C4 "What the logs show": (setup, bytes reaching the gateway, its L4 peer, filter, N,
# gateway DRA, XFF sent to the app, sidecar DRA). The client sends no XFF itself.
C4_ROWS = [
    ("cluster-gw-on-L", REQUEST, L_NODE_IP, False, 0,
     f"{L_NODE_IP}:{SNAT_PORT}", L_NODE_IP, f"{L_NODE_IP}:0"),
    ("cluster-gw-on-other-node", REQUEST, L_TUNNEL_IP, False, 0,
     f"{L_TUNNEL_IP}:{SNAT_PORT}", L_TUNNEL_IP, f"{L_TUNNEL_IP}:0"),
    ("local-served", REQUEST, C_IP, False, 0, f"{C_IP}:{C_PORT}", C_IP, f"{C_IP}:0"),
] + [
    row
    for snat in (L_NODE_IP, L_TUNNEL_IP)
    for row in [
        (f"haproxy-v2-cluster-pp-N0-{snat}", haproxy_bytes(V2), snat, True, 0,
         f"{C_IP}:{C_PORT}", C_IP, f"{C_IP}:0"),
        (f"haproxy-http-cluster-N1-{snat}", haproxy_bytes(HTTP), snat, False, 1,
         f"{C_IP}:0", f"{C_IP},{snat}", f"{snat}:0"),
        (f"haproxy-http-cluster-N0-{snat}", haproxy_bytes(HTTP), snat, False, 0,
         f"{snat}:{SNAT_PORT}", f"{C_IP},{snat}", f"{snat}:0"),
    ]
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "peer_ip", "pp", "n", "gateway_dra", "xff_to_app", "sidecar_dra"),
    [row[1:] for row in C4_ROWS],
    ids=[row[0] for row in C4_ROWS],
)
def test_c4_what_the_logs_show(
    data: bytes,
    peer_ip: str,
    pp: bool,
    n: int,
    gateway_dra: str,
    xff_to_app: str,
    sidecar_dra: str,
) -> None:
    peer_port = C_PORT if peer_ip == C_IP else SNAT_PORT
    result = gateway(pp=pp, n=n).handle(data, peer_ip=peer_ip, peer_port=peer_port)
    assert result.outcome == "ok" and result.reason == ""
    assert f"{result.client_ip}:{result.client_port}" == gateway_dra
    assert result.xff_out == xff_to_app
    assert result.external_address == result.client_ip  # E10 (all requests external)
    seen = Sidecar().handle(result.upstream_request, peer_ip=GW_POD_IP, peer_port=55555)
    assert seen.xff == xff_to_app  # I1: the sidecar passes XFF through
    assert f"{seen.remote_ip}:{seen.remote_port}" == sidecar_dra  # E9: last XFF entry, port 0
    assert seen.app_peer_ip == "127.0.0.6"  # I8


def test_e1_proxy_header_sets_remote_address() -> None:
    result = gateway(pp=True).handle(haproxy_bytes(V2), peer_ip=L_TUNNEL_IP, peer_port=SNAT_PORT)
    assert (result.client_ip, result.client_port) == (C_IP, C_PORT)
    assert result.header is not None and result.header.command is Command.PROXY
    assert result.header.dst_addr == ipaddress.ip_address("10.0.0.5")
    v1 = gateway(pp=True).handle(
        haproxy_bytes(HAProxyConfig(send_proxy="v1")), peer_ip=L_NODE_IP, peer_port=SNAT_PORT
    )
    assert (v1.outcome, v1.client_ip, v1.client_port) == ("ok", C_IP, C_PORT)


def test_e3_local_keeps_the_real_peer() -> None:
    gw = gateway(pp=True)
    result = gw.handle(V2_LOCAL + REQUEST, peer_ip=L_NODE_IP, peer_port=SNAT_PORT)
    assert (result.outcome, result.client_ip, result.client_port) == ("ok", L_NODE_IP, SNAT_PORT)
    assert result.header is not None and result.header.command is Command.LOCAL
    assert result.xff_out == L_NODE_IP
    unknown = gw.handle(b"PROXY UNKNOWN\r\n" + REQUEST, peer_ip=L_NODE_IP, peer_port=SNAT_PORT)
    assert (unknown.outcome, unknown.client_ip) == ("ok", L_NODE_IP)
    assert gw.stats == {"found": 2, "not_found_disallowed": 0, "error": 0}


def test_e5_header_expected_but_missing_is_reset_before_http() -> None:
    gw = gateway(pp=True)
    for data in (REQUEST, b"", b"\x16\x03\x01\x02\x00"):  # plain HTTP, nothing, a TLS hello
        result = gw.handle(data, peer_ip=C_IP, peer_port=C_PORT)
        assert (result.outcome, result.reason) == ("reset", "proxy_header_missing")
        assert result.upstream_request == b"" and result.xff_out == ""
    assert gw.stats["not_found_disallowed"] == 3


@pytest.mark.parametrize(
    "data",
    [
        b"PROXY TCP4 10.0.1.7 10.0.0.5 40001\r\n" + REQUEST,  # v1 missing a field
        V2_LOCAL[:12] + b"\x31" + V2_LOCAL[13:] + REQUEST,  # v2 version 3
        V2_LOCAL[:12],  # a valid prefix: waits out listener_filters_timeout (E4)
        b"PROX",
    ],
)
def test_malformed_or_truncated_header_is_reset(data: bytes) -> None:
    gw = gateway(pp=True)
    result = gw.handle(data, peer_ip=L_NODE_IP, peer_port=SNAT_PORT)
    assert (result.outcome, result.reason) == ("reset", "proxy_header_invalid")
    assert gw.stats["error"] == 1


def test_v2_proxy_with_unix_family_is_reset() -> None:
    header = ProxyHeader.local(version=2)
    assert encode(header)  # the codec can build a LOCAL one; craft PROXY/UNIX by hand below
    unix = bytearray(V2_LOCAL[:12]) + b"\x21\x31" + (216).to_bytes(2, "big") + bytes(216)
    result = gateway(pp=True).handle(bytes(unix) + REQUEST, peer_ip=L_NODE_IP, peer_port=1)
    assert (result.outcome, result.reason) == ("reset", "proxy_header_invalid")


@pytest.mark.parametrize("config", [V2, HAProxyConfig(send_proxy="v1")], ids=["v2", "v1"])
def test_e6_header_present_but_not_expected_is_400(config: HAProxyConfig) -> None:
    result = gateway(pp=False).handle(haproxy_bytes(config), peer_ip=L_NODE_IP, peer_port=1)
    assert (result.outcome, result.reason) == ("http_400", "proxy_header_unexpected")
    assert result.upstream_request == b""


def test_bad_request_is_400() -> None:
    for pp, prefix in ((False, b""), (True, V2_LOCAL)):
        result = gateway(pp=pp).handle(prefix + b"GET /\r\n\r\n", peer_ip=C_IP, peer_port=C_PORT)
        assert (result.outcome, result.reason) == ("http_400", "bad_request")


# Envoy's docs, E9: use_remote_address=true, xff_num_trusted_hops=N -> N-th from the right of the
# incoming XFF, falling back to the immediate peer when there are fewer entries.
@pytest.mark.parametrize(
    ("incoming", "n", "trusted", "port"),
    [
        (None, 0, "192.0.2.9", 5555),
        ("203.0.113.1", 0, "192.0.2.9", 5555),
        ("203.0.113.1", 1, "203.0.113.1", 0),
        ("203.0.113.1, 198.51.100.2", 1, "198.51.100.2", 0),
        ("203.0.113.1, 198.51.100.2", 2, "203.0.113.1", 0),
        ("203.0.113.1", 2, "192.0.2.9", 5555),  # fewer entries than N -> peer
        (None, 1, "192.0.2.9", 5555),
        ("not-an-ip", 1, "192.0.2.9", 5555),  # Envoy cannot parse it -> peer
    ],
)
def test_e9_trusted_client_address(incoming: str | None, n: int, trusted: str, port: int) -> None:
    request = build_request(host="a", xff=incoming)
    result = gateway(n=n).handle(request, peer_ip="192.0.2.9", peer_port=5555)
    assert (result.client_ip, result.client_port) == (trusted, port)
    assert result.external_address == trusted
    expected_xff = f"{incoming},192.0.2.9" if incoming else "192.0.2.9"  # E8: append the peer
    assert result.xff_out == expected_xff


def test_i5_client_xff_is_trusted_with_n1_behind_proxy_protocol() -> None:
    data = haproxy_bytes(V2, build_request(host="a", xff="6.6.6.6"))
    spoofed = gateway(pp=True, n=1).handle(data, peer_ip=L_NODE_IP, peer_port=SNAT_PORT)
    assert (spoofed.client_ip, spoofed.client_port) == ("6.6.6.6", 0)
    assert spoofed.xff_out == f"6.6.6.6,{C_IP}"
    safe = gateway(pp=True, n=0).handle(data, peer_ip=L_NODE_IP, peer_port=SNAT_PORT)
    assert (safe.client_ip, safe.client_port) == (C_IP, C_PORT)


def test_upstream_request_replaces_gateway_owned_headers() -> None:
    request = (
        b"GET /x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\n"
        b"X-Envoy-External-Address: 9.9.9.9\r\nx-forwarded-for: 2.2.2.2\r\n\r\n"
    )
    result = gateway().handle(request, peer_ip=L_NODE_IP, peer_port=SNAT_PORT)
    head = parse_request_head(result.upstream_request)
    assert head is not None and head.target == "/x"
    assert head.get_all("x-forwarded-for") == [f"1.1.1.1,2.2.2.2,{L_NODE_IP}"]
    assert head.get_all("x-envoy-external-address") == [L_NODE_IP]
    assert head.get_all("host") == ["a"]


def test_accepts_check_passes_whatever_the_bytes() -> None:
    # H5: a TCP check passes even where a real connection with these bytes would fail.
    on, off = gateway(pp=True), gateway(pp=False)
    for data in (V2_LOCAL, b"", b"garbage", V2_LOCAL[:12] + b"\xff\xff\xff\xff"):
        assert on.accepts_check(data, peer_ip="10.0.0.5", peer_port=1) is True
        assert off.accepts_check(data, peer_ip="10.0.0.5", peer_port=1) is True
    assert on.stats == {"found": 1, "not_found_disallowed": 2, "error": 1}
    assert off.stats == {"found": 0, "not_found_disallowed": 0, "error": 0}


def test_trusted_from_xff_helper() -> None:
    assert trusted_from_xff("1.1.1.1 , 2.2.2.2", 1) == "2.2.2.2"
    assert trusted_from_xff("1.1.1.1 , 2.2.2.2", 2) == "1.1.1.1"
    assert trusted_from_xff("1.1.1.1", 0) is None
    assert trusted_from_xff("", 1) is None
    assert trusted_from_xff("2001:db8::1", 1) == "2001:db8::1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"proxy_protocol": 1, "num_trusted_proxies": 0}, "proxy_protocol=1"),
        ({"proxy_protocol": False, "num_trusted_proxies": -1}, "num_trusted_proxies=-1"),
        ({"proxy_protocol": False, "num_trusted_proxies": True}, "num_trusted_proxies=True"),
    ],
)
def test_constructor_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IngressGateway(pod="gw-1", pod_ip=GW_POD_IP, **kwargs)  # type: ignore[arg-type]
