"""The state pods share through Redis or Valkey (SHARED_STATE_URL), and what a fault of it does.

Each worker holds its own connections (made on first use, on the worker's event loop). Whatever
goes wrong with Redis (refused, reset, no reply within SHARED_STATE_TIMEOUT_MS, an error reply)
is one fault: it marks Redis down in this worker for SHARED_STATE_RETRY_SECONDS, during which no
request waits on it, and is logged once per outage. After that time the next use tries again
(reconnecting if need be), so a Redis that comes back is used again without a restart. What falls
back to what is the caller's choice: rates to the per-pod limiter, corrections to a 503.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

import redis.asyncio
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError, RedisError

from src import metrics
from src.config import Settings
from src.tenants.shared_state_url import shown_url

logger = logging.getLogger(__name__)
T = TypeVar("T")
KEY_PREFIX = "ml-service:"  # every key this service writes, so a shared Redis keeps others' keys apart


def read_password(path: Path | None) -> str | None:
    """The password a file holds (a Secret's key), without its line end; None without a file."""
    if path is None:
        return None
    return path.read_text().strip() or None


class SharedStateDownError(Exception):
    """Redis could not be used now; `retry_after` seconds until it is tried again."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("the shared state (SHARED_STATE_URL) cannot be reached")
        self.retry_after = retry_after


class SharedState:
    """One worker's way to Redis: `run(attempt)` within the time bound, and whether Redis is up."""

    def __init__(self, url: str, password: str | None, timeout: float, retry_seconds: float) -> None:
        self.timeout = timeout
        self.retry_seconds = retry_seconds
        self.location = shown_url(url)
        self.pool = redis.asyncio.ConnectionPool.from_url(
            url,
            password=password or unquote(urlsplit(url).password or "") or None,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry_on_error=[],  # a retry is the next request's, after the fault's pause: never a wait here
            driver_info=None,  # no CLIENT SETINFO: one round trip fewer per connection
            max_connections=8,
        )
        self.client = redis.asyncio.Redis(connection_pool=self.pool)
        self.down_until = -math.inf
        self.outage = False
        self.scripts: dict[str, bytes] = {}
        self.own: list[AbstractConnection] = []  # connections made outside the pool

    @classmethod
    def from_settings(cls, settings: Settings) -> SharedState | None:
        """The shared state SHARED_STATE_URL names; None when unset (rates and corrections held per pod)."""
        if settings.shared_state_url is None:
            return None
        return cls(
            settings.shared_state_url,
            read_password(settings.shared_state_password_file),
            settings.shared_state_timeout_ms / 1000,
            settings.shared_state_retry_seconds,
        )

    def available(self) -> bool:
        """Whether Redis may be tried now (it is not in a fault's pause)."""
        return time.monotonic() >= self.down_until

    def retry_after(self) -> float:
        """Seconds until Redis is tried again (at least the pause a fault starts)."""
        return max(self.down_until - time.monotonic(), self.retry_seconds)

    def connection(self) -> AbstractConnection:
        """A connection of its own, outside the pool (for a caller that sends one batch at a time)."""
        connection: AbstractConnection = self.pool.make_connection()  # type: ignore[no-untyped-call]
        self.own.append(connection)
        return connection

    async def run(self, what: str, attempt: Callable[[], Awaitable[T]], timeout: float | None = None) -> T:
        """`attempt()` within `timeout` (the time bound unless less is left); SharedStateDownError (and the
        fault noted) if Redis fails it."""
        if not self.available():
            raise SharedStateDownError(self.retry_after())
        try:
            async with asyncio.timeout(self.timeout if timeout is None else timeout):
                result = await attempt()
        except (RedisError, OSError, TimeoutError) as error:
            self.fault(what, error)
            raise SharedStateDownError(self.retry_after()) from None
        if self.outage:
            self.outage = False
            logger.warning("shared state at %s is back: rates and corrections are shared across pods", self.location)
        return result

    def fault(self, what: str, error: BaseException) -> None:
        """Note a fault: pause, count, and log the first of an outage."""
        self.down_until = time.monotonic() + self.retry_seconds
        metrics.labelled(metrics.SHARED_STATE_FAULTS, what).inc()
        if not self.outage:
            self.outage = True
            logger.error(
                "shared state at %s failed (%s: %s): rates hold per pod and corrections wait until it is back; "
                "trying again every %g s",
                self.location,
                type(error).__name__,
                error or "no reply in time",
                self.retry_seconds,
            )

    async def evalsha(self, connection: AbstractConnection, script: str, keys: list[str], args: list[int]) -> object:
        """Run a Lua script by its SHA on `connection`, loading it first where Redis does not know it."""
        sha = self.scripts.get(script)
        if sha is None:
            sha = self.scripts[script] = await self._load(connection, script)
        try:
            return await _command(connection, "EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:  # Redis restarted (or SCRIPT FLUSH) since the script was loaded
            self.scripts[script] = await self._load(connection, script)
            return await _command(connection, "EVALSHA", self.scripts[script], len(keys), *keys, *args)

    async def _load(self, connection: AbstractConnection, script: str) -> bytes:
        sha = await _command(connection, "SCRIPT", "LOAD", script)
        return sha if isinstance(sha, bytes) else str(sha).encode()

    async def close(self) -> None:
        """Close every connection."""
        for connection in self.own:
            await connection.disconnect(nowait=True)
        await self.client.aclose()
        await self.pool.disconnect()


async def _command(connection: AbstractConnection, *args: object) -> object:
    try:
        await connection.send_command(*args)
        return await connection.read_response()
    except NoScriptError:
        raise
    except BaseException:
        # A reply that may still come would answer the next command: start again on a new connection.
        await connection.disconnect(nowait=True)
        raise
