"""Network namespaces, processes and the state file of the real-kernel lab.

Everything the lab creates is named with :data:`PREFIX` (``slab-``): the namespaces, and every
link inside them. Nothing is created in the root namespace: namespaces are made with
:func:`pyroute2.netns.create`, veth pairs are created from inside one lab namespace with the
peer placed straight into another, and every socket the lab's own Python code opens is created
inside a lab namespace (:func:`ns_socket`), so even a bug cannot send a packet from the host's
own stack.

Processes (HAProxy, tcpdump, arping, iptables-restore) run under ``ip netns exec`` and are
recorded, with their command line, in a state file (:data:`STATE_FILE`) before anything else
happens; :func:`lab_down` stops them by PID (checking ``/proc/PID/cmdline`` first, so a reused
PID is never hit) and deletes the namespaces. It runs on normal exit, on Ctrl-C, on SIGTERM,
and, after a crash, from ``srcip-lab lab down``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute, netns

__all__ = [
    "PREFIX",
    "STATE_FILE",
    "LabState",
    "existing_namespaces",
    "in_netns",
    "lab_down",
    "missing_requirements",
    "ns_run",
    "ns_socket",
]

PREFIX = "slab-"
"""Prefix of every namespace and link of the lab (``slab-node-1``, ``slab-eth0``, ...)."""
STATE_FILE = Path("/run/srcip-lab/state.json")
"""Where a running lab records its namespaces and processes (read by ``lab down``)."""
TOOLS = ("ip", "iptables-restore", "haproxy", "tcpdump", "arping")
"""Programs the lab runs (tshark is optional: only for reading captures back)."""
_SBIN = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")


def which(tool: str) -> str | None:
    """A tool's path, also in ``/usr/sbin`` (not on a non-root user's PATH)."""
    found = shutil.which(tool)
    if found is None:
        for d in _SBIN:
            path = os.path.join(d, tool)
            if os.access(path, os.X_OK):
                return path
    return found


def missing_requirements() -> list[str]:
    """What the lab needs and this machine lacks, one readable item each (empty: all there)."""
    missing: list[str] = []
    if not sys.platform.startswith("linux"):
        return [f"Linux (this is {sys.platform})"]
    if os.geteuid() != 0:
        missing.append("root (network namespaces and iptables need it; run with sudo)")
    if not os.path.isdir("/proc/self/ns") or not os.path.exists("/proc/self/ns/net"):
        missing.append("network namespaces (/proc/self/ns/net is missing)")
    packages = {"ip": "iproute2", "iptables-restore": "iptables", "arping": "iputils-arping"}
    for tool in TOOLS:
        if which(tool) is None:
            missing.append(f"{tool} (Debian package {packages.get(tool, tool)})")
    return missing


def existing_namespaces() -> list[str]:
    """Lab-prefixed network namespaces that exist now."""
    return sorted(n for n in netns.listnetns() if n.startswith(PREFIX))


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Switch *this thread* into namespace ``name`` for the block, then back.

    Only used around socket creation and netlink handles: a socket keeps the namespace it was
    created in, so the rest of the program can use it from the root namespace.
    """
    if not name.startswith(PREFIX):
        raise ValueError(f"in_netns: {name!r} is not a lab namespace (prefix {PREFIX!r})")
    here = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        netns.setns(name, flags=0)
        try:
            yield
        finally:
            netns.setns(here, flags=0)
    finally:
        os.close(here)


