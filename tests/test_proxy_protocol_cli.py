"""``srcip-lab pp decode|encode`` through sim.cli.main, checked with capsys."""

from __future__ import annotations

import io
import sys
from types import SimpleNamespace

import pytest

from sim.cli import main
from sim.proxy_protocol import decode

TCP4_HEX = "0d0a0d0a000d0a515549540a211100 0c cb007107 0a00000a c738 01bb"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_encode_v2_tcp4(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(
        capsys, "pp", "encode", "--src", "203.0.113.7:51000", "--dst", "10.0.0.10:443"
    )
    assert (status, err) == (0, "")
    assert out.strip() == TCP4_HEX.replace(" ", "")


def test_encode_v1_ipv6_and_tlvs(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(
        capsys,
        "pp",
        "encode",
        "--src",
        "[2001:db8::7]:51000",
        "--dst",
        "[2001:db8::10]:443",
        "--v1",
    )
    assert status == 0
    assert bytes.fromhex(out.strip()) == b"PROXY TCP6 2001:db8::7 2001:db8::10 51000 443\r\n"
    status, out, _ = run(
        capsys,
        "pp",
        "encode",
        "--src",
        "203.0.113.7:51000",
        "--dst",
        "10.0.0.10:443",
        "--tlv",
        "ALPN=h2",
        "--tlv",
        "0xE0=0x0000000000000001",
        "--tlv",
        "authority=example.com",
        "--crc32c",
    )
    assert status == 0
    result = decode(bytes.fromhex(out.strip()))
    assert result is not None
    header = result[0]
    assert header.alpn == b"h2" and header.authority == "example.com"
    assert header.gcp_psc_connection_id == 1 and header.crc32c is not None


def test_encode_local(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "pp", "encode", "--local")[1].strip() == "0d0a0d0a000d0a515549540a20000000"
    assert bytes.fromhex(run(capsys, "pp", "encode", "--local", "--v1")[1]) == b"PROXY UNKNOWN\r\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--src", "1.2.3.4:99999", "--dst", "1.2.3.4:1"], "--src: port 99999"),
        (["--src", "1.2.3.4", "--dst", "1.2.3.4:1"], "--src: '1.2.3.4' is not IP:PORT"),
        (["--src", "[1.2.3.4]:1", "--dst", "1.2.3.4:1"], "brackets are for IPv6"),
        (["--src", "1.2.3.4:1", "--dst", "[::1]:1"], "same IP version"),
        (["--dst", "1.2.3.4:1"], "--src: required"),
        (["--src", "1.1.1.1:1", "--dst", "2.2.2.2:2", "--tlv", "BOGUS=1"], "--tlv: type 'BOGUS'"),
        (["--src", "1.1.1.1:1", "--dst", "2.2.2.2:2", "--tlv", "ALPN"], "not TYPE=VALUE"),
        (["--src", "1.1.1.1:1", "--dst", "2.2.2.2:2", "--tlv", "1=0xzz"], "not a hex digit"),
        (["--src", "1.1.1.1:1", "--dst", "2.2.2.2:2", "--tlv", "300=x"], "outside 0..255"),
        (["--src", "1.1.1.1:1", "--dst", "2.2.2.2:2", "--v1", "--crc32c"], "--v1"),
        (["--src", "1.1.1.1:1", "--dst", "2.2.2.2:2", "--tlv", "CRC32C=0x00"], "CRC32C value"),
    ],
)
def test_encode_bad_input_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, out, err = run(capsys, "pp", "encode", *argv)
    assert status == 2 and out == ""
    assert err.startswith("srcip-lab: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_decode_hex_argument_shows_fields_tlvs_and_anatomy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = run(capsys, "pp", "decode", TCP4_HEX.replace(" ", ":"))
    assert (status, err) == (0, "")
    assert "PROXY protocol v2 header, 28 bytes" in out
    assert "src_addr  203.0.113.7" in out and "dst_port  443" in out
    assert "signature" in out and "cb 00 71 07" in out and "TCP over IPv4" in out


def test_decode_stdin_raw_v1_with_payload(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n"
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(raw)))
    status, out, _ = run(capsys, "pp", "decode", "-")
    assert status == 0
    assert "PROXY protocol v1 header, 47 bytes" in out
    assert "16 byte(s) after the header" in out and "crlf" in out


def test_decode_stdin_hex_with_tlvs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hex_text = "0d0a0d0a000d0a515549540a\n21 00 00 05\n01 00 02 68 32\n"
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(hex_text.encode())))
    status, out, _ = run(capsys, "pp", "decode", "-")
    assert status == 0
    assert "family    UNSPEC" in out and "ALPN" in out and "b'h2'" in out


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("474554202f", "signature: byte 0x47"),
        ("0d0a0d0a", "incomplete header"),
        ("0d0a0d0a000d0a515549540a2113000c", "family: byte 0x13"),
        ("zz", "HEX: 'z' is not a hex digit"),
        ("abc", "odd number of hex digits"),
    ],
)
def test_decode_bad_input_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], arg: str, message: str
) -> None:
    status, out, err = run(capsys, "pp", "decode", arg)
    assert status == 2 and out == ""
    assert err.startswith("srcip-lab: error: ") and message in err
    assert err.count("\n") == 1


def test_help_texts_have_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for action in ("encode", "decode"):
        with pytest.raises(SystemExit) as info:
            main(["pp", action, "--help"])
        assert info.value.code == 0
        out = capsys.readouterr().out
        assert "examples:" in out and "srcip-lab pp" in out
