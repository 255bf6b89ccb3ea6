"""The manifests, the Dockerfile and the Prometheus configuration pass real checkers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.k8s.tools import ROOT, manifests, resource, run, tool

KUBERNETES_VERSION = "1.33"


def test_manifests_validate_strictly_against_kubernetes_schemas() -> None:
    paths = [str(p.relative_to(ROOT)) for p in manifests()]
    result = run([tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, *paths])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") >= 15


@pytest.mark.parametrize("directory", ["k8s", "k8s-overlays/multi-node"])
def test_kustomize_builds(directory: str) -> None:
    result = run([tool("kubectl"), "kustomize", directory])
    assert result.returncode == 0, result.stderr
    assert "kind: Deployment" in result.stdout
    if directory.endswith("multi-node"):
        assert "ReadWriteMany" in result.stdout
        assert "kind: PersistentVolume\n" not in result.stdout


def test_yamllint() -> None:
    result = run([tool("yamllint"), "--strict", "k8s", "k8s-overlays", "monitoring", ".checkov.yaml"])
    assert result.returncode == 0, result.stdout


def test_checkov_kubernetes_and_dockerfile() -> None:
    options = ["--config-file", ".checkov.yaml", "--skip-download", "--compact", "--quiet"]
    targets = ["-d", "k8s", "-f", "Dockerfile", "--framework", "kubernetes", "dockerfile"]
    result = run([tool("checkov"), *options, *targets])
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_finds_nothing_at_warning_or_above() -> None:
    result = run([tool("hadolint"), "--failure-threshold", "info", "Dockerfile"])
    assert result.returncode == 0, result.stdout


def test_promtool_checks_the_embedded_prometheus_config(tmp_path: Path) -> None:
    # Debian's prometheus (2.42+ds) is built without Kubernetes service discovery, so its promtool
    # rejects `kubernetes_sd_configs`. Everything else is checked as written: that one block is
    # swapped for a static target, and its shape is asserted here instead. promtool reads the bearer
    # token's file, which the pod mounts from the Secret: it is checked at a file of the same name here.
    config = yaml.safe_load(resource("ConfigMap", "prometheus-config")["data"]["prometheus.yml"])
    (job,) = config["scrape_configs"]
    assert job.pop("kubernetes_sd_configs") == [{"role": "pod", "namespaces": {"own_namespace": True}}]
    job["static_configs"] = [{"targets": ["10.0.0.1:8000"]}]
    token = Path(job["authorization"]["credentials_file"])
    assert job["authorization"]["type"] == "Bearer"
    mount = next(
        m
        for m in resource("Deployment", "prometheus")["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        if m["name"] == "metrics-token"
    )
    assert token.parent == Path(mount["mountPath"])
    (tmp_path / token.name).write_text("a-token-of-sixteen-or-more\n")
    job["authorization"]["credentials_file"] = str(tmp_path / token.name)
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = run([tool("promtool"), "check", "config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_promtool_checks_and_unit_tests_the_rules() -> None:
    checked = run([tool("promtool"), "check", "rules", "monitoring/rules.yml"])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run([tool("promtool"), "test", "rules", "monitoring/rules_test.yml"])
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
