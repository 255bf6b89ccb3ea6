"""docs/infra.svg is what docs/infra.dot renders to, and shows every part of the system."""

from __future__ import annotations

import html
import shutil
import subprocess

from tests.e2e.servers import ROOT


def test_committed_svg_matches_its_source() -> None:
    dot = shutil.which("dot")
    assert dot, "graphviz is missing: run `make test`, which installs it"
    rendered = subprocess.run(
        [dot, "-Tsvg", str(ROOT / "docs" / "infra.dot")], capture_output=True, text=True, check=True
    ).stdout
    assert rendered == (ROOT / "docs" / "infra.svg").read_text(), "run `make docs` and commit docs/infra.svg"


def test_picture_names_every_part() -> None:
    svg = html.unescape((ROOT / "docs" / "infra.svg").read_text())
    parts = ["LoadBalancer", "Deployment ml-service", "HorizontalPodAutoscaler", "PersistentVolume"]
    parts += ["Job ml-service-train", "Prometheus", "alert rules", "Grafana dashboard", "Clients"]
    for part in parts:
        assert part in svg, part


def test_readme_shows_it() -> None:
    assert "](docs/infra.svg)" in (ROOT / "README.md").read_text()
