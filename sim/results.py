"""The simulator's records: one row per connection, one row per event, and their summary.

The record layout is designed first (as in Ciw): the simulation appends plain tuples in the order
of :data:`CONNECTION_COLUMNS` and :data:`EVENT_COLUMNS`, and :class:`Result` turns them into
DataFrames once at the end. Missing text is ``""`` rather than NaN, so CSV files are stable.
Every column and every summary key is documented in ``docs/reference/results.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

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
    "Connection",
    "Recorder",
    "Result",
    "compare",
    "fill_missing_counts",
    "summarize_results",
]


class Connection(NamedTuple):
    """One client connection: a row of :attr:`Result.connections` (``docs/reference/results.md``).

    Built in one place, :meth:`sim.path.Flow.record`, at the end of the connection's walk; a
    connection still in flight when its node or pod dies is replaced by a copy with the new end
    (:meth:`Recorder.break_in_flight`). Text that does not apply is ``""``.
    """

    conn_id: int
    """Connection number, 0-based, in start order."""
    client_ip: str
    """The client's address (an in-cluster caller pod's for ``path == "in_cluster"``)."""
    client_port: int
    """The client's ephemeral source port."""
    t_start: float
    """When the client sent its first SYN (simulated seconds)."""
    t_connected: float
    """When the TCP connection to the gateway pod was established: the time of the SYN that got
    an answer (behind HAProxy, of HAProxy's server-side connection); NaN (an empty CSV cell)
    when no SYN reached a live gateway pod (T1)."""
    t_end: float
    """When the connection ended: response, reset, refusal, or the client's time-out."""
    outcome: str
    """How it ended for the client: one of :data:`OUTCOMES`."""
    reason: str
    """Why it failed (``""`` when ``outcome == "ok"``); the summary's ``failed_<reason>``."""
    syn_sent: int
    """How many SYNs were sent: 1, plus the retransmissions of an unanswered one (T1); behind
    HAProxy, those of its server-side connection (its own retries included, H10)."""
    path: str
    """``"direct"`` (client to the VIP or a NodePort), ``"haproxy"`` or ``"in_cluster"``."""
    entry_node: str
    """The node that received the connection (ARP owner, NodePort node, or caller's node)."""
    gateway_pod: str
    """The gateway pod kube-proxy chose (``""`` if it chose none)."""
    gateway_node: str
    """The node of that pod."""
    snat_ip: str
    """The address kube-proxy's MASQUERADE gave the connection (``""``: not masqueraded)."""
    gateway_direct_ip: str
    """The source address of the packets that reached the gateway pod (Envoy's direct peer)."""
    gateway_direct_port: int
    """Their source port: random after MASQUERADE (``--random-fully``, K17), else the sender's
    (the client's, or HAProxy's own); 0 when the connection did not reach the gateway."""
    gateway_client_ip: str
    """The gateway's downstream remote address after PROXY / XFF (Envoy's DRA, E7, E9)."""
    x_envoy_external_address: str
    """The ``x-envoy-external-address`` the gateway set."""
    xff_at_app: str
    """The ``X-Forwarded-For`` the app's sidecar received."""
    app_remote_ip: str
    """The sidecar's downstream remote address: what the app is told the client is."""


CONNECTION_COLUMNS: tuple[str, ...] = Connection._fields
"""Columns of :attr:`Result.connections`: the fields of :class:`Connection`, in order."""

EVENT_COLUMNS = ("t", "kind", "node", "detail")
"""Columns of :attr:`Result.events`."""

NODE_COLUMNS = ("node", "node_ip", "tunnel_ip")
"""Columns of :attr:`Result.nodes`."""

POD_COLUMNS = ("pod", "node", "pod_ip", "from_s")
"""Columns of :attr:`Result.pods` (one row per pod incarnation)."""

OUTCOMES = ("ok", "timeout", "reset", "refused", "http_400", "http_502", "http_503")
"""Every value of the ``outcome`` column."""


