"""Per-key rates: the GCRA's arithmetic, one budget shared by processes, and no key slowing another."""

from __future__ import annotations

import multiprocessing
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from src.tenants import rate_limit
from src.tenants.keys import Rate
from src.tenants.rate_limit import TABLE_NAME, RateLimiter, cell_digest
from tests.e2e.servers import ROOT


def _slot(folder: Path, kind: str, key: str) -> int:
    """The offset of a cell's slot in the shared file."""
    table = (folder / TABLE_NAME).read_bytes()
    return table.index(cell_digest(kind, key))


def _set_tat(folder: Path, kind: str, key: str, raw: bytes) -> None:
    offset = _slot(folder, kind, key)
    with (folder / TABLE_NAME).open("r+b") as file:
        file.seek(offset + 16)
        file.write(raw)


def test_a_burst_then_the_rate() -> None:
    limiter = RateLimiter()
    rate = Rate(per_second=10, burst=5)
    waits = [limiter.wait("requests", "a", rate, now=100.0) for _ in range(7)]
    assert waits[:5] == [0.0] * 5
    assert 0.09 < waits[5] <= 0.1 + 1e-9  # the next one may go a tenth of a second later
    assert limiter.wait("requests", "a", rate, now=100.1) == 0.0
    assert limiter.wait("requests", "b", rate, now=100.0) == 0.0  # another key has its own budget
    assert limiter.wait("feedback", "a", rate, now=100.0) == 0.0  # and corrections their own


def test_a_cell_no_request_could_have_set_is_read_as_now(tmp_path: Path) -> None:
    limiter = RateLimiter(tmp_path)
    rate = Rate(per_second=1, burst=2)
    assert limiter.wait("requests", "a", rate) == 0.0
    for value in (float("nan"), float("inf"), time.monotonic() + 10_000):  # damaged, or from before a reboot
        _set_tat(tmp_path, "requests", "a", struct.pack("d", value))
        assert RateLimiter(tmp_path).wait("requests", "a", rate) == 0.0


def _spend(folder: str, key: str, seconds: float, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    limiter = RateLimiter(Path(folder))
    rate = Rate(per_second=50, burst=10)
    allowed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        allowed += limiter.wait("requests", key, rate) == 0.0
    results.put((key, allowed))


def test_processes_share_one_budget_and_a_busy_key_does_not_slow_another(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    seconds = 2.0
    processes = [context.Process(target=_spend, args=(str(tmp_path), "busy", seconds, results)) for _ in range(2)]
    processes.append(context.Process(target=_spend, args=(str(tmp_path), "other", seconds, results)))
    for process in processes:
        process.start()
    counts: dict[str, int] = {}
    for _ in processes:
        key, allowed = results.get(timeout=60)
        counts[key] = counts.get(key, 0) + allowed
    for process in processes:
        process.join(10)
    # Two processes hammering one key get one budget between them: 50/s and a burst of 10, not twice
    # that (the processes start a little apart, hence the margin); the other key gets its own in full.
    assert counts["busy"] <= 50 * (seconds + 0.5) + 10
    assert counts["busy"] >= 50 * seconds * 0.8
    assert counts["other"] >= 50 * seconds * 0.8


def test_a_cell_cut_short_is_read_as_now(tmp_path: Path) -> None:
    limiter = RateLimiter(tmp_path)
    rate = Rate(per_second=1, burst=1)
    assert limiter.wait("requests", "a", rate) == 0.0
    assert limiter.wait("requests", "a", rate) > 0  # its budget is spent
    offset = _slot(tmp_path, "requests", "a")
    os.truncate(tmp_path / TABLE_NAME, offset + 19)  # cut short while the server runs: no SIGBUS, one burst
    assert limiter.wait("requests", "a", rate) == 0.0
    assert limiter.wait("requests", "a", rate) > 0  # and the cell is whole again
    (tmp_path / TABLE_NAME).write_bytes(b"")  # emptied: the key's cell is claimed anew
    assert limiter.wait("requests", "a", rate) == 0.0
    assert _slot(tmp_path, "requests", "a") == offset


MANY_KEYS = """
import os, resource, sys
from pathlib import Path
from src.tenants.keys import Rate
from src.tenants.rate_limit import RateLimiter
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
limiter = RateLimiter(Path(sys.argv[1]))
rate = Rate(per_second=1, burst=1)
before = len(os.listdir("/proc/self/fd"))
for i in range(1200):
    assert limiter.wait("requests", f"key-{i}", rate) == 0.0
    assert limiter.wait("requests", f"key-{i}", rate) > 0
open(os.devnull).close()  # the worker can still open files
print(len(os.listdir("/proc/self/fd")) - before)
"""


def test_many_keys_hold_one_open_file(tmp_path: Path) -> None:
    """The limiter kept a file open per rated key: 1,200 keys under a 1,024 open-file limit ended in
    `Too many open files` (500s, and a worker that could open nothing else). Now one file holds them."""
    run = subprocess.run(
        [sys.executable, "-c", MANY_KEYS, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [TABLE_NAME]
    assert (tmp_path / TABLE_NAME).stat().st_size <= rate_limit.SLOTS * 24


def test_a_full_file_leaves_new_keys_a_budget_of_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(rate_limit, "SLOTS", 4)
    limiter = RateLimiter(tmp_path)
    rate = Rate(per_second=1, burst=1)
    for key in ("a", "b", "c", "d", "e", "f"):  # two more keys than slots, whatever their digests
        assert limiter.wait("requests", key, rate, now=10.0) == 0.0
        assert limiter.wait("requests", key, rate, now=10.0) > 0
    assert "no free slot" in caplog.text
    assert RateLimiter(tmp_path).wait("requests", "a", rate, now=10.0) > 0  # the shared ones are shared
