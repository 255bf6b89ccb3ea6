"""Access control for every protocol: the key, its scope, its models and its rate, decided in one place.

`Access.authorize` is awaited by the HTTP policy middleware and, on the event loop, by the gRPC
servicer before a request does any work; which models a key sees is decided where every request
finds its model, the data plane (src/serving/dataplane.py): a model outside the key's list does not exist for it.

The key file is re-read when it changes (checked at most once a second, on a request): a file that
cannot be used leaves the keys in force as they were, and says why in the log.

Every refusal for scope, model or rate, and every admin action, is an audit line: JSON on the
`src.audit` logger with the key id, route, model and outcome, never the key.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from pathlib import Path

from src import metrics
from src.config import Settings
from src.errors import ForbiddenError, RateLimitedError, UnauthorizedError
from src.tenants.keys import KeyFileError, KeyRing, Tenant, build_key_ring
from src.tenants.rate_limit import RateLimiter
from src.tenants.shared_rates import SharedRates
from src.tenants.shared_state import SharedState

logger = logging.getLogger(__name__)
audit_logger = logging.getLogger("src.audit")
KEY_FILE_CHECK_SECONDS = 1.0


def audit(event: str, tenant: str, route: str, model: str | None, outcome: str, **extra: object) -> None:
    """One audit line: what a key did or was refused."""
    line = {"ts": round(time.time(), 3), "event": event, "key": tenant, "route": route, "model": model}
    audit_logger.info(json.dumps({**line, "outcome": outcome, **extra}))


def _file_state(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()  # through symlinks: a Secret's update swaps its `..data` link
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


class Access:
    """The keys in force, and the checks every keyed request passes."""

    def __init__(
        self,
        api_keys: str | None,
        admin_api_keys: str | None,
        key_file: Path | None,
        limiter: RateLimiter | None = None,
        shared: SharedRates | None = None,
    ) -> None:
        self.settings_keys = (api_keys, admin_api_keys)
        self.key_file = key_file
        self.limiter = limiter or RateLimiter()
        self.shared = shared
        self.lock = threading.Lock()
        self.file_state = _file_state(key_file) if key_file else None
        self.ring: KeyRing = build_key_ring(api_keys, admin_api_keys, key_file)  # KeyFileError: refuse to start
        self.next_check = time.monotonic() + KEY_FILE_CHECK_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings, folder: Path | None = None, state: SharedState | None = None) -> Access:
        """API_KEYS, ADMIN_API_KEYS and API_KEYS_FILE; rates shared by the pods through `state` (Redis), else
        by the server's workers through `folder` (one per server)."""
        limiter = RateLimiter(folder / "rates" if folder else None)
        return cls(
            settings.api_keys.get_secret_value() if settings.api_keys else None,
            settings.admin_api_keys.get_secret_value() if settings.admin_api_keys else None,
            settings.api_keys_file,
            limiter,
            SharedRates(state, limiter) if state is not None else None,
        )

    @property
    def enforced(self) -> bool:
        """Whether requests other than admin ones need a key."""
        return self.ring.enforced

    def refresh(self, *, force: bool = False) -> None:
        """Re-read the key file if it changed since it was read; a bad one keeps the keys in force."""
        if self.key_file is None:
            return
        now = time.monotonic()
        if not force and now < self.next_check:
            return
        with self.lock:
            self.next_check = now + KEY_FILE_CHECK_SECONDS
            state = _file_state(self.key_file)
            if state == self.file_state:
                return
            self.file_state = state
            try:
                ring = build_key_ring(*self.settings_keys, self.key_file)
            except KeyFileError as error:
                logger.error(
                    "API_KEYS_FILE changed but cannot be used; keeping the %d keys in force: %s",
                    len(self.ring.tenants),
                    error,
                )
                return
            self.ring = ring
            logger.info("API_KEYS_FILE reloaded: %d keys", len(ring.tenants))

    async def authorize(self, given: str | None, where: str, scope: str, route: str) -> Tenant | None:
        """The tenant of a request needing `scope`, None when keys are off; else 401, 403 or 429."""
        self.refresh()
        ring = self.ring
        if scope != "admin" and not ring.enforced:
            return None
        if not given:
            raise UnauthorizedError(f"this endpoint needs an API key in {where}")
        if scope == "admin" and not ring.has_scope("admin"):
            raise ForbiddenError(
                "this endpoint is disabled: no ADMIN_API_KEYS (or API_KEYS_FILE keys with the admin scope) "
                "are configured"
            )
        tenant = ring.find(given)
        if tenant is None:
            metrics.labelled(metrics.KEY_REQUESTS, "unknown", "forbidden").inc()
            raise ForbiddenError("the API key is not valid")
        if scope not in tenant.scopes:
            refuse(tenant, route, None, "forbidden", f"scope {scope}")
            raise ForbiddenError(
                f"key {tenant.id!r} does not have the {scope!r} scope (it has: {', '.join(sorted(tenant.scopes))})"
            )
        rate = tenant.rate_for(scope)
        if rate is not None:
            kind = "feedback" if scope == "feedback" else "requests"
            if self.shared is not None:
                wait = await self.shared.wait(kind, tenant.id, rate)
            else:
                wait = self.limiter.wait(kind, tenant.id, rate)
            if wait > 0:
                refuse(tenant, route, None, "rate_limited", f"{kind} rate")
                raise RateLimitedError(
                    tenant.id, "feedback" if kind == "feedback" else "request", rate.per_second, wait
                )
        metrics.labelled(metrics.KEY_REQUESTS, tenant.id, "accepted").inc()
        return tenant


class _RateRefusals:
    """Audit lines for rate refusals, at most one per key a second: a key past its rate sending as
    fast as it can must not turn the log into its amplifier. Each line counts the refusals since
    the key's last one (`refusals`); the metric counts every one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last: dict[str, tuple[float, int]] = {}  # key id -> (when its last line went, refusals since)

    def due(self, key_id: str, now: float) -> int:
        """The refusals a line now would report (this one included), or 0 when this key had one within a second."""
        with self.lock:
            when, count = self.last.get(key_id, (-math.inf, 0))
            if now - when < AUDIT_RATE_SECONDS:
                self.last[key_id] = (when, count + 1)
                return 0
            self.last[key_id] = (now, 0)
            return count + 1


AUDIT_RATE_SECONDS = 1.0
_rate_refusals = _RateRefusals()


def refuse(tenant: Tenant, route: str, model: str | None, outcome: str, missing: str) -> None:
    """Count and audit a refusal (rate refusals: at most one line a second per key)."""
    metrics.labelled(metrics.KEY_REQUESTS, tenant.id, outcome).inc()
    if outcome != "rate_limited":
        audit("refused", tenant.id, route, model, outcome, missing=missing)
        return
    refusals = _rate_refusals.due(tenant.id, time.monotonic())
    if refusals:
        audit("refused", tenant.id, route, model, outcome, missing=missing, refusals=refusals)
