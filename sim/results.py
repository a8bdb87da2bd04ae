"""The simulator's records: one row per connection, one row per event, and their summary.

The record layout is designed first (as in Ciw): the simulation appends plain tuples in the order
of :data:`CONNECTION_COLUMNS` and :data:`EVENT_COLUMNS`, and :class:`Result` turns them into
DataFrames once at the end. Missing text is ``""`` rather than NaN, so CSV files are stable.
Every column and every summary key is documented in ``docs/reference/results.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from sim.scenario import Scenario

__all__ = [
    "CONNECTION_COLUMNS",
    "EVENT_COLUMNS",
    "NODE_COLUMNS",
    "OUTCOMES",
    "POD_COLUMNS",
    "Recorder",
    "Result",
    "compare",
    "fill_missing_counts",
    "summarize_results",
]

CONNECTION_COLUMNS = (
    "conn_id",
    "client_ip",
    "client_port",
    "t_start",
    "t_end",
    "outcome",
    "reason",
    "path",
    "entry_node",
    "gateway_pod",
    "gateway_node",
    "snat_ip",
    "gateway_direct_ip",
    "gateway_client_ip",
    "x_envoy_external_address",
    "xff_at_app",
    "app_remote_ip",
)
"""Columns of :attr:`Result.connections`, in tuple order."""

EVENT_COLUMNS = ("t", "kind", "node", "detail")
"""Columns of :attr:`Result.events`."""

NODE_COLUMNS = ("node", "node_ip", "tunnel_ip")
"""Columns of :attr:`Result.nodes`."""

POD_COLUMNS = ("pod", "node", "pod_ip", "from_s")
"""Columns of :attr:`Result.pods` (one row per pod incarnation)."""

OUTCOMES = ("ok", "timeout", "reset", "refused", "http_400", "http_502", "http_503")
"""Every value of the ``outcome`` column."""

_T_START = CONNECTION_COLUMNS.index("t_start")
_OUTCOME = CONNECTION_COLUMNS.index("outcome")


class Recorder:
    """Collects rows during a run: ``connections`` and ``events`` are lists of tuples."""

    __slots__ = ("connections", "events")

    def __init__(self) -> None:
        self.connections: list[tuple[Any, ...]] = []
        self.events: list[tuple[float, str, str, str]] = []

    def event(self, t: float, kind: str, node: str, detail: str) -> None:
        """Record one control-plane event (see ``docs/reference/results.md`` for the kinds)."""
        self.events.append((float(t), kind, node, detail))


def _frame(rows: Sequence[tuple[Any, ...]], columns: Sequence[str]) -> pd.DataFrame:
    if rows:
        return pd.DataFrame.from_records(rows, columns=list(columns))
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


@dataclass(frozen=True, eq=False)
class Result:
    """The outcome of :func:`sim.simulate`: four DataFrames, the scenario, and a summary.

    Attributes:
        scenario: the :class:`~sim.Scenario` that was simulated.
        connections: one row per client connection (:data:`CONNECTION_COLUMNS`).
        events: control-plane events in time order (:data:`EVENT_COLUMNS`).
        nodes: every node with its two addresses (:data:`NODE_COLUMNS`).
        pods: every gateway pod incarnation (:data:`POD_COLUMNS`).
    """

    scenario: Scenario
    connections: pd.DataFrame
    events: pd.DataFrame
    nodes: pd.DataFrame
    pods: pd.DataFrame
    _summary: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_records(
        cls,
        scenario: Scenario,
        recorder: Recorder,
        nodes: Sequence[tuple[str, str, str]],
        pods: Sequence[tuple[str, str, str, float]],
    ) -> Result:
        """Build the DataFrames from the recorder's tuples (done once, at the end of a run)."""
        connections = _frame(recorder.connections, CONNECTION_COLUMNS)
        if len(connections):
            connections = connections.astype({"conn_id": "int64", "client_port": "int64"})
        events = _frame(sorted(recorder.events, key=lambda e: e[0]), EVENT_COLUMNS)
        return cls(
            scenario=scenario,
            connections=connections,
            events=events,
            nodes=_frame(nodes, NODE_COLUMNS),
            pods=_frame(pods, POD_COLUMNS),
        )

    def summary(self) -> dict[str, Any]:
        """Key numbers of the run as a flat dict (documented in ``docs/reference/results.md``).

        ``connections``, ``ok``, ``reachability_pct``, ``client_ip_seen_pct``,
        ``failover_gap_s``, ``share_<pod>`` (percent of successful connections per gateway pod)
        and ``failed_<reason>`` (count per failure reason). Conservation holds:
        ``connections == ok + sum(failed_*)``.
        """
        if not self._summary:
            self._summary.update(_summarize(self))
        return dict(self._summary)

    def summary_frame(self) -> pd.DataFrame:
        """:meth:`summary` as a one-row DataFrame."""
        return pd.DataFrame([self.summary()])


