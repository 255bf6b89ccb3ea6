"""Per-key rates held in Redis for every pod: the limiter's GCRA, one atomic step per check on the server.

A check is one cell (kind and key id) of the Lua script below, which reads the time from Redis
(one clock for every pod), moves the cell's TAT on when the request may go, and answers the wait
otherwise; a cell expires when its TAT has passed (an absent cell is a full budget). The checks a
worker makes while one script run is on its way go together in the next run: each costs one
script call when requests are few, and a share of one when they are many, which is when the cost
counts (`make bench`: bench/shared_state.md). A check waits at most SHARED_STATE_TIMEOUT_MS from
the moment it is asked; when Redis does not answer in time (or is down), the per-pod limiter
(src/tenants/rate_limit.py) answers instead, and `mlservice_shared_state_fallbacks_total` counts it.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError

from src import metrics
from src.tenants.keys import Rate
from src.tenants.rate_limit import RateLimiter
from src.tenants.shared_state import KEY_PREFIX, SharedState, SharedStateDownError

MAX_BATCH = 256  # cells in one script run, so one run never holds Redis long

# KEYS[i] is a cell; ARGV[2i-1] and ARGV[2i] its emission interval and its burst times that, in µs.
# Answers, per cell, 0 (let through: its TAT moved on) or the µs until it may go.
GCRA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local waits = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local limit = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key)) or now
  if tat > now + limit then tat = now end
  local arrival = math.max(tat, now) + interval
  local over = arrival - now - limit
  if over > 0 then
    waits[i] = over
  else
    redis.call('SET', key, string.format('%d', arrival), 'PX', math.ceil((arrival - now) / 1000) + 1)
    waits[i] = 0
  end
end
return waits
"""


def cell_key(kind: str, key_id: str) -> str:
    """The Redis key of a (kind, key) cell."""
    return f"{KEY_PREFIX}rate:{kind}:{key_id}"


class _Check:
    __slots__ = ("args", "asked", "cell", "future")

    def __init__(self, cell: str, rate: Rate, future: asyncio.Future[float]) -> None:
        interval = round(1e6 / rate.per_second)
        self.cell = cell
        self.args = (interval, round(interval * rate.burst))
        self.future = future
        self.asked = time.monotonic()


class SharedRates:
    """`await wait(kind, key, rate)`: 0 when a request may go now, else the seconds until it may."""

    def __init__(self, state: SharedState, fallback: RateLimiter) -> None:
        self.state = state
        self.fallback = fallback
        self.pending: list[_Check] = []
        self.sending = False
        self._connection: AbstractConnection | None = None
        self.sender: asyncio.Task[None] | None = None

    async def wait(self, kind: str, key_id: str, rate: Rate) -> float:
        """Take one request from the key's budget of `kind`, pod-wide; the per-pod budget while Redis is down."""
        if self.state.available():
            loop = asyncio.get_running_loop()
            check = _Check(cell_key(kind, key_id), rate, loop.create_future())
            self.pending.append(check)
            if not self.sending:
                self.sending = True
                self.sender = loop.create_task(self._send())
            try:
                return await check.future
            except SharedStateDownError:
                pass
        metrics.labelled(metrics.SHARED_STATE_FALLBACKS, "rates").inc()
        return self.fallback.wait(kind, key_id, rate)

    async def _send(self) -> None:
        """Send what is pending, one script run at a time, until nothing is."""
        try:
            while self.pending:
                batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
                left = batch[0].asked + self.state.timeout - time.monotonic()  # the oldest check's time
                try:
                    waits = await self.state.run("rates", partial(self._run, batch), timeout=max(left, 0.001))
                except Exception as error:  # a reply this code cannot read is a fault too: no check may hang
                    if not isinstance(error, SharedStateDownError):
                        self.state.fault("rates", error)
                    down = SharedStateDownError(self.state.retry_after())
                    for check in batch:
                        if not check.future.done():
                            check.future.set_exception(down)
                    continue
                for check, wait in zip(batch, waits, strict=True):
                    if not check.future.done():  # its request may have gone (the client left)
                        check.future.set_result(wait / 1e6)
        finally:
            self.sending = False

    async def _run(self, batch: list[_Check]) -> list[int]:
        if self._connection is None:
            self._connection = self.state.connection()
        args = [value for check in batch for value in check.args]
        waits = await self.state.evalsha(self._connection, GCRA, [check.cell for check in batch], args)
        if not isinstance(waits, list) or len(waits) != len(batch):
            raise ResponseError(f"the rate script answered {type(waits).__name__}, not {len(batch)} waits")
        return [int(wait) for wait in waits]
