"""The app pod's sidecar (sim.net.sidecar): E9 with use_remote_address=false, N=0, and I8."""

from __future__ import annotations

import pytest

from sim.net.http import HTTPRequestError, build_request
from sim.net.sidecar import APP_SOCKET_PEER_IP, Sidecar

GW_POD_IP = "172.16.2.10"


@pytest.mark.parametrize(
    ("xff", "remote_ip", "remote_port"),
    [
        ("10.0.1.7", "10.0.1.7", 0),  # single entry: the gateway's append
        ("6.6.6.6,10.0.1.7,172.16.3.0", "172.16.3.0", 0),  # last entry, not the first
        ("10.0.1.7, 172.16.3.0 ", "172.16.3.0", 0),  # whitespace around entries is trimmed
        (None, GW_POD_IP, 41000),  # no XFF -> the real peer (the gateway pod)
        ("unknown", GW_POD_IP, 41000),  # last entry not an IP -> the real peer
    ],
)
def test_sidecar_remote_address(xff: str | None, remote_ip: str, remote_port: int) -> None:
    seen = Sidecar().handle(build_request(host="a", xff=xff), peer_ip=GW_POD_IP, peer_port=41000)
    assert (seen.remote_ip, seen.remote_port) == (remote_ip, remote_port)
    assert seen.xff == (xff or "").strip()  # field values lose surrounding OWS
    assert seen.app_peer_ip == APP_SOCKET_PEER_IP == "127.0.0.6"  # I8


def test_multiple_xff_lines_are_combined() -> None:
    request = (
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n\r\n"
    )
    seen = Sidecar(pod="app-1", pod_ip="172.16.1.50").handle(request, peer_ip=GW_POD_IP)
    assert seen.xff == "1.1.1.1,2.2.2.2" and seen.remote_ip == "2.2.2.2"


def test_bad_or_incomplete_request_raises_our_error() -> None:
    with pytest.raises(HTTPRequestError, match="incomplete"):
        Sidecar().handle(b"GET / HTTP/1.1\r\nHost: a\r\n", peer_ip=GW_POD_IP)
    with pytest.raises(HTTPRequestError, match="request-line"):
        Sidecar().handle(b"nonsense\r\n\r\n", peer_ip=GW_POD_IP)
