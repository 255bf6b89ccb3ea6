"""The training Job's store preparation, run for real: as the Job's user against a root-owned folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.k8s.tools import ROOT, resource

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")


@pytest.fixture
def hostpath_store() -> Iterator[Path]:
    """A folder as hostPath DirectoryOrCreate makes it: root-owned, 0755, where uid 10001 can reach it."""
    parent = Path(tempfile.mkdtemp(prefix="hostpath-"))
    parent.chmod(0o755)
    store = parent / "data"
    store.mkdir(mode=0o755)
    yield store
    shutil.rmtree(parent)


def train_as(user: int, group: int, store: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "src.model.train_script", "--sample", "1500", "--no-cross-source"]
    return subprocess.run(
        ["setpriv", f"--reuid={user}", f"--regid={group}", "--clear-groups", *command, "--model-dir", str(store)],
        cwd=ROOT,
        env={**os.environ, "HOME": str(store.parent), "MPLCONFIGDIR": str(store.parent)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_job_publishes_only_after_its_init_container_prepared_the_store(hostpath_store: Path) -> None:
    pod = resource("Job", "ml-service-train")["spec"]["template"]["spec"]
    user, group = pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]
    (mount,) = [m["mountPath"] for m in pod["containers"][0]["volumeMounts"] if m["name"] == "models"]

    refused = train_as(user, group, hostpath_store)
    assert refused.returncode != 0
    assert "PermissionError" in refused.stderr

    (prepare,) = pod["initContainers"]
    command = [part.replace(mount, str(hostpath_store)) for part in prepare["command"]]
    subprocess.run(command, check=True, timeout=30)  # as root, as the init container runs
    published = train_as(user, group, hostpath_store)
    assert published.returncode == 0, published.stderr[-2000:]
    assert (hostpath_store / "sentiment" / "CURRENT").is_file()
