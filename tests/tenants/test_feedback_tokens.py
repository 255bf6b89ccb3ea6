"""Feedback tokens: bound to one text of one answer for one key, unforgeable, and short-lived."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from src.config import Settings
from src.tenants.feedback_tokens import SECRET_FILE, FeedbackTokens, TokenError, shared_secret, text_digest


def test_a_token_says_what_it_was_issued_for() -> None:
    tokens = FeedbackTokens(b"s" * 32, max_age=60)
    token = tokens.issue("r" * 32, 3, "sentiment", "v1", "a dull film", "team-b", now=1000)
    claims = tokens.check(token, now=1030)
    assert (claims.request_id, claims.index, claims.model, claims.version, claims.key_id) == (
        "r" * 32,
        3,
        "sentiment",
        "v1",
        "team-b",
    )
    assert claims.text_digest == text_digest("a dull film").hex()
    assert claims.issued == 1000
    assert len(token) < 200


def test_forged_altered_foreign_or_old_tokens_are_refused() -> None:
    tokens = FeedbackTokens(b"s" * 32, max_age=60)
    token = tokens.issue("req", 0, "sentiment", "v1", "text", "team-b", now=1000)
    payload, mac = token.split(".")
    with pytest.raises(TokenError, match="was not issued by this service"):
        FeedbackTokens(b"t" * 32, max_age=60).check(token, now=1000)  # another secret
    with pytest.raises(TokenError, match="was not issued by this service"):
        tokens.check(f"{payload[:-2]}AA.{mac}", now=1000)  # the claims altered
    with pytest.raises(TokenError, match="not a feedback token"):
        tokens.check("garbage", now=1000)
    with pytest.raises(TokenError, match="not a feedback token"):
        tokens.check("a.b.c", now=1000)
    with pytest.raises(TokenError, match="61 s old"):
        tokens.check(token, now=1061)


def test_a_short_or_damaged_secret_is_never_used(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings(feedback_secret="short")
    (tmp_path / SECRET_FILE).write_bytes(b"")  # the server's own secret file, cut short
    assert len(shared_secret(Settings(), tmp_path)) == 32  # a random one of this process instead
    (tmp_path / SECRET_FILE).write_bytes(b"k" * 32)
    assert shared_secret(Settings(), tmp_path) == b"k" * 32
