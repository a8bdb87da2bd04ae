"""How the Istio gateway gets its PROXY filter and trusted hops, from a user's YAML.

Real formats: Istio ``networking.istio.io`` ``EnvoyFilter`` (``LISTENER`` MERGE of
``listener_filters``, or ``LISTENER_FILTER`` insert), the gateway pod's ``proxy.istio.io/config``
annotation and the mesh-wide ``defaultConfig`` (ConfigMap ``istio-system/istio`` key ``mesh``, or
an ``IstioOperator``'s ``spec.meshConfig``), whose ``gatewayTopology`` holds ``proxyProtocol``
and ``numTrustedProxies`` (the pod annotation wins, I4).

Facts relied on: I2 (``gatewayTopology.proxyProtocol``, Istio >= 1.19, puts the strict filter
before the TLS inspector; before, the seed's EnvoyFilter), I10 (an EnvoyFilter applies to the
workloads its ``workloadSelector`` matches, in its namespace, or mesh-wide from the root
namespace ``istio-system``; Envoy's filter names), I11 (both at once: two filters), E2
(``allow_requests_without_proxy_protocol`` is not modelled), E4 (``listener_filters_timeout``),
K18 (``terminationDrainDuration``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from sim.config.findings import ExplainError, Located, Where
from sim.config.yaml_reader import Doc

__all__ = ["GatewayFilters", "go_duration", "read_filters"]

_PP_NAMES = ("envoy.filters.listener.proxy_protocol", "envoy.listener.proxy_protocol")
_TLS_NAMES = ("envoy.filters.listener.tls_inspector", "envoy.listener.tls_inspector")
_ROOT_NAMESPACE = "istio-system"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass
class GatewayFilters:
    """The gateway's listener filters and topology as the files configure them."""

    envoyfilter: list[Where] = field(default_factory=list)
    topology_pp: Where | None = None
    trusted: Located | None = None
    drain: Located | None = None
    tls_first: Where | None = None
    timeout: Located | None = None
    not_applied: list[tuple[str, Where]] = field(default_factory=list)

    @property
    def proxy_protocol(self) -> Where | None:
        """Where the PROXY filter is switched on (first source), or ``None``."""
        return self.envoyfilter[0] if self.envoyfilter else self.topology_pp


