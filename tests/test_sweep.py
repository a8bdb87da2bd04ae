"""sim.sweep over a process pool, a thread pool and a local Dask cluster; the results agree."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

import sim
from sim import presets

BASE = dataclasses.replace(presets.cluster, duration_s=5.0, rate_per_s=40.0)


def _expected(param: str, values: list[object], seeds: list[int]) -> pd.DataFrame:
    rows = []
    for v in values:
        for s in seeds:
            sc = dataclasses.replace(BASE, **{param: v, "seed": s})
            rows.append({param: v, "seed": s, **sim.simulate(sc).summary()})
    return pd.DataFrame(rows)


def test_sweep_default_process_pool_matches_serial_runs() -> None:
    frame = sim.sweep(BASE, "nodes", [3, 4], seeds=2, progress=False, max_workers=2)
    assert list(frame["nodes"]) == [3, 3, 4, 4]
    assert list(frame["seed"]) == [0, 1, 0, 1]
    expected = _expected("nodes", [3, 4], [0, 1])
    pd.testing.assert_frame_equal(frame[expected.columns], expected)


def test_sweep_accepts_any_executor_and_text_values() -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        frame = sim.sweep(BASE, "probe_interval_s", ["0.8", "2"], [7], pool, progress=False)
    assert list(frame["probe_interval_s"]) == ["0.8", "2"]
    assert list(frame["seed"]) == [7, 7]
    assert (frame["connections"] == frame["ok"] + frame.filter(like="failed_").sum(axis=1)).all()


def test_sweep_nested_haproxy_parameter() -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        frame = sim.sweep(
            dataclasses.replace(presets.proxy_protocol, duration_s=5.0, rate_per_s=40.0),
            "haproxy.send_proxy",
            ["v2", "none"],
            1,
            pool,
            progress=False,
        )
    # With PROXY the app sees every client; without it the gateway resets every connection.
    assert frame.loc[0, "client_ip_seen_pct"] == 100.0
    assert frame.loc[1, "ok"] == 0


@pytest.mark.parametrize(
    ("param", "values", "seeds", "message"),
    [
        ("no_such_field", [1], 1, "unknown scenario parameter 'no_such_field'"),
        ("nodes", [], 1, "values: give at least one value"),
        ("nodes", [0], 1, "nodes"),
        ("nodes", [3], 0, "seeds"),
        ("external_traffic_policy", ["Sometimes"], 1, "external_traffic_policy"),
    ],
)
def test_sweep_rejects_bad_arguments_before_running(
    param: str, values: list[object], seeds: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        sim.sweep(BASE, param, values, seeds, progress=False)


@pytest.mark.slow
def test_sweep_on_a_local_dask_cluster() -> None:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        frame = sim.sweep(BASE, "nodes", [3, 4], [0, 1], client.get_executor(), progress=False)
    expected = _expected("nodes", [3, 4], [0, 1])
    pd.testing.assert_frame_equal(frame[expected.columns], expected)
