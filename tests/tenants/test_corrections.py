"""One correction per text across the processes of a server; expired claims are swept."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from src.tenants import corrections
from src.tenants.corrections import CorrectionLedger


def test_the_first_claim_wins_in_every_process(tmp_path: Path) -> None:
    path = tmp_path / "corrections.sqlite"
    first, second = CorrectionLedger(path, max_age=60), CorrectionLedger(path, max_age=60)
    assert first.claim("text-1")
    assert not second.claim("text-1")
    assert second.claim("text-2")
    second.release("text-2")  # its correction could not be stored: it may come again
    assert first.claim("text-2")
    first.close()
    second.close()


def test_expired_claims_are_swept(monkeypatch: object) -> None:
    ledger = CorrectionLedger(None, max_age=10)
    assert ledger.claim("old", now=0)
    for number in range(corrections.PRUNE_EVERY):
        ledger.claim(f"new-{number}", now=100)
    assert ledger.db.execute("SELECT count(*) FROM taken WHERE identity = 'old'").fetchone() == (0,)


def test_a_damaged_database_is_logged_and_corrections_are_still_taken(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "corrections.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.ERROR, logger="src.tenants.corrections"):
        ledger = CorrectionLedger(path, max_age=60)
        assert ledger.claim("text-1")
        assert not ledger.claim("text-1")
    assert "cannot be used" in caplog.text
