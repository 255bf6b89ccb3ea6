"""Per-key rates: the GCRA's arithmetic, one budget shared by processes, and no key slowing another."""

from __future__ import annotations

import multiprocessing
import struct
import time
from pathlib import Path

from src.tenants.keys import Rate
from src.tenants.rate_limit import RateLimiter


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
        (tmp_path / "requests.a").write_bytes(struct.pack("d", value))
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
    (tmp_path / "requests.a").write_bytes(b"\1\2\3")  # cut short while the server runs: no SIGBUS, one burst
    assert limiter.wait("requests", "a", rate) == 0.0
