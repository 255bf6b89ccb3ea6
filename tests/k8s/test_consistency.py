"""Manifests, Dockerfile and code must agree; this fails as soon as they drift apart."""

from __future__ import annotations

import re
from typing import Any

import yaml

from src.api.main import create_app
from src.config import SECRETS_DIR, Settings
from tests.k8s.tools import ROOT, resource, resources

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    found: dict[str, Any] = container
    return found


def _deployment() -> dict[str, Any]:
    return resource("Deployment", "ml-service")


def _config() -> dict[str, str]:
    data: dict[str, str] = resource("ConfigMap", "ml-service-config")["data"]
    return data


def _app_paths() -> set[str]:
    return set(create_app(Settings()).openapi()["paths"])


def test_configmap_holds_every_setting_but_the_keys_and_no_secret_is_applied() -> None:
    """Re-applying k8s/ once switched auth off: its Secret, with empty keys, overwrote the real one."""
    keys = {"API_KEYS", "ADMIN_API_KEYS", "FEEDBACK_SECRET", "METRICS_TOKEN"}
    assert set(_config()) | keys == {name.upper() for name in Settings.model_fields}
    assert not keys & set(_config())
    assert [r for r in resources() if r["kind"] == "Secret"] == []
    kustomization = yaml.safe_load((ROOT / "k8s" / "Kustomization").read_text())
    assert all("secret" not in name for name in kustomization["resources"])
    Settings.model_validate({k.lower(): v for k, v in _config().items()})  # and every value is valid
    assert _container(_deployment())["envFrom"] == [{"configMapRef": {"name": "ml-service-config"}}]
    (mount,) = [m for m in _container(_deployment())["volumeMounts"] if m["name"] == "api-keys"]
    assert mount["mountPath"] == str(SECRETS_DIR)
    (volume,) = [v for v in _deployment()["spec"]["template"]["spec"]["volumes"] if v["name"] == "api-keys"]
    assert volume["secret"]["secretName"] == "ml-service-api-keys"
    assert volume["secret"]["optional"] is True  # pods start before anyone creates the Secret


def test_the_training_job_can_write_the_store() -> None:
    """The Job ran as uid 10001 against a root-owned 0755 hostPath folder: PermissionError, exit 1."""
    job = resource("Job", "ml-service-train")
    pod = job["spec"]["template"]["spec"]
    user, group = pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]
    (train,) = pod["containers"]
    (store_mount,) = [m for m in train["volumeMounts"] if m["name"] == "models"]
    (prepare,) = pod["initContainers"]
    (prepare_mount,) = [m for m in prepare["volumeMounts"] if m["name"] == "models"]
    assert prepare_mount["mountPath"] == store_mount["mountPath"]
    assert f"chown {user}:{group} {store_mount['mountPath']}" in " ".join(prepare["command"])
    assert prepare["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN", "FOWNER"]}


def test_ports_agree() -> None:
    container = _container(_deployment())
    port, grpc_port = container["ports"]
    service = resource("Service", "ml-service")
    service_port, service_grpc = service["spec"]["ports"]
    assert service["spec"]["type"] == "LoadBalancer"
    assert port["containerPort"] == int(_config()["PORT"]) == service_port["port"] == 8000
    assert service_port["targetPort"] in (port["name"], port["containerPort"])
    assert grpc_port["containerPort"] == int(_config()["GRPC_PORT"]) == service_grpc["port"] == 8081
    assert service_grpc["targetPort"] in (grpc_port["name"], grpc_port["containerPort"])
    assert f"EXPOSE {port['containerPort']} {grpc_port['containerPort']}" in DOCKERFILE
    annotations = _deployment()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port["containerPort"])
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] in _app_paths()
    policy = resource("NetworkPolicy", "ml-service")
    assert [p["port"] for p in policy["spec"]["ingress"][0]["ports"]] == [
        port["containerPort"],
        grpc_port["containerPort"],
    ]


def test_probes_use_routes_of_the_app() -> None:
    container = _container(_deployment())
    paths = _app_paths()
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] in paths
        assert container[probe]["httpGet"]["port"] in ("http", 8000)


def test_model_volume_and_model_dir_agree() -> None:
    deployment = _deployment()
    container = _container(deployment)
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "models"]
    assert mount["mountPath"] == _config()["MODEL_DIR"] == "/models"
    assert mount["readOnly"] is True
    (volume,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "models"]
    claim = resource("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    volume_ = resource("PersistentVolume", "model-pv")
    assert claim["spec"]["selector"]["matchLabels"].items() <= volume_["metadata"]["labels"].items()
    assert claim["spec"]["storageClassName"] == volume_["spec"]["storageClassName"]
    assert volume_["spec"]["hostPath"]["path"] == "/mnt/data"
    assert volume_["spec"]["capacity"]["storage"] == "1Gi"
    job = resource("Job", "ml-service-train")
    (job_volume,) = [v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == "models"]
    assert job_volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert f"MODEL_DIR={_config()['MODEL_DIR']}" in DOCKERFILE
    assert f"BUNDLED_MODEL_DIR={_config()['BUNDLED_MODEL_DIR']}" in DOCKERFILE


def test_labels_and_selectors_agree() -> None:
    deployment = _deployment()
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert resource("Service", "ml-service")["spec"]["selector"].items() <= labels.items()
    assert (
        resource("PodDisruptionBudget", "ml-service-pdb")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    )
    assert resource("NetworkPolicy", "ml-service")["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"][0]
    assert spread["labelSelector"]["matchLabels"].items() <= labels.items()
    scrape = yaml.safe_load(resource("ConfigMap", "prometheus-config")["data"]["prometheus.yml"])
    keep = scrape["scrape_configs"][0]["relabel_configs"][0]
    assert keep["source_labels"] == ["__meta_kubernetes_pod_label_app"]
    assert keep["regex"] == labels["app"]


def test_hpa_targets_the_deployment() -> None:
    hpa = resource("HorizontalPodAutoscaler", "ml-service-hpa")
    deployment = _deployment()
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ml-service"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
    assert deployment["spec"]["replicas"] == hpa["spec"]["minReplicas"]
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    assert _container(deployment)["resources"]["requests"]["cpu"]  # the HPA computes utilisation from it
    rules = (ROOT / "monitoring" / "rules.yml").read_text()
    assert f"mlservice:scraped_pods:count >= {hpa['spec']['maxReplicas']}" in rules


def test_security_context_matches_the_image_user() -> None:
    deployment = _deployment()
    uid = int(re.search(r"^USER (\d+)", DOCKERFILE, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == uid
    context = _container(deployment)["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]


def test_shutdown_timing_lets_requests_finish() -> None:
    spec = _deployment()["spec"]["template"]["spec"]
    pre_stop = " ".join(_container(_deployment())["lifecycle"]["preStop"]["exec"]["command"])
    delay = float(re.search(r"sleep\((\d+(?:\.\d+)?)\)", pre_stop).group(1))  # type: ignore[union-attr]
    graceful = float(_config()["GRACEFUL_TIMEOUT_SECONDS"])
    assert spec["terminationGracePeriodSeconds"] >= delay + graceful + 1


def test_kustomization_lists_every_manifest() -> None:
    listed = set(yaml.safe_load((ROOT / "k8s" / "Kustomization").read_text())["resources"])
    assert listed == {p.name for p in (ROOT / "k8s").glob("*.yaml")}


def test_rules_configmap_matches_the_rules_file() -> None:
    data = resource("ConfigMap", "prometheus-rules")["data"]
    assert data == {"ml-service.yml": (ROOT / "monitoring" / "rules.yml").read_text()}, "run `make k8s-rules`"
