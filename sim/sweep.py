"""Run many simulations: one parameter over several values and seeds, on any executor.

:func:`sweep` builds one :class:`~sim.Scenario` per (value, seed) with
:func:`dataclasses.replace`, submits :func:`run_summary` for each to a
:class:`concurrent.futures.Executor` and returns one row per run. Any executor works unchanged:
the default is a local process pool; a ``dask.distributed`` client's ``client.get_executor()``
spreads the runs over a Dask cluster (see the how-to "Run a sweep").
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from typing import Any

import pandas as pd

from sim.overrides import apply_overrides, check_key
from sim.results import fill_missing_counts


def run_summary(scenario: Any) -> dict[str, Any]:
    """Simulate ``scenario`` and return its summary (a top-level function, so it pickles)."""
    from sim.topology import simulate

    return dict(simulate(scenario).summary())


def _seed_list(scenario: Any, seeds: int | Iterable[int]) -> list[int]:
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds: expected a positive count or a list of seeds, got {seeds}")
        return [scenario.seed + i for i in range(seeds)]
    out = [int(s) for s in seeds]
    if not out:
        raise ValueError("seeds: the list of seeds is empty")
    return out


def sweep(
    scenario: Any,
    param: str,
    values: Sequence[Any],
    seeds: int | Iterable[int] = 1,
    executor: Executor | None = None,
    *,
    progress: bool = True,
    max_workers: int | None = None,
) -> pd.DataFrame:
    """Simulate ``scenario`` with ``param`` set to each of ``values``, for each seed.

    Args:
        scenario: the base :class:`~sim.Scenario`.
        param: a Scenario field name, or ``haproxy.<field>``.
        values: the values to try; typed values or text (parsed like the CLI's ``--set``).
        seeds: how many seeds (``scenario.seed``, ``scenario.seed + 1``, ...) or the seeds.
        executor: any :class:`concurrent.futures.Executor`; ``None`` starts a process pool
            with ``max_workers`` (default: the number of CPUs) and shuts it down afterwards.
        progress: show a tqdm progress bar (on stderr).

    Returns:
        One row per run, sorted by value then seed: ``param`` (the value as given), ``seed``,
        and every key of :meth:`sim.Result.summary`.

    Raises:
        ValueError: an unknown ``param``, an empty ``values``, or a value the Scenario rejects
            (raised before anything runs, naming the field and what is allowed).
    """
    check_key(param)
    values = list(values)
    if not values:
        raise ValueError("values: give at least one value")
    seed_list = _seed_list(scenario, seeds)
    # Build (and so validate) every scenario before submitting anything.
    jobs: list[tuple[int, Any, int, Any]] = []
    for i, value in enumerate(values):
        base = apply_overrides(scenario, [(param, value)])
        for seed in seed_list:
            jobs.append((i, value, seed, apply_overrides(base, [("seed", seed)])))

    own = executor is None
    pool: Executor = executor or ProcessPoolExecutor(
        max_workers=max_workers or min(len(jobs), os.cpu_count() or 1)
    )
    rows: list[dict[str, Any]] = []
    try:
        futures: dict[Future[dict[str, Any]], tuple[int, Any, int]] = {
            pool.submit(run_summary, sc): (i, value, seed) for i, value, seed, sc in jobs
        }
        from tqdm.auto import tqdm

        bar = tqdm(total=len(futures), desc=f"sweep {param}", disable=not progress, leave=False)
        try:
            for fut in as_completed(futures):
                i, value, seed = futures[fut]
                rows.append({"_order": i, param: value, "seed": seed, **fut.result()})
                bar.update(1)
        finally:
            bar.close()
    finally:
        if own:
            pool.shutdown(wait=True, cancel_futures=True)
    frame = pd.DataFrame(rows).sort_values(["_order", "seed"], kind="stable")
    return fill_missing_counts(frame.drop(columns="_order").reset_index(drop=True))
