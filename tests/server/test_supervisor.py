from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from src.config import Settings
from src.server import supervisor as serve


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


def dead_pid() -> int:
    """The id of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_metrics_dir_loses_only_the_files_of_processes_gone_and_is_exported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 4 of #27: start-up deleted everything in the folder, recursively, a second server's live
    files included. Now only the server's own kinds of file, of processes no longer running."""
    gone, alive = dead_pid(), os.getppid()
    ours_stale = [tmp_path / f"counter_{gone}.db", tmp_path / f"gauge_livesum_{gone}.db"]
    window = tmp_path / "drift" / "sentiment" / "v1" / f"{gone}.window"
    live = [tmp_path / f"counter_{alive}.db", tmp_path / "drift" / "sentiment" / "v1" / f"{alive}.window"]
    not_ours = [tmp_path / "notes.txt", tmp_path / "sub" / f"counter_{gone}.db", tmp_path / f"counter_{gone}.db.bak"]
    for path in [*ours_stale, window, *live, *not_ours]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / f"{gone}.window").write_bytes(b"keep")
    (tmp_path / "drift" / "linked").symlink_to(outside)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert serve.prepare_metrics_dir() == (tmp_path, False)  # configured: cleaned, never removed
    assert not any(path.exists() for path in [*ours_stale, window])
    assert all(path.exists() for path in [*live, *not_ours])
    assert (outside / f"{gone}.window").read_bytes() == b"keep"  # a link is never followed
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)


def test_a_metrics_dir_made_at_start_is_made_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    made, made_here = serve.prepare_metrics_dir()
    assert made_here
    assert made.is_dir()
    made.rmdir()


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


def crash_at_startup(settings: Settings, heartbeat: object) -> None:
    """A worker that dies before serving, as one with a broken install or an unwritable folder would."""
    raise SystemExit(3)


def test_a_worker_crashing_at_startup_is_restarted_with_growing_delays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The reproduction: a worker dying at start-up was restarted every 0.5 s for ever."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    supervisor = serve.Supervisor(Settings(), 1, target=crash_at_startup)
    slot = serve.Slot(supervisor.context.Value("d", 0.0))
    supervisor.slots = [slot]
    delays: list[int] = []
    for _ in range(4):
        supervisor._start(slot)
        process = slot.process
        assert process is not None
        process.join(30)
        supervisor._check()
        assert slot.process is None
        assert slot.restart_at is not None
        delays.append(round(slot.restart_at - time.monotonic()))
    assert delays == [0, 1, 2, 4]
    assert slot.quick_failures == 4
    assert "crashed at startup (exit code 3, 4 quick failures in a row); starting a new one in 4.0 s" in caplog.text


def test_a_worker_whose_heartbeat_stops_is_killed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    supervisor = serve.Supervisor(Settings(worker_timeout_seconds=1), 1, target=sleep_silently)
    slot = serve.Slot(supervisor.context.Value("d", 0.0))
    supervisor.slots = [slot]
    supervisor._start(slot)
    process = slot.process
    assert process is not None
    slot.heartbeat.value = time.monotonic() - 5  # as if its loop had stopped 5 s ago
    supervisor._check()
    assert not process.is_alive()
    assert slot.process is None
    assert slot.restart_at is not None


def sleep_silently(settings: Settings, heartbeat: object) -> None:
    """A worker whose event loop never reports."""
    time.sleep(60)


def test_the_supervisor_starts_without_the_libraries_only_workers_use() -> None:
    # `python -m src.serve` and `ml-service serve` import the command-line package first; the
    # supervisor serves no model, so scikit-learn and skops must wait for the workers.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, src.cli, src.cli.serve, src.serve, src.server.supervisor; "
            "print(' '.join(m for m in ('sklearn', 'skops', 'numpy', 'fastapi', 'uvicorn') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
        check=True,
    )
    assert loaded.stdout.strip() == ""
