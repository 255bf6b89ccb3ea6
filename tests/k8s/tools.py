"""Run the infrastructure checkers that `make test` installs (.venv-tools and Debian packages)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
TOOLS_BIN = ROOT / ".venv-tools" / "bin"


def tool(name: str) -> str:
    """The path of a checker, from .venv-tools first, then PATH; fails when `make test` has not installed it."""
    candidate = TOOLS_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    assert found, f"{name} is not installed: run `make test`, which installs it"
    return found


def run(command: Sequence[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a checker from the repository root and return its result."""
    env = {**os.environ, "PATH": f"{TOOLS_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(list(command), cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def manifests() -> list[Path]:
    """Every manifest file `kubectl apply -f k8s/` applies."""
    return sorted(K8S.glob("*.yaml"))


def resources() -> list[dict[str, Any]]:
    """Every resource in k8s/*.yaml."""
    found: list[dict[str, Any]] = []
    for path in manifests():
        found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def resource(kind: str, name: str) -> dict[str, Any]:
    """The one resource of that kind and name."""
    matches = [r for r in resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]
