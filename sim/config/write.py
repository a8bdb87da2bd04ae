"""Write every file that implements a scenario (``srcip-lab config``).

One directory per scenario: what to give HAProxy, what to ``kubectl apply`` (the Service and the
gateway Deployment, MetalLB's and Calico's resources, the EnvoyFilter), the Nodes for reference,
and, per node, the rules kube-proxy writes there. Each file's comments cite the facts that
explain its key lines. ``srcip-lab explain`` on the directory gives the scenario back
(tests/test_config_roundtrip.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sim.config.addons import calico_yaml, envoyfilter_yaml, metallb_yaml
from sim.config.haproxy_cfg import haproxy_cfg
from sim.config.kube_proxy_rules import iptables_save
from sim.config.manifests import deployment_yaml, nodes_yaml, service_yaml

if TYPE_CHECKING:
    from sim.scenario import Scenario

__all__ = ["ALTERNATIVE_DIR", "write_configs"]

ALTERNATIVE_DIR = "alternative-gateway-topology"
"""Subdirectory for the annotation alternative to the EnvoyFilter (not read by ``explain DIR``)."""

_ALTERNATIVE_HEAD = """\
# The alternative to istio-envoyfilter.yaml (Istio >= 1.19, I2): the same gateway Deployment
# with `gatewayTopology.proxyProtocol: {}` in its proxy.istio.io/config annotation. Use it
# INSTEAD of the EnvoyFilter: replace the Deployment in service.yaml with this one and delete
# the EnvoyFilter. With both, every listener gets two proxy_protocol filters (I11).
"""


def _files(scenario: Scenario) -> list[tuple[str, str]]:
    files: list[tuple[str, str]] = []
    if scenario.haproxy is not None:
        files.append(("haproxy.cfg", haproxy_cfg(scenario)))
    files.append(("service.yaml", service_yaml(scenario) + "---\n" + deployment_yaml(scenario)))
    files.append(("nodes.yaml", nodes_yaml(scenario)))
    files.append(("metallb.yaml", metallb_yaml(scenario)))
    if scenario.gateway_proxy_protocol:
        files.append(("istio-envoyfilter.yaml", envoyfilter_yaml(scenario)))
        alternative = _ALTERNATIVE_HEAD + deployment_yaml(scenario, proxy_protocol_annotation=True)
        files.append((f"{ALTERNATIVE_DIR}/gateway-deployment.yaml", alternative))
    files.append(("calico-ippool.yaml", calico_yaml(scenario)))
    for node in scenario.node_names:
        files.append((f"{node}/iptables-save.txt", iptables_save(scenario, node)))
    return files


def write_configs(scenario: Scenario, out_dir: str | Path) -> list[Path]:
    """Write the scenario's configuration files under ``out_dir`` (created if missing).

    Files: ``haproxy.cfg`` (only with HAProxy), ``service.yaml`` (Service + gateway
    Deployment), ``nodes.yaml``, ``metallb.yaml``, ``istio-envoyfilter.yaml`` and
    ``alternative-gateway-topology/gateway-deployment.yaml`` (only with the gateway's PROXY
    filter), ``calico-ippool.yaml`` and ``<node>/iptables-save.txt`` for every node. Existing
    files of those names are replaced. Returns the paths written, in that order.
    """
    root = Path(out_dir)
    written = []
    for name, text in _files(scenario):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
