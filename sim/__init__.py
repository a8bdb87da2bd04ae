"""srcip-lab: why a pod sees ``172.x`` instead of the client IP, simulated and measured.

The package has two halves:

* :mod:`sim.proxy_protocol`, a sans-I/O PROXY protocol v1/v2 codec good enough for real servers;
* a SimPy model of clients, HAProxy, MetalLB's L2 announcer, kube-proxy, the Istio ingress
  gateway and the app sidecar (``sim.simulate``), whose HAProxy and gateway speak through that
  codec.
"""

from __future__ import annotations

__version__ = "0.1.0"

from sim import presets
from sim.net.haproxy import HAProxyConfig
from sim.results import Result, compare, summarize_results
from sim.scenario import DeletePod, MovePod, NodeDown, Scenario
from sim.sweep import sweep
from sim.topology import simulate
from sim.trace import trace, trace_hops

__all__ = [
    "DeletePod",
    "HAProxyConfig",
    "MovePod",
    "NodeDown",
    "Result",
    "Scenario",
    "__version__",
    "compare",
    "presets",
    "simulate",
    "summarize_results",
    "sweep",
    "trace",
    "trace_hops",
]
