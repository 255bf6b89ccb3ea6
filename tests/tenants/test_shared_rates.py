"""Rates held in a real Redis: the same GCRA as the per-pod limiter, batched, bounded, and falling back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from src import metrics
from src.tenants.keys import Rate
from src.tenants.rate_limit import RateLimiter
from src.tenants.shared_rates import GCRA, SharedRates, cell_key
from src.tenants.shared_state import SharedState
from tests.redis_server import RedisServer, running_redis


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


def _rates(server: RedisServer, timeout: float = 0.05, retry: float = 0.3) -> SharedRates:
    return SharedRates(SharedState(server.url, None, timeout, retry), RateLimiter())


def _fallbacks() -> float:
    return float(metrics.labelled(metrics.SHARED_STATE_FALLBACKS, "rates")._value.get())


async def _checks(rates: SharedRates, key: str, rate: Rate, count: int) -> list[float]:
    """`count` checks of one key asked at once (they go to Redis together)."""
    return list(await asyncio.gather(*(rates.wait("requests", key, rate) for _ in range(count))))


def test_a_burst_then_the_rate_as_the_per_pod_limiter_counts_it(redis_server: RedisServer) -> None:
    async def run() -> tuple[list[float], list[float]]:
        rates = _rates(redis_server)
        first = await _checks(rates, "burst", Rate(per_second=10, burst=5), 7)
        await asyncio.sleep(0.25)  # two more emission intervals
        later = await _checks(rates, "burst", Rate(per_second=10, burst=5), 3)
        await rates.state.close()
        return first, later

    first, later = asyncio.run(run())
    assert first[:5] == [0.0] * 5
    assert 0.0 < first[5] <= 0.1 + 1e-6
    assert first[6] == first[5]
    assert later.count(0.0) == 2  # 0.25 s at 10 a second gave back two
    ttl = int(redis_server.command("PTTL", cell_key("requests", "burst")))
    assert 0 < ttl <= 600  # the cell expires once its TAT has passed: no key is kept for ever


def test_two_pods_share_one_budget(redis_server: RedisServer) -> None:
    async def run() -> list[float]:
        pods = [_rates(redis_server) for _ in range(3)]
        rate = Rate(per_second=1, burst=10)
        waits = [w for many in await asyncio.gather(*(_checks(pod, "shared", rate, 10) for pod in pods)) for w in many]
        for pod in pods:
            await pod.state.close()
        return waits

    waits = asyncio.run(run())
    assert waits.count(0.0) == 10  # one budget of 10 across three pods, not 30
    assert _fallbacks() == 0


def test_a_paused_redis_costs_at_most_the_bound_then_rates_hold_per_pod(redis_server: RedisServer) -> None:
    async def run() -> tuple[float, list[float], float, list[float]]:
        rates = _rates(redis_server, timeout=0.05, retry=0.3)
        rate = Rate(per_second=1, burst=3)
        await _checks(rates, "paused", rate, 1)  # connected, the script loaded
        redis_server.pause()
        try:
            started = time.monotonic()
            during = await _checks(rates, "paused", rate, 5)
            waited = time.monotonic() - started
            started = time.monotonic()
            await _checks(rates, "paused", rate, 5)  # within the pause: nobody waits on Redis
            quick = time.monotonic() - started
        finally:
            redis_server.resume()
        await asyncio.sleep(0.35)
        after = await _checks(rates, "paused", rate, 3)
        await rates.state.close()
        return waited, during, quick, after

    before = _fallbacks()
    waited, during, quick, after = asyncio.run(run())
    assert waited < 0.05 + 0.03  # the bound, and a little for the loop
    assert during[:3] == [0.0] * 3
    assert during[3] > 0
    assert quick < 0.01
    assert _fallbacks() - before == 10  # the ten during the pause, none after: Redis answered again
    # Whether Redis ran the checks whose answers were lost (it may, once it goes on) decides how much
    # of the budget is left; either way the answers are Redis's own again, from its cell.
    assert len(after) == 3
    assert redis_server.command("EXISTS", cell_key("requests", "paused")) == "1"


def test_a_restarted_redis_is_used_again_with_its_script_loaded_anew(tmp_path: Path) -> None:
    with running_redis(tmp_path / "a") as server:
        port = server.port

        async def before() -> SharedRates:
            rates = _rates(server, retry=0.1)
            assert await _checks(rates, "restart", Rate(5, 1), 1) == [0.0]
            return rates

        loop = asyncio.new_event_loop()
        rates = loop.run_until_complete(before())
    with running_redis(tmp_path / "b", port=port) as again:  # the same address, an empty Redis
        assert again.command("SCRIPT", "EXISTS", "0" * 40) == "0"

        async def after() -> list[float]:
            first = await _checks(rates, "restart", Rate(5, 1), 1)  # the old connection fails: per pod
            await asyncio.sleep(0.15)
            return first + await _checks(rates, "restart", Rate(5, 1), 2)

        waits = loop.run_until_complete(after())
        loop.run_until_complete(rates.state.close())
        loop.close()
        assert waits[1] == 0.0
        assert waits[2] > 0
        assert again.command("EXISTS", cell_key("requests", "restart")) == "1"


def test_a_reply_the_script_never_gives_fails_the_checks_over_to_the_per_pod_limiter(
    redis_server: RedisServer,
) -> None:
    async def run() -> list[float]:
        rates = _rates(redis_server)
        # A Redis answering something else than the script's waits (a stranger's script under its SHA).
        sha = redis_server.command("SCRIPT", "LOAD", "return {'not a number'}")
        rates.state.scripts[GCRA] = sha.encode()
        try:
            return await asyncio.wait_for(_checks(rates, "stranger", Rate(1, 2), 3), timeout=5)
        finally:
            await rates.state.close()

    before = _fallbacks()
    waits = asyncio.run(run())
    assert waits[:2] == [0.0, 0.0]  # the per-pod budget answered, and nobody hung
    assert waits[2] > 0
    assert _fallbacks() - before == 3
