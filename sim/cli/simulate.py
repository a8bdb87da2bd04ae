"""The simulator's sub-commands: ``compare``, ``run``, ``trace`` and ``sweep``.

``compare`` is the main job of ``make run``: the story's three setups and the pitfalls on one
topology, each with a failure of the node that announces the VIP, as one table plus CSV and PNG
files. The other commands run one preset with changes (``--set key=value``), print the hop-by-hop
path of one connection, or sweep one parameter over values and seeds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sim.cli import CliError

COMPARE_PRESETS: tuple[str, ...] = (
    "cluster",
    "local",
    "proxy_protocol",
    "local_naive",
    "haproxy_http_xff",
    "pp_unexpected",
    "pp_missing",
)
"""What ``compare`` runs: the story's setups and its pitfalls, :data:`sim.presets.PRESETS`."""

_SET_HELP = (
    "change one scenario parameter, e.g. --set nodes=5 --set external_traffic_policy=Local "
    "--set haproxy=tcp --set haproxy.send_proxy=v2 --set gateway_nodes=node-1,node-3 "
    "--set encapsulation=VXLANCrossSubnet (Calico: VXLAN, IPIP, VXLANCrossSubnet, "
    "IPIPCrossSubnet, None) --set haproxy.fastinter_s=0.5; repeatable; "
    "`srcip-lab run --list-params` lists every key"
)

_FMT = argparse.RawDescriptionHelpFormatter


def register(sub: Any) -> None:
    """Add the simulator sub-commands to the top-level parser's sub-parsers."""
    from sim.presets import ALTERNATIVES, PRESETS

    names = ", ".join([*PRESETS, *ALTERNATIVES])
    _register_compare(sub)
    _register_run(sub, names)
    _register_trace(sub, names)
    _register_sweep(sub, names)


def _register_compare(sub: Any) -> None:
    p = sub.add_parser(
        "compare",
        help="run the story's setups and pitfalls with a leader failure; table, CSV, figures",
        formatter_class=_FMT,
        description=(
            "Run the three setups of the story (cluster, local, proxy_protocol) and the pitfalls\n"
            "(local_naive, haproxy_http_xff, pp_unexpected, pp_missing) on one topology. In each\n"
            "the node that announces the VIP at the start is powered off at --fail-at seconds.\n"
            "Prints one comparison table and writes OUT/compare.csv, OUT/connections.csv,\n"
            "OUT/events.csv and figures OUT/reachability.png, OUT/timeline.png and\n"
            "OUT/load_spread.png."
        ),
        epilog="example:\n  srcip-lab compare --out out --duration 90 --fail-at 30",
    )
    p.add_argument("--out", default="out", help="directory for CSV and PNG files (default: out)")
    p.add_argument("--seed", type=int, default=1, help="random seed for every run (default: 1)")
    p.add_argument("--duration", type=float, default=120.0, help="simulated seconds (default: 120)")
    p.add_argument(
        "--fail-at",
        type=float,
        default=30.0,
        help="when the announcing node is powered off, in simulated seconds (default: 30); "
        "a negative value means no failure",
    )
    p.add_argument(
        "--no-figures", action="store_true", help="write the CSV files only, no PNG figures"
    )
    p.set_defaults(func=cmd_compare)


def _register_run(sub: Any, names: str) -> None:
    p = sub.add_parser(
        "run",
        help="simulate one preset (with changes) and print its summary",
        formatter_class=_FMT,
        description=f"Simulate one preset and print its summary.\n\npresets: {names}",
        epilog=(
            "examples:\n"
            "  srcip-lab run proxy_protocol --set nodes=5 --seed 7 --out run.csv\n"
            "  srcip-lab run local --set announcer=naive --node-down node-1@20\n"
            "  srcip-lab run cluster --node-down node-2@10:60   # off at 10 s, on at 60 s\n"
            "  srcip-lab run local --move-pod gw-2:node-1@20 --set request_time_s=30\n"
            "  srcip-lab run cluster --set encapsulation=VXLANCrossSubnet "
            "--delete-pod gw-1@10:force"
        ),
    )
    _add_scenario_args(p, names)
    p.add_argument("--out", metavar="FILE.csv", help="write one row per connection to this CSV")
    p.add_argument(
        "--events", metavar="FILE.csv", help="write the control-plane events to this CSV"
    )
    p.add_argument("--list-params", action="store_true", help="list every --set key and exit")
    p.add_argument(
        "--progress",
        choices=("auto", "on", "off"),
        default="auto",
        help="progress bar on stderr: auto shows it for runs of 100,000 expected connections "
        "or more (default: auto)",
    )
    p.set_defaults(func=cmd_run)


