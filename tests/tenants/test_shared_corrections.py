"""One correction per text across pods, in a real Redis: first wins, a fault refuses, a lost claim is given back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from src.errors import ServiceUnavailableError
from src.tenants.shared_corrections import SharedCorrections, claim_key
from src.tenants.shared_state import SharedState
from tests.redis_server import RedisServer, running_redis


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


def _pod(server: RedisServer, retry: float = 0.2) -> SharedCorrections:
    return SharedCorrections(SharedState(server.url, None, 0.05, retry), max_age=3600)


def test_the_first_claim_across_pods_wins_and_lives_as_long_as_a_token(redis_server: RedisServer) -> None:
    async def run() -> list[bytes | None]:
        pods = [_pod(redis_server) for _ in range(3)]
        marks = list(await asyncio.gather(*(pod.claim("text-1") for pod in pods)))
        for pod in pods:
            await pod.state.close()
        return marks

    marks = asyncio.run(run())
    assert sum(mark is not None for mark in marks) == 1
    ttl = int(redis_server.command("PTTL", claim_key("text-1")))
    assert 3600_000 < ttl <= 3660_000


def test_a_released_claim_can_be_taken_again_but_not_another_pods(redis_server: RedisServer) -> None:
    async def run() -> tuple[bytes | None, bytes | None, bytes | None]:
        one, two = _pod(redis_server), _pod(redis_server)
        mark = await one.claim("text-2")
        assert mark is not None
        await one.release("text-2", mark)
        again = await two.claim("text-2")
        await one.release("text-2", mark)  # a stale mark: the other pod's claim stands
        third = await one.claim("text-2")
        await one.state.close()
        await two.state.close()
        return mark, again, third

    _, again, third = asyncio.run(run())
    assert again is not None
    assert third is None


def test_while_redis_is_paused_a_correction_is_refused_and_its_token_stays_good(redis_server: RedisServer) -> None:
    async def run() -> tuple[ServiceUnavailableError, bytes | None]:
        pod = _pod(redis_server, retry=0.2)
        assert await pod.claim("warm-up") is not None
        redis_server.pause()
        try:
            with pytest.raises(ServiceUnavailableError) as refused:
                await pod.claim("text-3")
        finally:
            redis_server.resume()
        await asyncio.sleep(0.25)
        # Redis may have taken the claim it was sent: the lost claim is given back first, so the
        # same correction, sent again, is taken (once).
        mark = await pod.claim("text-3")
        await pod.state.close()
        return refused.value, mark

    refused, mark = asyncio.run(run())
    assert refused.retry_after == 1
    assert "send it again" in str(refused)
    assert mark is not None

    async def once_more() -> bytes | None:
        pod = _pod(redis_server)
        try:
            return await pod.claim("text-3")
        finally:
            await pod.state.close()

    assert asyncio.run(once_more()) is None  # and only once
