from __future__ import annotations

import os
from pathlib import Path

import pytest

from src import serve
from src.config import Settings


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "50000 100000\n"}, 0.5),
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
)
def test_cgroup_cpu_limit(tmp_path: Path, files: dict[str, str], expected: float | None) -> None:
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    assert serve.cgroup_cpu_limit(tmp_path) == expected


def test_workers_follow_the_cpu_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serve, "cgroup_cpu_limit", lambda: 1.5)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert serve.available_cpus() == 2
    assert serve.worker_count(Settings(workers=0)) == 2
    assert serve.worker_count(Settings(workers=5)) == 5
    monkeypatch.setattr(serve, "cgroup_cpu_limit", lambda: 0.25)
    assert serve.available_cpus() == 1


def test_metrics_dir_is_emptied_and_exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"stale")
    (tmp_path / "sub").mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert serve.prepare_metrics_dir() == tmp_path
    assert list(tmp_path.iterdir()) == []
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)


def test_sockets_share_a_port() -> None:
    first = serve.bind_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = serve.bind_socket("127.0.0.1", port)
    assert second.getsockname()[1] == port
    first.close()
    second.close()


def test_a_port_in_use_is_refused_even_by_a_reuseport_listener() -> None:
    listener = serve.bind_socket("127.0.0.1", 0)  # as a running ml-service worker holds it
    port = listener.getsockname()[1]
    with pytest.raises(OSError, match="in use"):
        serve.check_port_free("127.0.0.1", port)
    listener.close()
    serve.check_port_free("127.0.0.1", port)
