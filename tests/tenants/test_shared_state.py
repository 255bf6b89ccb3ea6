"""The shared state's settings and connection: URLs checked at start, a password from a file, faults paused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from src.config import Settings
from src.tenants.keys import Rate
from src.tenants.rate_limit import RateLimiter
from src.tenants.shared_rates import SharedRates
from src.tenants.shared_state import SharedState, SharedStateDownError
from src.tenants.shared_state_url import check_url, shown_url
from tests.redis_server import running_redis


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("localhost:6379", "the scheme must be redis:// or rediss://"),
        ("redis://:6379/0", "a host is needed"),
        ("redis://cache:99999/0", "the port must be a number"),
        ("redis://cache:6379/zero", "the path is the database number"),
        ("redis://cache:6379/0?password=x", "no query or fragment"),
    ],
)
def test_a_url_that_names_no_redis_is_refused_with_its_reason(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_url(url)


def test_good_urls_pass_and_the_log_never_shows_a_password() -> None:
    assert check_url(" rediss://:pw@cache.example:6380/2 ") == "rediss://:pw@cache.example:6380/2"
    assert shown_url("redis://user:secret@cache/1") == "redis://cache:6379/1"
    assert Settings(shared_state_url="").shared_state_url is None  # a blank ConfigMap value is off


def test_a_password_file_opens_a_redis_that_requires_one(tmp_path: Path) -> None:
    (tmp_path / "password").write_text("s3cret-for-the-test\n")
    settings = Settings(shared_state_password_file=tmp_path / "password", shared_state_url="redis://127.0.0.1:1/0")
    with running_redis(tmp_path / "redis", password="s3cret-for-the-test") as server:
        settings = settings.model_copy(update={"shared_state_url": server.url})

        async def run() -> tuple[float, float]:
            good = SharedState.from_settings(settings)
            bad = SharedState(server.url, "wrong-password", 0.05, 5.0)
            assert good is not None
            try:
                allowed = await SharedRates(good, RateLimiter()).wait("requests", "k", Rate(1, 1))
                with pytest.raises(SharedStateDownError):  # a refused password is a fault: paused, not retried
                    await bad.run("rates", lambda: bad.client.ping())
                return allowed, bad.retry_after()
            finally:
                await good.close()
                await bad.close()

        allowed, pause = asyncio.run(run())
    assert allowed == 0.0
    assert pause > 4
    assert SharedState.from_settings(Settings()) is None
