"""Checks every simulator test shares: each connection ends exactly once, for one reason."""

from __future__ import annotations

from sim import Result
from sim.results import OUTCOMES


def assert_every_connection_accounted(result: Result) -> None:
    """One known outcome per row, a reason exactly when it failed, no gaps, and
    ``connections == ok + sum(failed_*)`` in the summary."""
    conns = result.connections
    assert conns["outcome"].isin(OUTCOMES).all()
    ok = conns["outcome"] == "ok"
    assert (conns.loc[ok, "reason"] == "").all()
    assert (conns.loc[~ok, "reason"] != "").all()
    assert (conns["t_end"] >= conns["t_start"]).all()
    assert not conns.isna().any().any()
    summary = result.summary()
    failed = sum(v for k, v in summary.items() if k.startswith("failed_"))
    assert summary["connections"] == len(conns) == summary["ok"] + failed
    assert summary["ok"] == int(ok.sum())