def _register_trace(sub: Any, names: str) -> None:
    p = sub.add_parser(
        "trace",
        help="show the hop-by-hop path of one connection",
        formatter_class=_FMT,
        description=(
            "Print the path of one connection hop by hop: source and destination IP:port at\n"
            "every hop, which element rewrote them, the PROXY header bytes in hex and the\n"
            f"X-Forwarded-For header at each HTTP hop.\n\npresets: {names}"
        ),
        epilog="examples:\n  srcip-lab trace cluster\n  srcip-lab trace proxy_protocol --conn 3",
    )
    _add_scenario_args(p, names)
    p.add_argument(
        "--conn",
        type=int,
        default=None,
        help="connection id to trace (default: the first successful connection, or connection 0 "
        "when none succeeded: its last hop shows where and why it failed)",
    )
    p.set_defaults(func=cmd_trace)


def _register_sweep(sub: Any, names: str) -> None:
    p = sub.add_parser(
        "sweep",
        help="run one preset over several values of a parameter and several seeds",
        formatter_class=_FMT,
        description=(
            "Simulate PRESET once per (value, seed) in parallel (a local process pool, or a\n"
            "local Dask cluster with --dask) and print one summary row per run.\n\n"
            f"presets: {names}"
        ),
        epilog=(
            "examples:\n"
            "  srcip-lab sweep cluster --node-down node-3@20 --param nodes --values 3,4,6\n"
            "  srcip-lab sweep local --node-down node-3@20 --param probe_interval_s "
            "--values 0.6,1,2 --seeds 4 --dask"
        ),
    )
    _add_scenario_args(p, names)
    p.add_argument("--param", required=True, help="the parameter to vary (a --set key)")
    p.add_argument(
        "--values", required=True, help="comma-separated values, e.g. 0.5,1,2 (for tuples: ';')"
    )
    p.add_argument("--seeds", type=int, default=1, help="seeds per value (default: 1)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="parallel workers (default: one per CPU, at most one per run; 2 with --dask)",
    )
    p.add_argument(
        "--dask",
        action="store_true",
        help="run on a local dask.distributed cluster instead of a process pool",
    )
    p.add_argument("--out", metavar="FILE.csv", help="write the sweep table to this CSV")
    p.set_defaults(func=cmd_sweep)


def _add_scenario_args(p: argparse.ArgumentParser, names: str, *, pod_events: bool = True) -> None:
    """PRESET, ``--set``, ``--seed``, ``--node-down`` and (``pod_events``) the pod events."""
    p.add_argument("preset", nargs="?", metavar="PRESET", help=f"one of: {names}")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=_SET_HELP)
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's)")
    p.add_argument(
        "--node-down",
        action="append",
        default=[],
        metavar="NODE@AT[:UP]",
        help="power NODE off at AT seconds (and on again at UP); repeatable; AT must lie "
        "within the run",
    )
    if not pod_events:
        return
    p.add_argument(
        "--delete-pod",
        action="append",
        default=[],
        metavar="POD@AT[:force]",
        help="delete gateway pod POD (gw-1, ...) at AT seconds: gracefully (Terminating, drains "
        "for termination_drain_s, K18) or with :force at once; repeatable",
    )
    p.add_argument(
        "--move-pod",
        action="append",
        default=[],
        metavar="POD:NODE@AT",
        help="roll gateway pod POD out to NODE at AT seconds (the new pod starts first, the old "
        "one terminates once it is Ready, K18); repeatable",
    )


def _at(option: str, text: str, when: str) -> float:
    try:
        return float(when)
    except ValueError:
        raise CliError(f"{option}: the time must be a number of seconds, got {text!r}") from None


def _parse_delete_pod(text: str) -> Any:
    from sim.scenario import DeletePod

    pod, sep, when = text.partition("@")
    at, colon, mode = when.partition(":")
    if not sep or not pod or (colon and mode != "force"):
        raise CliError(f"--delete-pod: expected POD@AT or POD@AT:force, got {text!r}")
    return DeletePod(pod=pod, at_s=_at("--delete-pod", text, at), force=bool(colon))


def _parse_move_pod(text: str) -> Any:
    from sim.scenario import MovePod

    what, sep, when = text.partition("@")
    pod, colon, node = what.partition(":")
    if not sep or not colon or not pod or not node:
        raise CliError(f"--move-pod: expected POD:NODE@AT, got {text!r}")
    return MovePod(pod=pod, to_node=node, at_s=_at("--move-pod", text, when))


