"""API keys: optional for the prediction endpoints, always required for the admin endpoints.

Keys arrive in the X-API-Key header and are compared in constant time with every configured key.
They never reach a log line or a metric label.
"""

from __future__ import annotations

import hmac

from pydantic import SecretStr
from starlette.requests import Request

from src.errors import ForbiddenError, UnauthorizedError

API_KEY_HEADER = "x-api-key"


def parse_keys(secret: SecretStr | None) -> tuple[bytes, ...]:
    """The keys of a comma-separated setting, blanks dropped."""
    if secret is None:
        return ()
    return tuple(key.strip().encode() for key in secret.get_secret_value().split(",") if key.strip())


class KeyCheck:
    """Checks a request's API key against a set of keys.

    Optional checks (the prediction endpoints) let everything through when no key is configured;
    required ones (admin) refuse everything then.
    """

    def __init__(self, keys: tuple[bytes, ...], *, required: bool, setting: str) -> None:
        self.keys = keys
        self.required = required
        self.setting = setting

    @property
    def enabled(self) -> bool:
        """Whether a request must carry a key."""
        return bool(self.keys) or self.required

    def check(self, request: Request) -> None:
        """Raise 401 without a key and 403 with a wrong one; return when the key is accepted."""
        if self.enabled:
            self.check_key(request.headers.get(API_KEY_HEADER), "the X-API-Key header")

    def check_key(self, given: str | None, where: str) -> None:
        """The check for a key found in `where` (a header, gRPC metadata): 401, 403, or accepted."""
        if not self.enabled:
            return
        if not given:
            raise UnauthorizedError(f"this endpoint needs an API key in {where}")
        if not self.keys:
            raise ForbiddenError(f"this endpoint is disabled: no {self.setting} are configured")
        candidate = given.encode()
        accepted = False
        for key in self.keys:  # no early exit: the time taken says nothing about which key came close
            accepted |= hmac.compare_digest(candidate, key)
        if not accepted:
            raise ForbiddenError("the API key is not valid")