def failover_gap_s(ok_starts: np.ndarray, duration_s: float) -> float:
    """Longest stretch of ``[0, duration_s]`` without the start of a successful connection."""
    points = np.concatenate(([0.0], np.sort(ok_starts), [duration_s]))
    return float(np.max(np.diff(points)))


def _summarize(result: Result) -> dict[str, Any]:
    sc = result.scenario
    conns = result.connections
    total = len(conns)
    ok_mask = (conns["outcome"] == "ok").to_numpy() if total else np.zeros(0, dtype=bool)
    ok = int(ok_mask.sum())
    out: dict[str, Any] = {"name": sc.name, "connections": total, "ok": ok}
    out["reachability_pct"] = round(100.0 * ok / total, 3) if total else 0.0
    if ok:
        good = conns[ok_mask]
        seen = int((good["app_remote_ip"] == good["client_ip"]).sum())
        out["client_ip_seen_pct"] = round(100.0 * seen / ok, 3)
        starts = good["t_start"].to_numpy(dtype=float)
    else:
        out["client_ip_seen_pct"] = 0.0
        starts = np.zeros(0)
    out["failover_gap_s"] = round(failover_gap_s(starts, sc.duration_s), 6)
    counts = conns.loc[ok_mask, "gateway_pod"].value_counts() if ok else pd.Series(dtype=int)
    for pod in sc.pod_names:
        share = 100.0 * int(counts.get(pod, 0)) / ok if ok else 0.0
        out[f"share_{pod}"] = round(share, 3)
    if total:
        reasons = conns.loc[~ok_mask, "reason"].value_counts().sort_index()
        for reason, count in reasons.items():
            out[f"failed_{reason}"] = int(count)
    return out


def compare(scenarios: Mapping[str, Scenario] | Sequence[Scenario]) -> pd.DataFrame:
    """Simulate each scenario and return one row per scenario with its :meth:`Result.summary`.

    Args:
        scenarios: a mapping ``label -> Scenario`` (labels become the ``scenario`` column) or a
            sequence of scenarios (labelled by their ``name``).

    Returns:
        One row per scenario; ``share_*`` and ``failed_*`` columns that a scenario lacks are 0.
    """
    from sim.topology import simulate

    if isinstance(scenarios, Mapping):
        items = list(scenarios.items())
    else:
        items = [(sc.name, sc) for sc in scenarios]
    return summarize_results({label: simulate(sc) for label, sc in items})


def summarize_results(results: Mapping[str, Result]) -> pd.DataFrame:
    """One row per result (labelled ``scenario``) with its :meth:`Result.summary`.

    :func:`compare` is this applied to fresh simulations; use it directly when you already hold
    the results (for plots of the same runs). ``share_*`` and ``failed_*`` columns that a result
    lacks are 0.
    """
    rows = [{"scenario": label, **result.summary()} for label, result in results.items()]
    return fill_missing_counts(pd.DataFrame(rows))


def fill_missing_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Set the ``share_*`` and ``failed_*`` cells a run lacks to 0 (``failed_*`` as integers).

    Summaries of different runs have different keys (a run without failures has no
    ``failed_*``); in a table of several runs the missing ones mean zero.
    """
    for col in frame.columns:
        if col.startswith(("share_", "failed_")):
            frame[col] = frame[col].fillna(0)
            if col.startswith("failed_"):
                frame[col] = frame[col].astype("int64")
    return frame
