"""k8s-overlays/shared-state: a Redis only the service's pods reach, its URL in the ConfigMap, its password
in a Secret, built by kustomize and passed through the same checkers as k8s/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from src.config import Settings
from tests.k8s.test_checkers import KUBERNETES_VERSION
from tests.k8s.tools import ROOT, run, tool

OVERLAY = ROOT / "k8s-overlays" / "shared-state"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    result = run([tool("kubectl"), "kustomize", str(OVERLAY)])
    assert result.returncode == 0, result.stderr
    path = tmp_path_factory.mktemp("shared-state") / "built.yaml"
    path.write_text(result.stdout)
    return path, [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"] == name)


def test_the_built_overlay_validates_strictly_and_passes_checkov(built: tuple[Path, list[dict[str, Any]]]) -> None:
    path, _ = built
    validated = run([tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, str(path)])
    assert validated.returncode == 0, validated.stdout + validated.stderr
    options = ["--config-file", ".checkov.yaml", "--skip-download", "--compact", "--quiet"]
    checked = run([tool("checkov"), *options, "-f", str(path), "--framework", "kubernetes"])
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_redis_runs_as_no_root_bounded_probed_and_without_a_password_in_the_folder(
    built: tuple[Path, list[dict[str, Any]]],
) -> None:
    _, docs = built
    pod = _find(docs, "Deployment", "ml-service-redis")["spec"]["template"]["spec"]
    (redis,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"]
    assert redis["securityContext"]["readOnlyRootFilesystem"]
    assert redis["resources"]["limits"]["memory"] == redis["resources"]["requests"]["memory"]
    assert redis["readinessProbe"]
    assert redis["livenessProbe"]
    assert redis["args"][:2] == ["--aclfile", "/run/secrets/redis/users.acl"]
    assert "env" not in redis
    assert not [doc for doc in docs if doc["kind"] == "Secret"]  # created once by hand, never re-applied


def test_only_the_service_reaches_redis_and_the_service_reaches_only_redis_and_dns(
    built: tuple[Path, list[dict[str, Any]]],
) -> None:
    _, docs = built
    inbound = _find(docs, "NetworkPolicy", "ml-service-redis")["spec"]
    assert inbound["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": {"app": "ml-service"}}}],
            "ports": [{"port": 6379, "protocol": "TCP"}],
        }
    ]
    assert inbound["egress"] == []
    outbound = _find(docs, "NetworkPolicy", "ml-service")["spec"]["egress"]
    assert outbound[0]["to"] == [{"podSelector": {"matchLabels": {"app": "ml-service-redis"}}}]
    assert {port["port"] for rule in outbound for port in rule["ports"]} == {6379, 53}


def test_the_configmap_names_the_service_and_a_password_file_the_pods_mount(
    built: tuple[Path, list[dict[str, Any]]],
) -> None:
    _, docs = built
    data = _find(docs, "ConfigMap", "ml-service-config")["data"]
    service = _find(docs, "Service", "ml-service-redis")
    assert data["SHARED_STATE_URL"] == f"redis://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}/0"
    pod = _find(docs, "Deployment", "ml-service")["spec"]["template"]["spec"]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "shared-state")
    assert Path(data["SHARED_STATE_PASSWORD_FILE"]).parent == Path(mount["mountPath"])
    volume = next(v for v in pod["volumes"] if v["name"] == "shared-state")
    assert volume["secret"]["secretName"] == "ml-service-shared-state"
    for name in ("SHARED_STATE_URL", "SHARED_STATE_TIMEOUT_MS"):  # settings the service knows
        assert name.lower() in Settings.model_fields
