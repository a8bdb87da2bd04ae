"""Captures of every hop (tcpdump) and reading the PROXY header back from one (tshark).

One ``tcpdump -U`` per interface per hop, named as ns-3's trace helpers name them:
``<prefix>-<node>-<device>.pcap`` (``slab-node-3-eth0.pcap``, ``slab-haproxy-eth0.pcap``; the
``slab-`` of the device name is dropped). Each is stopped with SIGINT so the file is complete
(TOOLCHAIN). Its kernel buffer is 32 MiB (``-B``): libpcap's ring has one slot per
``snaplen``-sized frame, so the default 2 MiB holds about 32 frames at a 64 KiB snaplen, and a
burst of HAProxy's checks and connections overflowed it (measured: 32 packets kept, the rest of
the burst dropped). Each tcpdump's own report goes to ``<pcap>.log``; :attr:`Captures.dropped`
counts what the kernel dropped, and the lab adds a note when it is not zero.
:func:`proxy_sources` asks tshark's PROXY dissector for the source addresses in a capture; a v2
header on port 80 is claimed by the HTTP dissector unless
``tcp.try_heuristic_first`` is on (TOOLCHAIN).
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from sim.lab.netns import PREFIX, LabState, which

__all__ = ["Captures", "pcap_name", "proxy_sources"]


def pcap_name(namespace: str, device: str) -> str:
    """``slab-node-3`` + ``slab-eth0`` -> ``slab-node-3-eth0.pcap``."""
    return f"{namespace}-{device.removeprefix(PREFIX)}.pcap"


class Captures:
    """tcpdump on every ``(namespace, device)``, into ``directory``."""

    def __init__(self, state: LabState, directory: Path) -> None:
        self.state = state
        self.directory = directory
        self.procs: list[Any] = []
        self.files: list[Path] = []
        self.dropped: dict[str, int] = {}
        """Packets each capture's kernel buffer dropped, by pcap file name (after :meth:`stop`)."""

    def start(self, devices: list[tuple[str, str]]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        binary = which("tcpdump") or "tcpdump"
        for namespace, device in devices:
            path = self.directory / pcap_name(namespace, device)
            # --immediate-mode: libpcap hands over every packet at once, not in ring-buffer blocks
            # that a SIGINT would discard unwritten (the last few hundred ms of a run).
            argv = [
                binary,
                "-i",
                device,
                "-U",
                "--immediate-mode",
                "-n",
                "-s",
                "65535",
                "-B",
                "32768",
                "-w",
                str(path),
            ]
            self.procs.append(self.state.spawn(namespace, argv, log=_log(path)))
            self.files.append(path)
        # tcpdump needs a moment before its filter is attached; bounded wait for the files.
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and not all(p.exists() for p in self.files):
            time.sleep(0.05)
        time.sleep(0.2)

    def stop(self) -> list[str]:
        """SIGINT every tcpdump (flushes the file); the paths written."""
        time.sleep(0.2)  # the last packets are on their way to tcpdump
        for proc in self.procs:
            self.state.stop(proc, sig=signal.SIGINT)
        self.procs = []
        for path in self.files:
            log = _log(path)
            text = log.read_text(errors="replace") if log.exists() else ""
            found = _DROPPED.search(text)
            if found:
                self.dropped[path.name] = int(found.group(1))
        return [str(p) for p in self.files if p.exists()]

    def notes(self) -> list[str]:
        """One line per capture that lost packets (empty when every capture is complete)."""
        return [
            f"tcpdump: the kernel dropped {n} packets of {name}: that capture is incomplete"
            for name, n in sorted(self.dropped.items())
            if n
        ]


# tcpdump's last words on SIGINT: "12 packets captured / 12 packets received by filter /
# 0 packets dropped by kernel".
_DROPPED = re.compile(r"(\d+) packets? dropped by kernel")


def _log(pcap: Path) -> Path:
    return pcap.with_suffix(".log")


def proxy_sources(pcap: Path, timeout_s: float = 60.0) -> list[tuple[str, int]]:
    """``(source address, source port)`` of every PROXY header tshark finds in ``pcap``."""
    tshark = which("tshark")
    if tshark is None:
        raise FileNotFoundError("tshark is not installed (Debian package tshark)")
    done = subprocess.run(
        [
            tshark,
            "-r",
            str(pcap),
            "-o",
            "tcp.try_heuristic_first:TRUE",
            "-Y",
            "proxy",
            "-T",
            "fields",
            "-e",
            "proxy.src.ipv4",
            "-e",
            "proxy.srcport",
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    out = []
    for line in done.stdout.splitlines():
        cols = line.split("\t")
        if len(cols) == 2 and cols[0] and cols[1].isdigit():
            out.append((cols[0], int(cols[1])))
    return out
