"""Checks every simulator test shares: each connection ends exactly once, for one reason."""

from __future__ import annotations

from sim import Result
from sim.results import OUTCOMES


def assert_every_connection_accounted(result: Result) -> None:
    """One known outcome per row, a reason exactly when it failed, no gaps, and
    ``connections == ok + sum(failed_*)`` in the summary; ``t_connected`` is empty exactly
    when no SYN reached a gateway pod, and lies within the client's timeout of the first SYN."""
    conns = result.connections
    assert conns["outcome"].isin(OUTCOMES).all()
    ok = conns["outcome"] == "ok"
    assert (conns.loc[ok, "reason"] == "").all()
    assert (conns.loc[~ok, "reason"] != "").all()
    assert (conns["t_end"] >= conns["t_start"]).all()
    assert not conns.drop(columns="t_connected").isna().any().any()
    connected = conns["t_connected"].notna()
    assert connected[ok].all()  # every success was established ...
    assert (connected == (conns["gateway_direct_ip"] != "")).all()  # ... by reaching a pod
    late = conns.loc[connected, "t_connected"] - conns.loc[connected, "t_start"]
    assert late.between(0.0, result.scenario.client_timeout_s, inclusive="left").all()
    assert (conns["syn_sent"] >= 1).all()
    assert (conns.loc[ok, "t_end"] >= conns.loc[ok, "t_connected"]).all()
    summary = result.summary()
    failed = sum(v for k, v in summary.items() if k.startswith("failed_"))
    assert summary["connections"] == len(conns) == summary["ok"] + failed
    assert summary["ok"] == int(ok.sum())
