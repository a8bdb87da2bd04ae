"""``srcip-lab lab run`` and ``srcip-lab lab down``: the real-kernel lab (:mod:`sim.lab`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sim.cli import CliError

__all__ = ["register"]

_FMT = argparse.RawDescriptionHelpFormatter
_DESCRIPTION = """\
Run PRESET on Linux's own data plane, beside the simulator, and compare.

Builds the scenario in network namespaces named slab-*: one bridge segment with
the clients, HAProxy and the nodes; Calico-style pods (veth, /32, proxy ARP) and
VXLAN (or native routes for encapsulation None/CrossSubnet). Loads the
kube-proxy rules `srcip-lab config` generates with iptables-restore in each
node, starts the real HAProxy with the generated haproxy.cfg, stand-in gateway,
sidecar and app servers, and an announcer that puts the VIP on MetalLB's winner
and sends gratuitous ARPs. Sends N real HTTP requests, reads every node's
conntrack table, and prints the simulated and the observed quantities side by
side. Everything is removed afterwards (also on Ctrl-C; after a crash run
`srcip-lab lab down`). Needs Linux, root, iproute2, iptables, haproxy, tcpdump
and arping (tshark only to read captures back); exits 2 naming what is missing."""


def register(sub: Any) -> None:
    """Add ``lab`` with its ``run`` and ``down`` sub-commands."""
    from sim.cli.simulate import _add_scenario_args
    from sim.presets import ALTERNATIVES, PRESETS

    names = ", ".join([*PRESETS, *ALTERNATIVES])
    lab = sub.add_parser(
        "lab",
        help="run a preset on a real kernel in network namespaces (needs root)",
        formatter_class=_FMT,
        description="The real-kernel lab: `lab run PRESET` and `lab down`.",
    )
    labsub = lab.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    p = labsub.add_parser(
        "run",
        help="deploy PRESET in network namespaces, send requests, compare with the simulator",
        formatter_class=_FMT,
        description=f"{_DESCRIPTION}\n\npresets: {names}",
        epilog=(
            "examples:\n"
            "  sudo srcip-lab lab run cluster\n"
            "  sudo srcip-lab lab run cluster --set encapsulation=None --connections 40\n"
            "  sudo srcip-lab lab run proxy_protocol --pcap out/pcap --json\n"
            "  sudo srcip-lab lab run local --set duration_s=10 --node-down node-3@3 --long 2"
        ),
    )
    _add_scenario_args(p, names, pod_events=False)  # the lab models NodeDown only
    p.add_argument(
        "--connections",
        type=int,
        default=20,
        metavar="N",
        help="real requests to send, 1-2000 (default: 20); with failures they are spread "
        "evenly over duration_s",
    )
    p.add_argument(
        "--long",
        type=int,
        default=0,
        metavar="N",
        help="keep-alive connections opened at the start, one request every 0.5 s (M17)",
    )
    p.add_argument(
        "--pcap",
        metavar="DIR",
        type=Path,
        help="capture every interface of every hop into DIR/slab-<node>-<device>.pcap",
    )
    p.add_argument(
        "--json", action="store_true", help="print one JSON object: observed, compare, pcaps"
    )
    p.add_argument("--out", metavar="FILE.csv", help="write the observed rows to this CSV")
    p.set_defaults(func=cmd_lab_run)
    p = labsub.add_parser(
        "down",
        help="remove every slab-* namespace and stop the lab's processes (after a crash)",
        formatter_class=_FMT,
        description="Stop the processes a lab recorded in /run/srcip-lab/state.json (by PID)\n"
        "and delete every network namespace named slab-*. Safe when no lab exists.",
    )
    p.set_defaults(func=cmd_lab_down)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def cmd_lab_run(args: argparse.Namespace) -> int:
    """``srcip-lab lab run``."""
    from sim.cli.simulate import _print_frame, _scenario_from_args
    from sim.lab import LabBusy, LabOptions, LabUnavailable, run_lab
    from sim.lab.compare import compare_frames
    from sim.topology import simulate

    scenario = _scenario_from_args(args)
    if args.long < 0 or args.long > 50:
        raise CliError("--long: expected 0 to 50 connections")
    options = LabOptions(
        connections=args.connections, long_connections=args.long, pcap_dir=args.pcap
    )
    try:
        run = run_lab(scenario, options)
    except (LabUnavailable, LabBusy) as exc:
        raise CliError(str(exc)) from None
    compared = compare_frames(simulate(scenario).connections, run.observed, scenario)
    if args.out:
        run.observed.to_csv(args.out, index=False)
    if args.json:
        doc = {
            "scenario": scenario.name,
            "observed": _jsonable(run.observed.to_dict("records")),
            "compare": _jsonable(compared),
            "pcaps": run.pcaps,
            "notes": run.notes,
            "events": _jsonable(run.events),
            "haproxy_changes": [list(c) for c in run.haproxy_changes],
        }
        print(json.dumps(doc, indent=1))
        return 0
    _print_report(scenario, run, compared, _print_frame)
    return 0


def _print_report(scenario: Any, run: Any, compared: list[dict[str, Any]], show: Any) -> None:
    import pandas as pd

    obs = run.observed
    print(f"# {scenario.name}: {len(obs)} real connections in network namespaces")
    counts = obs["outcome"].value_counts().to_dict()
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    table = pd.DataFrame(
        [
            {
                "what": c["what"],
                "simulated": json.dumps(c["simulated"]),
                "observed": json.dumps(c["observed"]),
                "equal": {True: "yes", False: "NO", None: "(not simulated yet)"}[c["equal"]],
            }
            for c in compared
        ]
    )
    print()
    show(table)
    for note in run.notes:
        print(f"note: {note}")
    for t, server, what in run.haproxy_changes:
        print(f"haproxy: server {server} {what} at {t:.2f} s")
    for a in run.long:
        print(
            f"long connection {a.client_ip}: {a.outcome} after {a.requests} requests at "
            f"{a.t_end:.2f} s {a.detail}"
        )
    if run.pcaps:
        print(f"wrote {len(run.pcaps)} captures to {Path(run.pcaps[0]).parent}", file=sys.stderr)


def cmd_lab_down(args: argparse.Namespace) -> int:
    """``srcip-lab lab down``."""
    from sim.lab import lab_down, missing_requirements

    missing = [m for m in missing_requirements() if m.startswith(("root", "Linux"))]
    if missing:
        raise CliError("lab down needs: " + "; ".join(missing))
    removed = lab_down()
    print("\n".join(f"removed {r}" for r in removed) if removed else "no lab to remove")
    return 0