def go_duration(text: Any, where: Where) -> float:
    """A protobuf/Go duration (``5s``, ``500ms``, ``1m30s``) in seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    parts = _DURATION.findall(str(text))
    if not parts or "".join(n + u for n, u in parts) != str(text).strip():
        raise ExplainError(where.file, where.line, f"{text!r}: expected a duration such as 5s")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _kind_of(entry: Any) -> str:
    if not isinstance(entry, dict):
        return ""
    name = entry.get("name", "")
    kind = str((entry.get("typed_config") or {}).get("@type", ""))
    if name in _PP_NAMES or kind.endswith("proxy_protocol.v3.ProxyProtocol"):
        return "pp"
    if name in _TLS_NAMES or kind.endswith("tls_inspector.v3.TlsInspector"):
        return "tls"
    return ""


def _strict(entry: dict[str, Any], doc: Doc, path: tuple[Any, ...]) -> None:
    config = entry.get("typed_config") or {}
    if isinstance(config, dict) and config.get("allow_requests_without_proxy_protocol"):
        raise ExplainError(
            doc.file,
            doc.line(*path, "typed_config", "allow_requests_without_proxy_protocol"),
            "allow_requests_without_proxy_protocol: true (E2) is not modelled: the gateway "
            "would accept clients without a header",
        )


def _applies(doc: Doc, gateway: Doc | None) -> str:
    """Why the EnvoyFilter does not reach the gateway ("" if it does)."""
    labels = doc.get("spec", "workloadSelector", "labels")
    if gateway is None:
        return ""
    if doc.namespace not in (_ROOT_NAMESPACE, gateway.namespace):
        return f"namespace {doc.namespace} is neither the gateway's nor the root namespace"
    pod = gateway.get("spec", "template", "metadata", "labels", default={}) or {}
    if isinstance(labels, dict) and not all(pod.get(k) == v for k, v in labels.items()):
        return f"its workloadSelector {labels} does not match the gateway pods' labels"
    return ""


def _patch(doc: Doc, i: int, out: GatewayFilters, port: int | None) -> None:
    base = ("spec", "configPatches", i)
    patch = doc.get(*base, default={}) or {}
    where = Where(doc.file, doc.line(*base))
    context = doc.get(*base, "match", "context", default="ANY")
    wanted = doc.get(*base, "match", "listener", "portNumber")
    if context not in ("ANY", "GATEWAY") or (port is not None and wanted not in (None, port)):
        out.not_applied.append((f"configPatches[{i}] does not match the gateway's listener", where))
        return
    value = doc.get(*base, "patch", "value", default={}) or {}
    if patch.get("applyTo") == "LISTENER":
        timeout = value.get("listener_filters_timeout") if isinstance(value, dict) else None
        if timeout is not None:
            at = Where(doc.file, doc.line(*base, "patch", "value", "listener_filters_timeout"))
            out.timeout = Located(go_duration(timeout, at), at)
        filters = value.get("listener_filters", []) if isinstance(value, dict) else []
        kinds = [_kind_of(f) for f in filters] if isinstance(filters, list) else []
        if "pp" in kinds:
            index = kinds.index("pp")
            path = (*base, "patch", "value", "listener_filters", index)
            _strict(filters[index], doc, path)
            out.envoyfilter.append(Where(doc.file, doc.line(*path)))
            if "tls" in kinds and kinds.index("tls") < index:
                tls = (*base, "patch", "value", "listener_filters", kinds.index("tls"))
                out.tls_first = Where(doc.file, doc.line(*tls))
    elif patch.get("applyTo") == "LISTENER_FILTER" and _kind_of(value) == "pp":
        _strict(value, doc, (*base, "patch", "value"))
        out.envoyfilter.append(Where(doc.file, doc.line(*base, "patch", "value")))


def _topology(config: Any, where: Where, out: GatewayFilters) -> None:
    if not isinstance(config, dict):
        raise ExplainError(where.file, where.line, "expected a ProxyConfig mapping")
    topology = config.get("gatewayTopology")
    if isinstance(topology, dict):
        if "proxyProtocol" in topology:
            out.topology_pp = where
        trusted = topology.get("numTrustedProxies")
        if trusted is not None:
            if not isinstance(trusted, int) or isinstance(trusted, bool) or trusted < 0:
                raise ExplainError(where.file, where.line, "numTrustedProxies: expected >= 0")
            out.trusted = Located(trusted, where)
    if "terminationDrainDuration" in config:
        out.drain = Located(go_duration(config["terminationDrainDuration"], where), where)


def _proxy_config(text: Any, where: Where) -> Any:
    if isinstance(text, dict):
        return text
    try:
        return yaml.safe_load(str(text))
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ExplainError(where.file, where.line, f"not valid YAML/JSON: {problem}") from None


def read_filters(docs: list[Doc], gateway: Doc | None) -> GatewayFilters:
    """The gateway's PROXY filter sources, trusted hops and drain time, in Istio's precedence."""
    out = GatewayFilters()
    for doc in docs:  # mesh-wide defaults first; the pod annotation overrides them (I4)
        if doc.kind == "ConfigMap" and doc.name == "istio" and "mesh" in (doc.get("data") or {}):
            where = Where(doc.file, doc.line("data", "mesh"))
            mesh = _proxy_config(doc.get("data", "mesh"), where)
            _topology((mesh or {}).get("defaultConfig") or {}, where, out)
        elif doc.kind == "IstioOperator":
            path = ("spec", "meshConfig", "defaultConfig")
            if isinstance(doc.get(*path), dict):
                _topology(doc.get(*path), Where(doc.file, doc.line(*path)), out)
    if gateway is not None:
        key = ("spec", "template", "metadata", "annotations", "proxy.istio.io/config")
        if gateway.get(*key) is not None:
            where = Where(gateway.file, gateway.line(*key))
            _topology(_proxy_config(gateway.get(*key), where), where, out)
    port = 8080
    if gateway is not None:
        ports = gateway.get("spec", "template", "spec", "containers", 0, "ports", default=[])
        if isinstance(ports, list) and ports and isinstance(ports[0], dict):
            port = ports[0].get("containerPort", port)
    for doc in docs:
        if doc.kind != "EnvoyFilter":
            continue
        why = _applies(doc, gateway)
        if why:
            line = doc.line("spec", "workloadSelector", "labels")
            if why.startswith("namespace"):
                line = doc.line("metadata", "namespace")
            out.not_applied.append((f"{doc.label}: {why}", Where(doc.file, line)))
            continue
        patches = doc.get("spec", "configPatches", default=[])
        for i in range(len(patches) if isinstance(patches, list) else 0):
            _patch(doc, i, out, port)
    return out
