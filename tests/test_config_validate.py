"""Everything ``write_configs`` writes parses and validates against the real schemas.

Core kinds (Service, Deployment, Node, ConfigMap) against Kubernetes' OpenAPI schemas of
``KUBERNETES_VERSION`` (the kubernetes-validate package, strict: unknown fields fail); custom
resources (MetalLB IPAddressPool and L2Advertisement, Istio EnvoyFilter, Calico IPPool) against
their published CRD schemas kept in tests/data/schemas (see SOURCES.md there).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from sim import presets
from sim.config import write_configs
from sim.config.cluster import KUBERNETES_VERSION
from sim.scenario import ENCAPSULATIONS

SCHEMAS = Path(__file__).parent / "data" / "schemas"
SCENARIOS = {
    **presets.PRESETS,
    **presets.ALTERNATIVES,
    **{
        f"cluster-{enc}": replace(presets.cluster, encapsulation=enc)  # type: ignore[arg-type]
        for enc in ENCAPSULATIONS
    },
    "pp-timeout-repeated-nodes": replace(
        presets.proxy_protocol,
        listener_filters_timeout_s=5.0,
        gateway_nodes=("node-2", "node-2", "node-3"),
        termination_drain_s=0.5,
    ),
}
FACT_ID = re.compile(r"\b[KNMEIHCT]\d+[a-z]?\b")


def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for path in SCHEMAS.glob("*.yaml"):
        crd = next(d for d in yaml.safe_load_all(path.read_text()) if d)
        for version in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            out[key] = version["schema"]["openAPIV3Schema"]
    return out


CRDS = _crd_schemas()


def validate(doc: dict[str, Any]) -> str:
    """Validate one object; return which schema was used."""
    key = (doc["apiVersion"], doc["kind"])
    if key in CRDS:
        jsonschema.Draft202012Validator(CRDS[key]).validate(doc)
        if doc["kind"] == "IPPool":  # the CRD's CEL rule, which jsonschema cannot run
            spec = doc["spec"]
            assert "Never" in (spec.get("ipipMode", "Never"), spec.get("vxlanMode", "Never"))
        return "crd"
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    return "core"


def test_stored_schemas_cover_every_custom_kind() -> None:
    assert set(CRDS) == {
        ("metallb.io/v1beta1", "IPAddressPool"),
        ("metallb.io/v1beta1", "L2Advertisement"),
        ("networking.istio.io/v1alpha3", "EnvoyFilter"),
        ("projectcalico.org/v3", "IPPool"),
    }
    sources = (SCHEMAS / "SOURCES.md").read_text()
    for path in SCHEMAS.glob("*.yaml"):
        assert path.name in sources


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_document_parses_and_validates(name: str, tmp_path: Path) -> None:
    paths = write_configs(SCENARIOS[name], tmp_path)
    kinds = []
    for path in paths:
        text = path.read_text()
        assert FACT_ID.search(text), f"{path.name} cites no fact ID"
        if path.suffix != ".yaml":
            continue
        for doc in yaml.safe_load_all(text):
            assert isinstance(doc, dict), f"{path.name}: a document is not a mapping"
            if doc["kind"] == "List":
                assert doc["apiVersion"] == "v1" and doc["items"]
                items = doc["items"]
            else:
                items = [doc]
            for item in items:
                validate(item)
                kinds.append(item["kind"])
    expected = {"Service", "Deployment", "Node", "IPPool"}
    expected |= {"ConfigMap"} if SCENARIOS[name].announcer == "naive" else {"IPAddressPool"}
    assert expected <= set(kinds)
    assert ("EnvoyFilter" in kinds) == SCENARIOS[name].gateway_proxy_protocol


def test_validation_catches_mistakes(tmp_path: Path) -> None:
    paths = write_configs(presets.local, tmp_path)
    docs = {
        d["kind"]: d
        for p in paths
        if p.suffix == ".yaml"
        for d in yaml.safe_load_all(p.read_text())
    }
    service = docs["Service"]
    service["spec"]["externalTrafficPolcy"] = "Local"  # a typo: strict schemas reject it
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(service)
    pool = docs["IPPool"]
    pool["spec"]["vxlanMode"] = "Maybe"
    with pytest.raises(jsonschema.ValidationError):
        validate(pool)
    ad = docs["L2Advertisement"]
    ad["spec"]["ipAddressPools"] = "gateway-vip"  # must be a list
    with pytest.raises(jsonschema.ValidationError):
        validate(ad)
