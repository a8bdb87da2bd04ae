"""Acceptance checks added by the audit of issues 2-4: inputs the other tests did not try.

* issue 2, ``decode``: "No other exception type may escape, whatever the input": buffers of
  other formats and shapes, released views, huge buffers, and a header that must not change
  when the caller reuses its buffer afterwards.
* issues 2 and 3, CLI: "Bad input: one clear line on stderr, exit code 2", for argparse's own
  usage errors and for output paths that cannot be written too.
"""

from __future__ import annotations

import array
import ctypes
from ipaddress import ip_address
from pathlib import Path

import pytest

from sim.cli import main
from sim.proxy_protocol import ProxyProtocolError, decode

V2_TCP4 = bytes.fromhex("0d0a0d0a000d0a515549540a2111000c7f0000017f000001d4310050")
V1_TCP4 = b"PROXY TCP4 1.2.3.4 5.6.7.8 10 20\r\n"

# ------------------------------------------------------------------ decode: hostile buffers


class _Struct28(ctypes.Structure):
    _fields_ = [("raw", ctypes.c_uint8 * 28)]


def _released() -> memoryview:
    view = memoryview(bytearray(V2_TCP4))
    view.release()
    return view


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(memoryview(array.array("I", V2_TCP4)), id="uint32-view"),
        pytest.param(memoryview(V2_TCP4).cast("B", (4, 7)), id="2d-view"),
        pytest.param(memoryview(bytes(b for b in V2_TCP4 for _ in (0, 1)))[::2], id="strided"),
        pytest.param(memoryview((ctypes.c_ubyte * 28).from_buffer_copy(V2_TCP4)), id="ctypes"),
        pytest.param(memoryview(_Struct28.from_buffer_copy(V2_TCP4)), id="ctypes-struct"),
        pytest.param(bytearray(V2_TCP4) + bytes(20_000_000), id="huge-trailing"),
    ],
)
def test_any_buffer_holding_a_header_decodes(data: object) -> None:
    result = decode(data)  # type: ignore[arg-type]
    assert result is not None
    header, consumed = result
    assert consumed == 28
    assert (header.src_addr, header.src_port) == (ip_address("127.0.0.1"), 54321)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(memoryview(array.array("d", [1.5] * 8)), id="float64-view"),
        pytest.param(_released(), id="released-view"),
        pytest.param(bytes(10_000_000), id="huge-zeros"),
        pytest.param("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", id="str"),
        pytest.param(None, id="None"),
        pytest.param([13, 10], id="list"),
        pytest.param(12, id="int"),
    ],
)
def test_hostile_inputs_raise_only_our_error(data: object) -> None:
    with pytest.raises(ProxyProtocolError):
        decode(data)  # type: ignore[arg-type]


@pytest.mark.parametrize("wire", [V2_TCP4, V1_TCP4], ids=["v2", "v1"])
def test_header_does_not_follow_the_callers_buffer(wire: bytes) -> None:
    """Fields are built lazily: they must come from a copy, not the caller's reused buffer."""
    buf = bytearray(wire + b"payload")
    result = decode(buf)
    assert result is not None
    header, _ = result
    before = (header.src_addr, header.src_port, header.dst_addr, header.dst_port)
    buf[: len(wire)] = bytes(len(wire))  # the caller reuses its buffer before reading fields
    view = memoryview(bytearray(wire))
    from_view = decode(view)
    assert from_view is not None
    view[len(wire) - 1] ^= 0xFF
    assert (header.src_addr, header.src_port, header.dst_addr, header.dst_port) == before
    assert from_view[0] == header


# ------------------------------------------------------------------ CLI: one line, exit 2


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse usage errors
        status = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "COMMAND"),
        (["frob"], "invalid choice"),
        (["pp"], "ACTION"),
        (["pp", "decode", "0d0a", "extra"], "unrecognized arguments"),
        (["pp", "encode", "--bogus"], "unrecognized arguments"),
        (["run", "cluster", "--seed", "abc"], "--seed"),
        (["sweep", "cluster", "--param", "nodes", "--values", "2", "--seeds", "x"], "--seeds"),
        (["compare", "--fail-at", "abc"], "--fail-at"),
        (["pp", "encode", "--src", "1.2.3.4:\u0668", "--dst", "1.2.3.4:1"], "--src"),
    ],
)
def test_usage_errors_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, out, err = _run(capsys, *argv)
    assert status == 2 and out == ""
    assert err.startswith("srcip-lab: error: ") and message in err
    assert err.count("\n") == 1 and "usage:" not in err


def test_unwritable_outputs_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    short = ["--set", "duration_s=1"]
    cases = [
        (["run", "cluster", *short, "--out", str(tmp_path)], "Is a directory"),
        (["run", "cluster", *short, "--events", str(tmp_path)], "Is a directory"),
        (["run", "cluster", *short, "--out", str(tmp_path / "no" / "x.csv")], "no"),
        (["compare", "--duration", "4", "--fail-at", "2", "--out", "/proc/srcip"], "/proc/srcip"),
    ]
    for argv, message in cases:
        status, _, err = _run(capsys, *argv)
        assert status == 2, argv
        assert err.startswith("srcip-lab: error: ") and message in err, err
        assert err.count("\n") == 1 and "Traceback" not in err, err


def test_out_of_memory_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run can still ask for more rows than this machine holds (the bound is 20M)."""
    import sim.topology

    def too_big(scenario: object, **_: object) -> None:
        raise MemoryError("Unable to allocate 745. GiB")

    monkeypatch.setattr(sim.topology, "simulate", too_big)
    status, out, err = _run(capsys, "run", "cluster", "--set", "rate_per_s=100000")
    assert status == 2 and out == ""
    assert err.startswith("srcip-lab: error: out of memory") and err.count("\n") == 1
