"""The metrics module's multiprocess set-up: one file per process, also after a fork."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.e2e.servers import ROOT

FORKING = """
import os, sys
from src import metrics
metrics.REQUESTS_SHED.inc()
child = os.fork()
if child == 0:
    metrics.REQUESTS_SHED.inc(5)
    os._exit(0)
os.waitpid(child, 0)
metrics.REQUESTS_SHED.inc()
print(os.getpid(), child)
"""


def test_each_process_writes_its_own_file_after_a_fork(tmp_path: Path) -> None:
    """The remembered pid (prometheus_client asked the kernel on every write) must follow a fork."""
    run = subprocess.run(
        [sys.executable, "-c", FORKING],
        cwd=ROOT,
        env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    parent, child = run.stdout.split()
    assert {path.name for path in tmp_path.glob("counter_*.db")} == {f"counter_{parent}.db", f"counter_{child}.db"}
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))  # type: ignore[no-untyped-call]
    assert registry.get_sample_value("mlservice_requests_shed_total") == 7
