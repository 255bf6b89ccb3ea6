"""Where corrections arrive: a feedback token checked, its key matched, the first correction of a
text taken and stored beside the prediction records (src/serving/prediction_log.py).

Tokens (src/tenants/feedback_tokens.py) are issued with every answer while a prediction log is on;
a correction is taken only with one, from the key the answer went to, within FEEDBACK_MAX_AGE, and
once per text (src/tenants/corrections.py per server, src/tenants/shared_corrections.py across pods
with SHARED_STATE_URL). With keys off, the older form naming a request id is
still taken, under the key id `anonymous`; with keys on it is refused, since a request id is no
proof of who asked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from src.config import Settings
from src.errors import (
    ConflictError,
    FeatureOffError,
    ForbiddenError,
    InvalidInputError,
    ServiceUnavailableError,
    quoted,
)
from src.serving.prediction_log import PredictionLog
from src.tenants.corrections import CorrectionLedger
from src.tenants.feedback_tokens import Claims, FeedbackTokens, TokenError, shared_secret
from src.tenants.keys import ANONYMOUS, Tenant
from src.tenants.shared_corrections import SharedCorrections
from src.tenants.shared_state import SharedState


def key_id(tenant: Tenant | None) -> str:
    """The id a request's records and tokens carry."""
    return ANONYMOUS if tenant is None else tenant.id


@dataclass(frozen=True)
class Correction:
    """What a client sent: a token (or, keys off, a request id, index and model) and a label."""

    label: str
    token: str | None = None
    request_id: str | None = None
    index: int = 0
    model: str | None = None


class FeedbackDesk:
    """Takes corrections; `tokens` is None when no prediction log keeps them (feedback is off)."""

    def __init__(
        self,
        log: PredictionLog | None,
        tokens: FeedbackTokens | None,
        ledger: CorrectionLedger | None,
        shared: SharedCorrections | None = None,
    ):
        self.log = log
        self.tokens = tokens
        self.ledger = ledger
        self.shared = shared

    @classmethod
    def from_settings(
        cls, settings: Settings, log: PredictionLog | None, folder: Path | None, state: SharedState | None = None
    ) -> FeedbackDesk:
        """Off without a prediction log or with FEEDBACK_ENABLED false; else tokens, and one correction per
        text held by the pods through `state` (Redis), else by the server's workers through `folder`."""
        if log is None or not settings.feedback_enabled:
            return cls(None, None, None)
        tokens = FeedbackTokens(shared_secret(settings, folder), settings.feedback_max_age)
        if state is not None:
            return cls(log, tokens, None, SharedCorrections(state, settings.feedback_max_age))
        ledger = CorrectionLedger(folder / "corrections.sqlite" if folder else None, settings.feedback_max_age)
        return cls(log, tokens, ledger)

    def claims(self, correction: Correction, tenant: Tenant | None, keys_enforced: bool) -> Claims:
        """Who may correct what: the token's claims (the older form's, keys off); 4xx when refused."""
        if self.tokens is None or self.log is None:
            raise FeatureOffError(
                "feedback is off: it needs a prediction log (PREDICTION_LOG_DIR or _URL) and FEEDBACK_ENABLED"
            )
        if correction.token is None:
            if keys_enforced:
                raise InvalidInputError(
                    "send the feedback_token the prediction's answer carried: with API keys on, a request id "
                    "does not show who asked",
                    loc=("body", "feedback_token"),
                )
            if correction.request_id is None:
                raise InvalidInputError("feedback_token (or, without API keys, request_id) is needed", loc=("body",))
            return Claims(correction.request_id, correction.index, correction.model or "", "", "", ANONYMOUS, 0)
        try:
            claims = self.tokens.check(correction.token)
        except TokenError as error:
            raise InvalidInputError(str(error), loc=("body", "feedback_token")) from None
        if claims.key_id != key_id(tenant):
            raise ForbiddenError(f"this feedback token was issued to another key than {key_id(tenant)!r}")
        return claims

    async def take(self, claims: Claims, label: str, model: str, classes: list[str]) -> dict[str, Any]:
        """Store the correction of the text `claims` name, if it is the first; the stored record."""
        # claims() refused the correction otherwise
        assert self.log is not None
        if label not in classes:
            raise InvalidInputError(
                f"label {quoted(label)} is not one of model {model}'s classes: {', '.join(classes)}",
                loc=("body", "label"),
            )
        identity = claims.identity if claims.text_digest else ""
        release = await self._claim(identity) if identity else None
        record = {
            "request_id": claims.request_id,
            "index": claims.index,
            "label": label,
            "model": model,
            "version": claims.version or None,
            "key": claims.key_id,
            "text_digest": claims.text_digest or None,
        }
        if not self.log.feedback(record):
            if release is not None:
                await release()
            raise ServiceUnavailableError("the prediction log's queue is full; send the feedback again")
        return record

    async def _claim(self, identity: str) -> Callable[[], Awaitable[None]]:
        """Take the one correction of `identity` (409 if it was taken); how to give it back."""
        if self.shared is not None:
            shared = self.shared
            mark = await shared.claim(identity)  # 503 while the shared state is down
            if mark is None:
                raise ConflictError("this text was already corrected; the first correction stands")
            return partial(shared.release, identity, mark)
        assert self.ledger is not None
        ledger = self.ledger
        if not ledger.claim(identity):
            raise ConflictError("this text was already corrected; the first correction stands")

        async def release() -> None:
            ledger.release(identity)

        return release
