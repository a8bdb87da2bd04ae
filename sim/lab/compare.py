"""Simulated versus observed: the quantities the lab and the simulator must agree on.

Each quantity is computed the same way from a frame with the columns of
``sim.results.CONNECTION_COLUMNS`` (the simulator's ``Result.connections``, or the lab's
observed rows), so the comparison is generic over whatever columns both have:

* ``outcomes``: which outcomes occur (``sim.results.OUTCOMES``);
* ``gateway_direct_ip by (entry_node, gateway_node)``: the set of source addresses the gateway
  sees per path (K1, N1-N3, C1), the row's own client written ``{client}``;
* ``gateway_client_ip by gateway_node`` and ``xff_at_app by gateway_node``: the client address
  after PROXY/XFF (E1, E9) and the XFF the app gets (E8, C4), with each row's own client address
  written ``{client}`` so that rows of different clients compare;
* ``snat ports``: whether the source port the gateway sees is the one the entry node received
  (``kept``), a new one (``rewritten``, MASQUERADE ``--random-fully``, K17) or both (``mixed``),
  from the ``gateway_direct_port`` column (``None`` for a frame without it).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["QUANTITIES", "compare_frames", "quantities", "settle_s"]

QUANTITIES = (
    "outcomes",
    "gateway_direct_ip by (entry_node, gateway_node)",
    "gateway_client_ip by gateway_node",
    "xff_at_app by gateway_node",
    "snat ports",
)
"""The compared quantities, in table order."""


def settle_s(scenario: Any) -> float:
    """Start of the compared window: HAProxy's NodePort checks settle within one ``inter``
    (a new server is DOWN at its first failed check, H5); the lab starts its traffic after."""
    hap = scenario.haproxy
    if hap is not None and hap.backend == "nodeports" and hap.check:
        return float(hap.inter_s) * 1.5
    return 0.0


def _norm(value: str, client: str) -> str:
    parts = [p.strip() for p in str(value).split(",")] if value else []
    return ",".join("{client}" if p == client else p for p in parts)


def _grouped(frame: pd.DataFrame, key: str, column: str) -> dict[str, list[str]]:
    out: dict[str, set[str]] = {}
    for row in frame[[key, column, "client_ip"]].itertuples(index=False):
        if row[1] == "" or row[0] == "":
            continue
        out.setdefault(str(row[0]), set()).add(_norm(str(row[1]), str(row[2])))
    return {k: sorted(v) for k, v in sorted(out.items())}


def _ports(frame: pd.DataFrame, simulated: bool) -> str | None:
    if "gateway_direct_port" not in frame.columns:
        return None
    rows = frame[frame["gateway_direct_ip"] != ""]
    if simulated:
        # The simulator's pre-NAT port is the client's own on the direct path.
        rows = rows[rows["path"] == "direct"]
        before = rows["client_port"]
    else:
        rows = rows[rows["pre_nat_port"] != ""]
        before = rows["pre_nat_port"]
    if not len(rows):
        return None
    same = (before.astype("int64") == rows["gateway_direct_port"].astype("int64")).to_numpy()
    return "kept" if same.all() else ("rewritten" if not same.any() else "mixed")


def quantities(frame: pd.DataFrame, *, simulated: bool) -> dict[str, Any]:
    """Every quantity of :data:`QUANTITIES` for one frame."""
    reached = frame[frame["gateway_direct_ip"] != ""]
    pairs: dict[str, set[str]] = {}
    columns = ["entry_node", "gateway_node", "gateway_direct_ip", "client_ip"]
    for row in reached[columns].itertuples(index=False):
        pairs.setdefault(f"{row[0]} -> {row[1]}", set()).add(_norm(str(row[2]), str(row[3])))
    return {
        "outcomes": sorted(set(frame["outcome"])),
        "gateway_direct_ip by (entry_node, gateway_node)": {
            k: sorted(v) for k, v in sorted(pairs.items())
        },
        "gateway_client_ip by gateway_node": _grouped(reached, "gateway_node", "gateway_client_ip"),
        "xff_at_app by gateway_node": _grouped(reached, "gateway_node", "xff_at_app"),
        "snat ports": _ports(frame, simulated),
    }


def compare_frames(
    simulated: pd.DataFrame, observed: pd.DataFrame, scenario: Any
) -> list[dict[str, Any]]:
    """``[{what, simulated, observed, equal}]`` per quantity (``equal`` is ``None`` where the
    simulator does not model the quantity yet)."""
    start = settle_s(scenario)
    sim_rows = simulated[simulated["t_start"] >= start] if start else simulated
    sim_q = quantities(sim_rows, simulated=True)
    obs_q = quantities(observed, simulated=False)
    out = []
    for what in QUANTITIES:
        s, o = sim_q[what], obs_q[what]
        equal = None if s is None else s == o
        out.append({"what": what, "simulated": s, "observed": o, "equal": equal})
    return out
