"""The simulator's CLI: compare, run, trace, sweep; bad arguments exit 2 with one clear line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sim.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse usage errors and --help
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def test_run_prints_summary_and_writes_csv(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    csv = tmp_path / "run.csv"
    status, out, err = run(
        capsys, "run", "proxy_protocol", "--set", "duration_s=5", "--seed", "3", "--out", str(csv)
    )
    assert status == 0, err
    assert "reachability_pct" in out and "client_ip_seen_pct" in out
    frame = pd.read_csv(csv, keep_default_na=False)
    assert len(frame) > 100
    assert set(frame["outcome"]) == {"ok"}
    assert (frame["app_remote_ip"] == frame["client_ip"]).all()


def test_run_node_down_and_haproxy_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    events = tmp_path / "events.csv"
    status, _out, err = run(
        capsys,
        "run",
        "cluster",
        "--set",
        "duration_s=20",
        "--set",
        "haproxy=tcp",
        "--set",
        "haproxy.send_proxy=v1",
        "--set",
        "gateway_proxy_protocol=true",
        "--node-down",
        "node-3@5:15",
        "--events",
        str(events),
    )
    assert status == 0, err
    kinds = set(pd.read_csv(events, keep_default_na=False)["kind"])
    assert {"node_down", "node_up", "elected"} <= kinds


def test_run_list_params(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "run", "--list-params")
    assert status == 0
    keys = out.split()
    assert "external_traffic_policy" in keys and "haproxy.send_proxy" in keys


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "nope"], "preset: unknown name 'nope'; allowed: cluster, local"),
        (["run"], "a PRESET is required"),
        (["run", "cluster", "--set", "nodes"], "--set: expected KEY=VALUE"),
        (["run", "cluster", "--set", "nodes=three"], "nodes: expected an integer"),
        (["run", "cluster", "--set", "colour=red"], "unknown scenario parameter 'colour'"),
        (
            ["run", "cluster", "--set", "external_traffic_policy=Sometimes"],
            "external_traffic_policy",
        ),
        (["run", "cluster", "--node-down", "node-9@5"], "node-9"),
        (["run", "cluster", "--node-down", "node-1"], "--node-down: expected NODE@AT"),
        (["sweep", "cluster", "--param", "nodes", "--values", "3,x"], "nodes: expected an integer"),
        (["trace", "cluster", "--conn", "999999"], "conn"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, _out, err = run(capsys, *argv)
    assert status == 2
    assert err.startswith("srcip-lab: error: ")
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_argparse_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "sweep", "cluster", "--values", "1")
    assert status == 2
    assert "--param" in err


def test_trace_shows_the_snat_hop(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "trace", "cluster")
    assert status == 0, err
    assert "kube-proxy" in out
    assert "10.0.0.13" in out or "172.16." in out


def test_trace_proxy_protocol_shows_header_hex(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "trace", "proxy_protocol")
    assert status == 0, err
    assert "0d0a0d0a000d0a515549540a21" in out.lower()


def test_sweep_prints_one_row_per_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    csv = tmp_path / "sweep.csv"
    status, _out, err = run(
        capsys,
        "sweep",
        "cluster",
        "--set",
        "duration_s=5",
        "--param",
        "nodes",
        "--values",
        "3,4",
        "--seeds",
        "2",
        "--workers",
        "2",
        "--out",
        str(csv),
    )
    assert status == 0, err
    frame = pd.read_csv(csv)
    assert list(frame["nodes"]) == [3, 3, 4, 4]


def test_compare_writes_table_and_csvs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, err = run(
        capsys, "compare", "--out", str(tmp_path), "--duration", "40", "--fail-at", "10"
    )
    assert status == 0, err
    table = pd.read_csv(tmp_path / "compare.csv")
    assert list(table["name"]) == [
        "cluster",
        "local",
        "proxy_protocol",
        "local_naive",
        "haproxy_http_xff",
        "pp_unexpected",
        "pp_missing",
    ]
    by = table.set_index("name")
    assert by.loc["cluster", "client_ip_seen_pct"] == 0.0
    assert by.loc["proxy_protocol", "client_ip_seen_pct"] == 100.0
    assert by.loc["local", "client_ip_seen_pct"] == 100.0
    assert by.loc["pp_unexpected", "ok"] == 0 and by.loc["pp_missing", "ok"] == 0
    # the announcing node fails in every run, so every run has a failover gap of seconds
    assert (by.loc[["cluster", "local", "proxy_protocol"], "failover_gap_s"] > 1.0).all()
    for name in ("reachability.png", "timeline.png", "load_spread.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    assert "node-3 down at 10 s" in out


def test_compare_rejects_failure_outside_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "compare", "--duration", "10", "--fail-at", "20", "--no-figures")
    assert status == 2
    assert "fail_at" in err


def test_trace_without_a_success_shows_where_the_first_connection_failed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = run(capsys, "trace", "pp_missing")
    assert status == 0, err
    assert out.startswith("# pp_missing: connection 0, hop by hop; outcome: reset")
    assert "proxy_header_missing (E5" in out
    status, out, err = run(capsys, "trace", "local_naive")
    assert status == 0, err
    assert "outcome: timeout (drop_no_local_endpoint)" in out
    assert "DROP: Local and no local endpoint (K6, K7)" in out