def _parse_node_down(text: str) -> Any:
    from sim.scenario import NodeDown

    node, sep, when = text.partition("@")
    if not sep or not node:
        raise CliError(f"--node-down: expected NODE@AT or NODE@AT:UP, got {text!r}")
    at, _, up = when.partition(":")
    try:
        at_s = float(at)
        up_s = float(up) if up else None
    except ValueError:
        raise CliError(f"--node-down: times must be numbers, got {text!r}") from None
    return NodeDown(node=node, at_s=at_s, up_at_s=up_s)


def _scenario_from_args(args: argparse.Namespace) -> Any:
    from sim.overrides import apply_overrides
    from sim.presets import get

    if not args.preset:
        raise CliError("a PRESET is required (see --help for the list)")
    scenario = get(args.preset)
    changes: list[tuple[str, Any]] = []
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise CliError(f"--set: expected KEY=VALUE, got {item!r}")
        changes.append((key.strip(), value.strip()))
    if args.seed is not None:
        changes.append(("seed", args.seed))
    scenario = apply_overrides(scenario, changes)
    events = (
        *(_parse_node_down(t) for t in args.node_down),
        *(_parse_delete_pod(t) for t in getattr(args, "delete_pod", ())),
        *(_parse_move_pod(t) for t in getattr(args, "move_pod", ())),
    )
    if events:
        from dataclasses import replace

        # Scenario validates them: unknown nodes or pods, and times outside the run, are errors
        # that name the event (failures[i]...).
        scenario = replace(scenario, failures=scenario.failures + events)
    return scenario


def _print_frame(frame: Any) -> None:
    import pandas as pd

    with pd.option_context(
        "display.max_columns", None, "display.width", 200, "display.max_colwidth", 60
    ):
        print(frame.to_string(index=False))


def cmd_run(args: argparse.Namespace) -> int:
    """``srcip-lab run``."""
    if args.list_params:
        from sim.overrides import allowed_keys

        print("\n".join(allowed_keys()))
        return 0
    from sim.topology import simulate

    scenario = _scenario_from_args(args)
    expected = scenario.rate_per_s * scenario.duration_s
    show = args.progress == "on" or (args.progress == "auto" and expected >= 100_000)
    result = simulate(scenario, progress=show)
    _print_frame(result.summary_frame())
    if args.out:
        result.connections.to_csv(args.out, index=False)
        print(f"wrote {len(result.connections)} connections to {args.out}", file=sys.stderr)
    if args.events:
        result.events.to_csv(args.events, index=False)
        print(f"wrote {len(result.events)} events to {args.events}", file=sys.stderr)
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    """``srcip-lab trace``."""
    from sim.trace import trace

    scenario = _scenario_from_args(args)
    hops = trace(scenario, conn_id=args.conn)
    ending = hops.attrs["outcome"]
    if hops.attrs["reason"]:
        ending += f" ({hops.attrs['reason']})"
    print(f"# {scenario.name}: connection {hops.attrs['conn_id']}, hop by hop; outcome: {ending}")
    for record in hops.to_dict("records"):
        row = {str(k): str(v) for k, v in record.items()}
        print(f"\nhop {row['hop']}  {row['element']}")
        print(f"  {row['src']}  ->  {row['dst']}")
        if row["rewrite"]:
            print(f"  rewrite: {row['rewrite']}")
        if row["proxy_header_hex"]:
            size = len(row["proxy_header_hex"]) // 2
            print(f"  PROXY header ({size} bytes): {row['proxy_header_hex']}")
        if row["xff"]:
            print(f"  X-Forwarded-For: {row['xff']}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """``srcip-lab sweep``."""
    from sim.overrides import check_key, parse_value
    from sim.sweep import sweep

    scenario = _scenario_from_args(args)
    check_key(args.param)
    sep = ";" if ";" in args.values else ","
    values = [parse_value(args.param, v.strip()) for v in args.values.split(sep) if v.strip()]
    if args.workers is not None and args.workers < 1:
        raise CliError("--workers: expected a positive number")
    if args.dask:
        from distributed import Client, LocalCluster

        with (
            LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=args.workers or 2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            ) as cluster,
            Client(cluster) as client,  # type: ignore[no-untyped-call]
        ):
            frame = sweep(scenario, args.param, values, args.seeds, client.get_executor())
    else:
        frame = sweep(scenario, args.param, values, args.seeds, max_workers=args.workers)
    _print_frame(frame)
    if args.out:
        frame.to_csv(args.out, index=False)
        print(f"wrote {len(frame)} rows to {args.out}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """``srcip-lab compare``: the main job of ``make run``."""
    from sim.cli.compare import run_compare

    out = Path(args.out)
    run_compare(
        out=out,
        seed=args.seed,
        duration_s=args.duration,
        fail_at_s=None if args.fail_at < 0 else args.fail_at,
        figures=not args.no_figures,
        presets=COMPARE_PRESETS,
    )
    return 0
