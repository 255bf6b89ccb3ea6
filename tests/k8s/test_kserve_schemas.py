"""The KServe example against KServe's own CustomResourceDefinitions (../shared/crds/kserve/).

Each manifest is validated with the openAPIV3Schema of its apiVersion, strictly: a field the schema
does not name is an error, as `kubectl apply --validate=strict` would make it, except where the
schema keeps unknown fields (`x-kubernetes-preserve-unknown-fields`).
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import jsonschema_rs
import pytest
import yaml

from tests.k8s.tools import ROOT

CRDS = ROOT.parent / "shared" / "crds" / "kserve"
OVERLAY = ROOT / "k8s-overlays" / "kserve"
MANIFESTS = {
    "servingruntime.yaml": "serving.kserve.io_servingruntimes.yaml",
    "inferenceservice.yaml": "serving.kserve.io_inferenceservices.yaml",
    "servingruntime-grpc.yaml": "serving.kserve.io_servingruntimes.yaml",
    "inferenceservice-grpc.yaml": "serving.kserve.io_inferenceservices.yaml",
}

pytestmark = pytest.mark.skipif(not CRDS.is_dir(), reason="../shared/crds is not beside the checkout")


def _strict(schema: Any) -> Any:
    """The schema with unknown properties refused wherever it lists properties and keeps no unknown fields."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@cache
def _crd(crd_file: str) -> Any:
    """A CRD read once (each is a few MB of YAML; libyaml's loader when the system has it)."""
    return yaml.load((CRDS / crd_file).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@cache
def _compiled(crd_file: str, api_version: str, kind: str) -> Any:
    crd = _crd(crd_file)
    group, version = api_version.split("/")
    assert crd["spec"]["group"] == group
    assert crd["spec"]["names"]["kind"] == kind
    (schema,) = [v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"] if v["name"] == version]
    strict = _strict(schema)
    strict["properties"]["metadata"] = {"type": "object"}  # ObjectMeta is checked by the API server itself
    return jsonschema_rs.Draft4Validator(strict)


def _validator(manifest: dict[str, Any], crd_file: str) -> Any:
    return _compiled(crd_file, manifest["apiVersion"], manifest["kind"])


def _manifest(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((OVERLAY / name).read_text())
    return document


@pytest.mark.parametrize(("name", "crd_file"), MANIFESTS.items())
def test_the_manifest_is_valid_against_kserves_own_crd(name: str, crd_file: str) -> None:
    manifest = _manifest(name)
    errors = [f"{list(e.instance_path)}: {e.message}" for e in _validator(manifest, crd_file).iter_errors(manifest)]
    assert errors == [], "\n".join(errors)


@pytest.mark.parametrize(("name", "crd_file"), MANIFESTS.items())
def test_the_check_refuses_a_misspelt_field_and_a_wrong_type(name: str, crd_file: str) -> None:
    manifest = _manifest(name)
    validator = _validator(manifest, crd_file)
    misspelt = copy.deepcopy(manifest)
    misspelt["spec"]["protocolVersionz"] = ["v2"]
    assert not validator.is_valid(misspelt)
    wrong_type = copy.deepcopy(manifest)
    wrong_type["spec"] = "not an object"
    assert not validator.is_valid(wrong_type)
