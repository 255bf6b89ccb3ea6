"""One correction per answered text across every pod: a set-if-absent in Redis (SHARED_STATE_URL).

A claim is `SET key mark NX PX lifetime`, where the key is the digest of what the correction is of
(src/tenants/feedback_tokens.py: Claims.identity) and the lifetime outlasts every token that could
name it. The ledger rows training reads (the prediction log's feedback records) stay where they are.

While Redis cannot be reached a correction is refused with 503 and Retry-After, never taken per
pod: one taken here and one at another pod would both count. A claim whose answer was lost (sent,
no reply in time) may or may not hold in Redis; its mark is kept and, once Redis answers again,
deleted where it still holds that mark (never another pod's), so the token stays good.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
from collections import OrderedDict

from src import metrics
from src.errors import ServiceUnavailableError
from src.tenants.shared_state import KEY_PREFIX, SharedState, SharedStateDownError

logger = logging.getLogger(__name__)
MAX_UNSETTLED = 10_000  # lost claims kept to release; past it the oldest is dropped (its token may get a 409)
LIFETIME_MARGIN = 60.0  # seconds a claim outlives FEEDBACK_MAX_AGE: tokens are checked against the pod's clock

# Delete KEYS[1] only while it holds ARGV[1]: this worker's own claim, not one another pod took since.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def claim_key(identity: str) -> str:
    """The Redis key of the correction of `identity`."""
    return f"{KEY_PREFIX}correction:{hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()}"


class SharedCorrections:
    """`await claim(identity)`: a mark for the first correction of a text, None for any later one; 503 while down."""

    def __init__(self, state: SharedState, max_age: float) -> None:
        self.state = state
        self.lifetime_ms = int((max_age + LIFETIME_MARGIN) * 1000)
        self.unsettled: OrderedDict[str, bytes] = OrderedDict()  # key -> mark of claims whose answer was lost

    async def claim(self, identity: str) -> bytes | None:
        """Claim the correction of `identity` for this request; its mark, or None if it was already taken."""
        key, mark = claim_key(identity), secrets.token_bytes(12)
        try:
            await self._settle()
            taken = await self.state.run(
                "corrections", lambda: self.state.client.set(key, mark, nx=True, px=self.lifetime_ms)
            )
        except SharedStateDownError as down:
            self._unsettled(key, mark)
            metrics.labelled(metrics.SHARED_STATE_FALLBACKS, "corrections").inc()
            raise _unavailable(down) from None
        return mark if taken else None

    async def release(self, identity: str, mark: bytes) -> None:
        """Give back a claim whose correction could not be stored (the client may send it again)."""
        key = claim_key(identity)
        try:
            await self._release(key, mark)
        except SharedStateDownError:
            self._unsettled(key, mark)

    async def _settle(self) -> None:
        """Release the claims whose answer was lost, oldest first (SharedStateDownError if Redis fails again)."""
        while self.unsettled:
            key, mark = next(iter(self.unsettled.items()))
            await self._release(key, mark)
            self.unsettled.pop(key, None)

    async def _release(self, key: str, mark: bytes) -> None:
        await self.state.run("corrections", lambda: self.state.client.eval(RELEASE, 1, key, mark))

    def _unsettled(self, key: str, mark: bytes) -> None:
        self.unsettled[key] = mark
        if len(self.unsettled) > MAX_UNSETTLED:
            self.unsettled.popitem(last=False)


def _unavailable(down: SharedStateDownError) -> ServiceUnavailableError:
    error = ServiceUnavailableError(
        "corrections are paused: the shared state that keeps them to one per text cannot be reached; "
        "the feedback token stays good, send it again after Retry-After"
    )
    error.retry_after = max(1, math.ceil(down.retry_after))
    return error