def ns_socket(name: str, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """An IPv4 socket created inside lab namespace ``name`` (non-blocking)."""
    with in_netns(name):
        sock = socket.socket(socket.AF_INET, kind)
    sock.setblocking(False)
    return sock


def ipr(name: str) -> IPRoute:
    """A netlink handle bound to lab namespace ``name``."""
    with in_netns(name):
        return IPRoute()


def ns_run(name: str, argv: Sequence[str], *, timeout_s: float = 10.0, stdin: str = "") -> str:
    """Run ``argv`` inside lab namespace ``name`` to completion (bounded); return stdout."""
    if not name.startswith(PREFIX):
        raise ValueError(f"ns_run: {name!r} is not a lab namespace")
    ip = which("ip") or "ip"
    done = subprocess.run(
        [ip, "netns", "exec", name, *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"in {name}: {' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}"
        )
    return done.stdout


class LabState:
    """The state file: namespaces and processes of the running lab, written as they appear."""

    def __init__(self, path: Path = STATE_FILE) -> None:
        self.path = path
        self.data: dict[str, Any] = {"owner_pid": os.getpid(), "namespaces": [], "procs": []}
        self.procs: list[subprocess.Popen[bytes]] = []

    def save(self) -> None:
        """Write the state atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)

    def add_namespace(self, name: str) -> None:
        """Create lab namespace ``name`` (recorded first, so a crash right after is cleaned)."""
        if not name.startswith(PREFIX):
            raise ValueError(f"namespace {name!r} lacks the lab prefix {PREFIX!r}")
        self.data["namespaces"].append(name)
        self.save()
        netns.create(name)

    def spawn(
        self, name: str, argv: Sequence[str], *, log: Path | None = None, pipe: bool = False
    ) -> Any:
        """Start ``argv`` in namespace ``name`` in the background; record its PID.

        Output goes to ``log``, to a pipe (``pipe=True``, read ``proc.stdout``) or nowhere.
        """
        ip = which("ip") or "ip"
        out: Any = subprocess.DEVNULL
        if pipe:
            out = subprocess.PIPE
        elif log is not None:
            out = open(log, "wb")  # noqa: SIM115
        try:
            proc = subprocess.Popen(
                [ip, "netns", "exec", name, *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches us, not them
            )
        finally:
            if log is not None and not pipe:
                out.close()
        self.procs.append(proc)
        # `ip netns exec` execs the program, so the PID is the program's own.
        self.data["procs"].append({"pid": proc.pid, "argv0": os.path.basename(argv[0])})
        self.save()
        return proc

    def spawn_piped(self, name: str, argv: Sequence[str]) -> Any:
        """:meth:`spawn` with stdout and stderr to a pipe."""
        return self.spawn(name, argv, pipe=True)

    def stop(self, proc: Any, sig: int = signal.SIGTERM, timeout_s: float = 5.0) -> None:
        """Stop one process we started, by its PID: ``sig``, then SIGKILL after ``timeout_s``."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, sig)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout_s)
        self.data["procs"] = [p for p in self.data["procs"] if p["pid"] != proc.pid]
        if proc in self.procs:
            self.procs.remove(proc)
        self.save()

    def teardown(self) -> list[str]:
        """Stop every recorded process and delete every namespace; return what was removed."""
        for proc in list(self.procs):
            self.stop(proc)
        return lab_down(self.path)


def _cmdline0(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return os.path.basename(raw.split(b"\0", 1)[0].decode(errors="replace"))


def _kill_pid(pid: int, argv0: str) -> bool:
    """SIGTERM then SIGKILL ``pid`` if it still runs ``argv0`` (never a reused PID)."""
    if _cmdline0(pid) != argv0:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline and _cmdline0(pid) == argv0:
        time.sleep(0.05)
    if _cmdline0(pid) == argv0:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return True


def _ns_pids(name: str) -> list[int]:
    """PIDs of processes living in lab namespace ``name`` (what ``ip netns pids`` reports)."""
    try:
        return [int(p) for p in netns.ns_pids().get(name, [])]
    except (OSError, ValueError):
        return []


def lab_down(path: Path = STATE_FILE) -> list[str]:
    """Remove the lab: recorded processes by PID, then every ``slab-`` namespace.

    Safe to run at any time (also with no lab present); returns what it removed. Processes
    still inside a lab namespace after that (started by a crashed run that could not record
    them) are stopped by their PID as well: nothing else lives in those namespaces.
    """
    removed: list[str] = []
    state: dict[str, Any] = {}
    if path.exists():
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(path.read_text())
    for rec in state.get("procs", []):
        if _kill_pid(int(rec["pid"]), str(rec["argv0"])):
            removed.append(f"process {rec['pid']} ({rec['argv0']})")
    names = sorted(set(existing_namespaces()) | set(state.get("namespaces", [])))
    for name in names:
        if not name.startswith(PREFIX):
            continue
        for pid in _ns_pids(name):
            if pid != os.getpid() and _kill_pid(pid, _cmdline0(pid)):
                removed.append(f"process {pid} in {name}")
        if name in netns.listnetns():
            with contextlib.suppress(OSError):
                netns.remove(name)
                removed.append(f"namespace {name}")
    with contextlib.suppress(OSError):
        path.unlink()
    return removed
