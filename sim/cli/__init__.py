"""The ``srcip-lab`` command line.

Sub-commands are registered by small modules so that each part of the package owns its own
arguments: ``pp`` (the PROXY protocol codec, :mod:`sim.cli.pp`), the simulator commands
``compare``, ``run``, ``trace`` and ``sweep`` (:mod:`sim.cli.simulate`), ``config`` and
``explain`` (scenario to configuration files and back, :mod:`sim.cli.config`), and the
real-kernel lab ``lab run`` / ``lab down`` (:mod:`sim.cli.lab`).

Errors the user can fix (a bad argument, a malformed header) print one line on stderr,
``srcip-lab: error: ...``, and exit with status 2; argparse's usage errors (a missing or
unknown option) and unwritable output paths too.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

EXIT_USAGE = 2


class CliError(Exception):
    """An error caused by the user's input; printed as one line, exit status 2."""


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), like every other error.

    argparse prints the whole usage block before its message; the CLI promises one clear line,
    so the usage is replaced by a pointer to ``--help``. Sub-parsers inherit this class.
    """

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("srcip-lab").strip()
        where = f"{command}: " if command else ""
        self.exit(EXIT_USAGE, f"srcip-lab: error: {where}{message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every sub-command registered."""
    parser = _OneLineParser(
        prog="srcip-lab",
        description=(
            "See and measure why a Kubernetes pod sees 172.x instead of the client IP: "
            "simulate MetalLB L2, kube-proxy, HAProxy and the Istio ingress gateway, "
            "and encode or decode real PROXY protocol headers."
        ),
    )
    from sim import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    from sim.cli.config import register as register_config
    from sim.cli.lab import register as register_lab
    from sim.cli.pp import register as register_pp
    from sim.cli.simulate import register as register_sim

    register_pp(sub)
    register_sim(sub)
    register_config(sub)
    register_lab(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except CliError as exc:
        print(f"srcip-lab: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:  # scenario validation and codec errors name the bad field
        print(f"srcip-lab: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:  # a run within the 20M-connection bound can still exceed this machine
        print(
            "srcip-lab: error: out of memory: rate_per_s x duration_s asks for too many "
            "connections for this machine",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        print("srcip-lab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # pragma: no cover - e.g. `srcip-lab ... | head`
        return 0
    except OSError as exc:  # an --out path that cannot be written (missing folder, a directory)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"srcip-lab: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
