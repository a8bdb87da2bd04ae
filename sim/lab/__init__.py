"""The real-kernel lab: run a scenario on Linux's own data plane, beside the simulator.

``srcip-lab lab run PRESET`` builds the scenario's topology in network namespaces (a bridge
segment, client hosts, HAProxy, nodes with Calico-style pods and VXLAN), loads the
kube-proxy rules ``srcip-lab config`` generates with ``iptables-restore``, starts the real
HAProxy with the generated ``haproxy.cfg``, stand-in gateway/sidecar/app servers on real
sockets, and an announcer that moves the VIP and sends gratuitous ARPs; then sends bounded real
HTTP requests and joins what every hop saw into the simulator's columns
(:mod:`sim.lab.observe`), side by side with :func:`sim.simulate` (:mod:`sim.lab.compare`).

Layout, one module per element: :mod:`~sim.lab.netns` (namespaces, processes, state file,
cleanup), :mod:`~sim.lab.topology`, :mod:`~sim.lab.kube_proxy`, :mod:`~sim.lab.announcer`,
:mod:`~sim.lab.haproxy`, :mod:`~sim.lab.servers` (gateway, sidecar, app), :mod:`~sim.lab.clients`,
:mod:`~sim.lab.capture`, :mod:`~sim.lab.run`, :mod:`~sim.lab.observe`, :mod:`~sim.lab.compare`.
Importing this package needs no root; running it does.
"""

from __future__ import annotations

from sim.lab.netns import PREFIX, existing_namespaces, lab_down, missing_requirements
from sim.lab.run import LabBusy, LabOptions, LabRun, LabUnavailable, run_lab

__all__ = [
    "PREFIX",
    "LabBusy",
    "LabOptions",
    "LabRun",
    "LabUnavailable",
    "existing_namespaces",
    "lab_down",
    "missing_requirements",
    "run_lab",
]
