"""The lab's safety rules: prefixed names, nothing in the root namespace, refusal when a lab
exists, cleanup after a crash from the state file, one-line errors without root or tools."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from lab_harness import require_lab

from sim.cli import main
from sim.lab import LabBusy, existing_namespaces, lab_down, run_lab
from sim.lab.netns import PREFIX, STATE_FILE
from sim.lab.topology import LabTopology

_CLI = os.path.join(os.path.dirname(sys.executable), "srcip-lab")


def test_help_names_the_requirements(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["lab", "run", "--help"])
    out = capsys.readouterr().out
    assert "root" in out and "iptables" in out and "--pcap" in out and "--json" in out


def test_missing_tools_exit_2_naming_them(monkeypatch, capsys) -> None:
    import sim.lab.run as lab_run_module

    monkeypatch.setattr(lab_run_module, "missing_requirements", lambda: ["tcpdump (Debian)"])
    assert main(["lab", "run", "cluster"]) == 2
    err = capsys.readouterr().err
    assert "tcpdump" in err and err.count("\n") == 1


def test_every_device_name_carries_the_prefix_and_fits_ifnamsiz() -> None:
    from sim.lab.topology import PodSpec

    pods = [PodSpec(f"gw-{i}", i % 8, f"172.16.{i % 8 + 1}.10") for i in range(1, 9)]
    topo = LabTopology(None, 8, pods, 1000, "VXLAN", True)  # type: ignore[arg-type]
    for _ns, dev in topo.devices():
        assert dev.startswith(PREFIX) and len(dev) <= 15
    assert all(p.node_link.startswith(PREFIX) and len(p.node_link) <= 15 for p in pods)


def test_refuses_to_start_when_a_lab_namespace_exists() -> None:
    require_lab()
    from pyroute2 import netns

    netns.create(PREFIX + "busy")
    try:
        with pytest.raises(LabBusy, match="lab down"):
            run_lab(__import__("sim").presets.cluster)
    finally:
        lab_down()
    assert existing_namespaces() == []


def _root_view() -> str:
    cmds = [["ip", "-o", "link"], ["ip", "-o", "addr"], ["ip", "route"], ["ip", "rule"]]
    out = [subprocess.run(c, capture_output=True, text=True, check=False).stdout for c in cmds]
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=False)
    out.append("\n".join(x for x in rules.stdout.splitlines() if not x.startswith("#")))
    return "\n".join(out)


def test_crash_leaves_nothing_in_the_root_namespace_and_lab_down_cleans_up() -> None:
    require_lab()
    before = _root_view()
    cmd = [_CLI, "lab", "run", "cluster", "--connections", "2000", "--set", "client_timeout_s=1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while len(existing_namespaces()) < 9 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # servers and traffic running
        assert len(existing_namespaces()) >= 9
        assert _root_view() == before  # no link, address, route or rule in the root namespace
        state = json.loads(STATE_FILE.read_text())
        assert set(state["namespaces"]) <= set(existing_namespaces())
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # a crash: no finally, no atexit
        proc.wait(timeout=10)
    assert existing_namespaces(), "a crashed lab leaves its namespaces for `lab down`"
    assert main(["lab", "down"]) == 0
    assert existing_namespaces() == []
    assert not STATE_FILE.exists()
    assert _root_view() == before


def test_sigterm_cleans_up() -> None:
    require_lab()
    cmd = [_CLI, "lab", "run", "cluster", "--connections", "2000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while len(existing_namespaces()) < 9 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert existing_namespaces() == []
    assert not STATE_FILE.exists()


def test_a_capture_that_lost_packets_is_named_in_the_notes(tmp_path) -> None:
    # tcpdump's report on SIGINT, as Debian's tcpdump 4.99 prints it; no root needed.
    from sim.lab.capture import Captures

    captures = Captures(state=None, directory=tmp_path)  # type: ignore[arg-type]
    for name, dropped in (("slab-node-3-eth0", 17), ("slab-haproxy-eth0", 0)):
        captures.files.append(tmp_path / f"{name}.pcap")
        (tmp_path / f"{name}.log").write_text(
            f"tcpdump: listening on slab-eth0\n40 packets captured\n57 packets received by "
            f"filter\n{dropped} packets dropped by kernel\n"
        )
    captures.stop()
    assert captures.dropped == {"slab-node-3-eth0.pcap": 17, "slab-haproxy-eth0.pcap": 0}
    assert captures.notes() == [
        "tcpdump: the kernel dropped 17 packets of slab-node-3-eth0.pcap: that capture is "
        "incomplete"
    ]
