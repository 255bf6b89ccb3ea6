"""A real Prometheus server on 127.0.0.1 for tests, configured from k8s/prometheus.yaml."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.servers import ROOT, request

RULES = ROOT / "monitoring" / "rules.yml"
DASHBOARD = ROOT / "monitoring" / "dashboard.json"


def k8s_prometheus_config() -> dict[str, Any]:
    """The prometheus.yml embedded in the prometheus-config ConfigMap."""
    for document in yaml.safe_load_all((ROOT / "k8s" / "prometheus.yaml").read_text()):
        if document["kind"] == "ConfigMap" and document["metadata"]["name"] == "prometheus-config":
            config: dict[str, Any] = yaml.safe_load(document["data"]["prometheus.yml"])
            return config
    raise AssertionError("k8s/prometheus.yaml has no prometheus-config ConfigMap")


METRICS_TOKEN = "test-metrics-token-0123456789abcdef"


def token_file(folder: Path) -> Path:
    """METRICS_TOKEN in a file, as the Secret mounted into Prometheus's pod holds it."""
    path = folder / "METRICS_TOKEN"
    path.write_text(METRICS_TOKEN + "\n")
    return path


def local_config(target: str, token: Path, interval: str = "1s") -> dict[str, Any]:
    """The k8s configuration with a static target for pod discovery, the bearer token from `token` (the
    server runs with METRICS_TOKEN) and a short interval, so tests are quick."""
    config = k8s_prometheus_config()
    config["global"].update(scrape_interval=interval, scrape_timeout=interval, evaluation_interval=interval)
    config["rule_files"] = [str(RULES)]
    (job,) = config["scrape_configs"]
    job.pop("kubernetes_sd_configs")
    job.pop("relabel_configs")
    assert job["authorization"]["credentials_file"].startswith("/etc/prometheus/secrets/")
    job["authorization"]["credentials_file"] = str(token)
    job["static_configs"] = [{"targets": [target], "labels": {"pod": "local-0", "namespace": "test"}}]
    return config


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def query(base_url: str, expr: str) -> dict[str, Any]:
    """Prometheus's /api/v1/query answer for an instant query."""
    reply = request(f"{base_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    answer: dict[str, Any] = json.loads(reply.body)
    return answer


def recording_rules() -> dict[str, str]:
    """Recorded series name -> expression."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["record"]: rule["expr"] for group in groups for rule in group["rules"] if "record" in rule}


def alert_rules() -> dict[str, str]:
    """Alert name -> expression."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"] if "alert" in rule}


def dashboard_expressions() -> list[str]:
    """Every PromQL expression of the Grafana dashboard."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]
