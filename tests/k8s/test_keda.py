"""The KEDA overlay: its ScaledObject against KEDA's own CRD (../shared/crds/keda/), strictly, and the
overlay as kustomize builds it: the ScaledObject in place of the base's HorizontalPodAutoscaler, on the
same Deployment and bounds, scaling on a metric the service exports."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import jsonschema_rs
import pytest
import yaml

from src import metrics
from tests.k8s.test_kserve_schemas import _strict
from tests.k8s.tools import ROOT, resource, run, tool

CRD = ROOT.parent / "shared" / "crds" / "keda" / "keda.sh_scaledobjects.yaml"
OVERLAY = ROOT / "k8s-overlays" / "keda"

pytestmark = pytest.mark.skipif(not CRD.is_file(), reason="../shared/crds is not beside the checkout")


@cache
def _validator() -> Any:
    crd = yaml.load(CRD.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert crd["spec"]["names"]["kind"] == "ScaledObject"
    (schema,) = [v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    strict = _strict(schema)
    strict["properties"]["metadata"] = {"type": "object"}  # ObjectMeta is checked by the API server itself
    return jsonschema_rs.Draft4Validator(strict)


def _scaled_object() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((OVERLAY / "scaledobject.yaml").read_text())
    return document


def test_the_scaled_object_is_valid_against_kedas_own_crd() -> None:
    manifest = _scaled_object()
    errors = [f"{list(e.instance_path)}: {e.message}" for e in _validator().iter_errors(manifest)]
    assert errors == [], "\n".join(errors)


def test_the_check_refuses_a_misspelt_field_and_a_wrong_type() -> None:
    misspelt = _scaled_object()
    misspelt["spec"]["maxReplicaCout"] = 10
    assert not _validator().is_valid(misspelt)
    wrong = copy.deepcopy(_scaled_object())
    wrong["spec"]["triggers"] = "prometheus"
    assert not _validator().is_valid(wrong)


def test_the_overlay_builds_with_the_scaled_object_in_place_of_the_hpa() -> None:
    result = run([tool("kubectl"), "kustomize", str(OVERLAY.relative_to(ROOT))])
    assert result.returncode == 0, result.stderr
    built = [document for document in yaml.safe_load_all(result.stdout) if document]
    kinds = [document["kind"] for document in built]
    assert "HorizontalPodAutoscaler" not in kinds  # KEDA owns the HPA it makes; two would fight
    (scaled,) = [document for document in built if document["kind"] == "ScaledObject"]
    (deployment,) = [d for d in built if d["kind"] == "Deployment" and d["metadata"]["name"] == "ml-service"]
    target = scaled["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    base = resource("HorizontalPodAutoscaler", "ml-service-hpa")["spec"]
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (
        base["minReplicas"],
        base["maxReplicas"],
    )
    assert scaled["metadata"]["labels"]["app.kubernetes.io/part-of"] == "ml-service"  # as every resource of the base


def test_the_triggers_scale_on_requests_in_flight_and_keep_cpu() -> None:
    triggers = {trigger["type"]: trigger for trigger in _scaled_object()["spec"]["triggers"]}
    assert set(triggers) == {"prometheus", "cpu"}
    query = triggers["prometheus"]["metadata"]["query"]
    assert metrics.REQUESTS_IN_FLIGHT._name in query  # a metric the service exports, counting HTTP and gRPC
    assert float(triggers["prometheus"]["metadata"]["threshold"]) > 0
    prometheus = resource("Service", "prometheus")
    port = prometheus["spec"]["ports"][0]["port"]
    assert f"http://{prometheus['metadata']['name']}." in triggers["prometheus"]["metadata"]["serverAddress"]
    assert triggers["prometheus"]["metadata"]["serverAddress"].endswith(f":{port}")
