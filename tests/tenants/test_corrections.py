"""One correction per text across the processes of a server; expired claims are swept."""

from __future__ import annotations

from pathlib import Path

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
