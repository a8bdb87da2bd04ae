"""The configuration sub-commands: ``config`` (scenario → files) and ``explain`` (files → answer).

``config`` writes what implements a preset (:func:`sim.config.write_configs`); ``explain`` reads
a user's ``haproxy.cfg`` and Kubernetes YAML, builds the scenario they imply and prints what the
app will see, and why (:mod:`sim.config.explain`). Both take ``--set KEY=VALUE`` like ``run``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sim.cli import CliError

_FMT = argparse.RawDescriptionHelpFormatter

_CONFIG_DESCRIPTION = """\
Write the configuration files that implement PRESET (with --set changes) into DIR,
each commented with the fact IDs that explain its key lines:

  haproxy.cfg                HAProxy's frontend and backend (only when the scenario
                             has HAProxy); `haproxy -c -f` accepts it
  service.yaml               the gateway's LoadBalancer Service and its Deployment
                             (placement as node affinity, proxy.istio.io/config)
  nodes.yaml                 the nodes as `kubectl get nodes -o yaml` shows them
  metallb.yaml               MetalLB's IPAddressPool + L2Advertisement (MetalLB 0.6's
                             ConfigMap for announcer=naive)
  istio-envoyfilter.yaml     the story's EnvoyFilter (with the gateway's PROXY filter)
  alternative-gateway-topology/gateway-deployment.yaml
                             the same with gatewayTopology.proxyProtocol instead
  calico-ippool.yaml         Calico's IPPool with the scenario's encapsulation
  NODE/iptables-save.txt     the rules kube-proxy (iptables mode) writes on NODE

`srcip-lab explain DIR` reads them back."""

_EXPLAIN_DESCRIPTION = """\
Read your configuration files and say what source address each element will see,
who rewrote it, and what the application ends up with. PATH is a haproxy.cfg, a
YAML file (one or more documents: Service, Deployment, Node, MetalLB IPAddressPool,
L2Advertisement or its ConfigMap, Istio EnvoyFilter, Calico IPPool or Installation,
`kind: List`) or a directory (its *.cfg, *.yaml, *.yml and *.json files; not its
subdirectories).

Prints what was inferred (with FILE:LINE), what had to be assumed and why, the
hop-by-hop path of one connection, the verdict of a simulation of the implied
scenario (reachability, client IP at the gateway and at the app) and warnings
for known pitfalls with their fact IDs. --set changes an assumed value (traffic,
timers). Resources of other kinds and haproxy.cfg directives that do not matter
are listed as ignored; a file that cannot be read, or a setting that would change
the answer but is not modelled, is an error (exit status 2)."""


def register(sub: Any) -> None:
    """Add ``config`` and ``explain`` to the top-level parser's sub-parsers."""
    from sim.cli.simulate import _SET_HELP
    from sim.presets import ALTERNATIVES, PRESETS

    names = ", ".join([*PRESETS, *ALTERNATIVES])
    p = sub.add_parser(
        "config",
        help="write the haproxy.cfg, Kubernetes YAML and iptables rules of a preset",
        formatter_class=_FMT,
        description=f"{_CONFIG_DESCRIPTION}\n\npresets: {names}",
        epilog=(
            "examples:\n"
            "  srcip-lab config proxy_protocol --out cfg/\n"
            "  srcip-lab config local --set encapsulation=VXLANCrossSubnet --out cfg-local/"
        ),
    )
    p.add_argument("preset", nargs="?", metavar="PRESET", help=f"one of: {names}")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=_SET_HELP)
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write (created)")
    p.set_defaults(func=cmd_config, seed=None, node_down=[])

    p = sub.add_parser(
        "explain",
        help="read haproxy.cfg and Kubernetes YAML: what IP will the app see, and why",
        formatter_class=_FMT,
        description=_EXPLAIN_DESCRIPTION,
        epilog=(
            "examples:\n"
            "  srcip-lab explain examples/story-send-proxy-v2/\n"
            "  srcip-lab explain haproxy.cfg gateway.yaml metallb.yaml --json\n"
            "  srcip-lab explain cfg/ --set in_cluster_share=0.1 --set duration_s=30"
        ),
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories to read")
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (keys: scenario, inferred, assumed, ignored, addresses, "
        "verdict, trace, warnings) instead of text",
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=_SET_HELP)
    p.set_defaults(func=cmd_explain)


def cmd_config(args: argparse.Namespace) -> int:
    """``srcip-lab config``."""
    from sim.cli.simulate import _scenario_from_args
    from sim.config import write_configs

    scenario = _scenario_from_args(args)
    for path in write_configs(scenario, args.out):
        print(path)
    return 0


def _changes(items: list[str]) -> list[tuple[str, Any]]:
    changes: list[tuple[str, Any]] = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise CliError(f"--set: expected KEY=VALUE, got {item!r}")
        changes.append((key.strip(), value.strip()))
    return changes


def cmd_explain(args: argparse.Namespace) -> int:
    """``srcip-lab explain``."""
    from sim.config.explain import ExplainError, explain
    from sim.config.report import render_text

    try:
        result = explain(args.paths, changes=_changes(args.set))
    except ExplainError as exc:
        raise CliError(str(exc)) from None
    report = result.report()
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print(render_text(report), end="")
    return 0
