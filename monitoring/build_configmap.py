"""Write k8s/prometheus-rules.yaml: the ConfigMap carrying monitoring/rules.yml to Prometheus.

Run by `make k8s-rules`; a test fails when the committed ConfigMap and the rules drift apart.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "monitoring" / "rules.yml"
CONFIGMAP = ROOT / "k8s" / "prometheus-rules.yaml"
KEY = "ml-service.yml"


def render(rules_text: str) -> str:
    """The ConfigMap manifest holding the rules text under KEY."""
    body = "".join(f"    {line}" if line.strip() else "\n" for line in rules_text.splitlines(keepends=True))
    return (
        "# Generated from monitoring/rules.yml by `make k8s-rules`; edit that file, not this one.\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: prometheus-rules\n"
        "  labels:\n"
        "    app: prometheus\n"
        "data:\n"
        f"  {KEY}: |\n{body}"
    )


if __name__ == "__main__":
    CONFIGMAP.write_text(render(RULES.read_text()))