class Recorder:
    """Collects rows during a run: ``connections`` (:class:`Connection`) and ``events``.

    ``connections`` holds one slot per connection of the run, by ``conn_id``; a slot is
    ``None`` until the connection has ended its walk (a SYN waiting to be retransmitted, T1).

    Args:
        client_timeout_s: how long a client waits for an answer (a connection that dies silently
            in flight ends then, :meth:`break_in_flight`).
    """

    __slots__ = (
        "client_timeout_s",
        "connections",
        "events",
        "filled",
        "max_service_s",
        "on_break",
        "pod_index",
    )

    def __init__(self, client_timeout_s: float = 10.0) -> None:
        self.connections: list[Connection | None] = []
        self.pod_index: list[int] = []
        """For every slot, the index of the gateway pod incarnation it went to (-1: none)."""
        self.events: list[tuple[float, str, str, str]] = []
        self.client_timeout_s = client_timeout_s
        self.max_service_s = 0.0
        """The longest request of the run: no connection that started earlier is still open."""
        self.filled = 0
        """Connections ``0 .. filled - 1`` have started (their slot may still be ``None``)."""
        self.on_break: Callable[[Connection, str, str], None] | None = None
        """Told ``(new_row, element, detail)`` of every broken connection (``sim.trace``)."""

    def reserve(self, count: int) -> None:
        """Make room for ``count`` connections (all ``None``)."""
        self.connections = [None] * count
        self.pod_index = [-1] * count

    def event(self, t: float, kind: str, node: str, detail: str) -> None:
        """Record one control-plane event (see ``docs/reference/results.md`` for the kinds)."""
        self.events.append((float(t), kind, node, detail))

    def break_in_flight(
        self,
        now: float,
        match: Callable[[int, Connection], bool],
        outcome: str,
        reason: str,
        relay: Callable[[Connection, str], str] | None = None,
        why: tuple[str, str] = ("", ""),
        stalled: str = "",
    ) -> None:
        """End the connections in flight at ``now`` for which ``match(conn_id, row)`` holds.

        In flight: established (``t_connected <= now``) and not yet ended: successful so far,
        or (``stalled``, a reason) already failed for that reason but with the client still
        waiting, such as a connection whose node died under it (its client retransmits until its
        timeout, M17). A ``reset`` ends at ``now``; a ``timeout`` ``client_timeout_s`` after
        ``now``, when the client gives up on the silent connection.
        ``relay(row, outcome)`` gives the outcome the client sees when a proxy stands in between
        (HAProxy ``mode http`` turns a reset into ``502``, H7). ``why`` is ``(element, detail)``:
        where and why, for :attr:`on_break`.
        """
        rows = self.connections
        # A connection established at most client_timeout_s after its first SYN (T1) and open
        # for at most max_service_s: nothing that started before the horizon is still open.
        horizon = now - self.max_service_s - self.client_timeout_s
        i = self.filled - 1
        while i >= 0:
            row = rows[i]
            if row is not None:
                if row.t_start < horizon:
                    break
                live = row.outcome == "ok" or (stalled and row.reason == stalled)
                if live and row.t_connected <= now < row.t_end and match(i, row):
                    # Silence: the client notices only when its wait runs out, and gives up
                    # client_timeout_s after the connection went silent.
                    t_end = now if outcome == "reset" else now + self.client_timeout_s
                    seen = relay(row, outcome) if relay is not None else outcome
                    rows[i] = row = row._replace(t_end=t_end, outcome=seen, reason=reason)
                    if self.on_break is not None:
                        self.on_break(row, *why)
            i -= 1


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
    _summary: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_records(
        cls,
        scenario: Scenario,
        recorder: Recorder,
        nodes: Sequence[tuple[str, str, str]],
        pods: Sequence[tuple[str, str, str, float]],
    ) -> Result:
        """Build the DataFrames from the recorder's tuples (done once, at the end of a run)."""
        rows = recorder.connections
        assert all(row is not None for row in rows), "a connection did not end its walk"
        connections = _frame(rows, CONNECTION_COLUMNS)  # type: ignore[arg-type]
        if len(connections):
            connections = connections.astype(
                {
                    "conn_id": "int64",
                    "client_port": "int64",
                    "syn_sent": "int64",
                    "gateway_direct_port": "int64",
                    "t_connected": "float64",
                }
            )
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


def failover_gap_s(ok_connected: np.ndarray, duration_s: float) -> float:
    """Longest stretch of ``[0, duration_s]`` in which no successful connection was established.

    ``ok_connected`` are the ``t_connected`` of the successful connections. Establishment, not
    the first SYN, counts: a connection whose SYN was retransmitted until a gratuitous ARP moved
    it to a live node (T1) was served only after the outage.
    """
    inside = ok_connected[(ok_connected >= 0.0) & (ok_connected <= duration_s)]
    points = np.concatenate(([0.0], np.sort(inside), [duration_s]))
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
        starts = good["t_connected"].to_numpy(dtype=float)
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
