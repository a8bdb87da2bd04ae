"""From a scenario to the real configuration files, and from a user's files back to a scenario.

Writers: :func:`iptables_save` (kube-proxy's rules on one node), :func:`haproxy_cfg` and
:func:`write_configs` (everything ``srcip-lab config`` writes). Reader: :func:`explain`
(``srcip-lab explain``).
"""

from __future__ import annotations

from sim.config.haproxy_cfg import haproxy_cfg
from sim.config.kube_proxy_rules import Endpoint, categorize, initial_endpoints, iptables_save
from sim.config.write import write_configs

__all__ = [
    "Endpoint",
    "categorize",
    "haproxy_cfg",
    "initial_endpoints",
    "iptables_save",
    "write_configs",
]
