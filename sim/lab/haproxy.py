"""The external HAProxy of the lab: Debian's real binary with the generated ``haproxy.cfg``.

Real: everything. ``haproxy -f haproxy.cfg -db`` runs in namespace ``slab-haproxy`` with the
configuration ``srcip-lab config`` writes (``sim.config.haproxy_cfg``, issue 10): its PROXY
headers (H1, H3), its health checks and their timing against a powered-off server (H4, H5,
H10), ``mode http`` with ``option forwardfor`` (H7). Its output is read line by line with a
timestamp, so the moment it marks a server DOWN or UP can be compared with the simulator.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

from sim.addresses import HAPROXY_IP, HAPROXY_PORT
from sim.lab.netns import LabState, which

__all__ = ["RealHAProxy", "server_changes"]

_STATE = re.compile(r"Server (\S+)/(\S+) is (DOWN|UP)")


def server_changes(lines: list[tuple[float, str]]) -> list[tuple[float, str, str]]:
    """``(t, server, DOWN|UP)`` for every state change in HAProxy's log lines."""
    out = []
    seen = set()
    for t, line in lines:
        match = _STATE.search(line)
        if match:
            key = (match[2], match[3], round(t, 1))
            if key not in seen:  # the change is logged twice (alert and log line)
                seen.add(key)
                out.append((t, match[2], match[3]))
    return out


class RealHAProxy:
    """One HAProxy process in the lab's HAProxy namespace, stopped by its PID."""

    def __init__(self, state: LabState, namespace: str, config: str, workdir: Path) -> None:
        self.state = state
        self.namespace = namespace
        self.config_text = config
        self.cfg = workdir / "haproxy.cfg"
        self.cfg.write_text(config)
        self.lines: list[tuple[float, str]] = []
        self.proc: Any = None
        self._reader: threading.Thread | None = None

    def start(self, timeout_s: float = 5.0) -> None:
        """Start HAProxy; wait (bounded) until its frontend listens."""
        import subprocess

        binary = which("haproxy") or "haproxy"
        check = subprocess.run(
            ["ip", "netns", "exec", self.namespace, binary, "-c", "-f", str(self.cfg)],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if check.returncode != 0:
            raise RuntimeError(f"haproxy -c rejected the generated haproxy.cfg:\n{check.stdout}")
        self.proc = self.state.spawn_piped(self.namespace, [binary, "-f", str(self.cfg), "-db"])
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout_s
        while not self._listening():
            if self.proc.poll() is not None:
                raise RuntimeError("haproxy exited:\n" + "\n".join(x for _, x in self.lines))
            if time.monotonic() > deadline:
                raise RuntimeError(f"haproxy not listening after {timeout_s} s")
            time.sleep(0.05)

    def _read(self) -> None:
        stream = self.proc.stdout
        for _ in range(1_000_000):
            raw = stream.readline()
            if not raw:
                return
            self.lines.append((time.monotonic(), raw.decode(errors="replace").rstrip()))

    def _listening(self) -> bool:
        wanted = f"{_hex(HAPROXY_IP)}:{HAPROXY_PORT:04X}"
        try:
            text = Path(f"/proc/{self.proc.pid}/net/tcp").read_text()
        except OSError:
            return False
        return any(
            cols[1] == wanted and cols[3] == "0A"
            for cols in (line.split() for line in text.splitlines()[1:])
        )

    def changes(self) -> list[tuple[float, str, str]]:
        """Server state changes so far (monotonic time, server name, DOWN/UP)."""
        return server_changes(list(self.lines))

    def stop(self) -> None:
        if self.proc is not None:
            self.state.stop(self.proc)
            self.proc = None
        if self._reader is not None:
            self._reader.join(timeout=2.0)


def _hex(ip: str) -> str:
    parts = [int(x) for x in ip.split(".")]
    return "".join(f"{p:02X}" for p in reversed(parts))
