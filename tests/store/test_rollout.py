"""The rollout file: started only beside CURRENT and one at a time, ended once (the first writer wins)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from src.errors import ModelStoreError
from src.store import rollout as rollouts
from src.store.store import ModelStore

TEXTS = ["good film", "great acting", "bad plot", "awful film"]
LABELS = ["positive", "positive", "negative", "negative"]


@pytest.fixture
def store(tmp_path: Path) -> tuple[ModelStore, str, str]:
    store = ModelStore(tmp_path / "sentiment")
    pipeline = Pipeline([("v", TfidfVectorizer()), ("c", LogisticRegression())]).fit(TEXTS, LABELS)
    first = store.publish(pipeline, {})
    second = store.publish(pipeline, {})
    store.activate(first)
    return store, first, second


def test_a_rollout_starts_beside_current_once(store: tuple[ModelStore, str, str]) -> None:
    models, current, candidate = store
    with pytest.raises(ModelStoreError, match="is CURRENT already"):
        rollouts.start(models, current, "canary", 10)
    with pytest.raises(ModelStoreError, match="the percentage must be above 0"):
        rollouts.start(models, candidate, "canary", 0)
    with pytest.raises(ModelStoreError, match="the mode must be one of shadow, canary"):
        rollouts.start(models, candidate, "blue-green", 10)
    started = rollouts.start(models, candidate, "canary", 10)
    assert (started.baseline, started.candidate, started.state) == (current, candidate, "running")
    with pytest.raises(ModelStoreError, match="has a running rollout"):
        rollouts.start(models, candidate, "shadow", 50)
    rollouts.abort(models, "by hand")
    restarted = rollouts.start(models, candidate, "shadow", 50)  # a finished rollout is replaced
    assert restarted.id != started.id
    assert rollouts.read_rollout(models) == restarted


def test_the_first_of_many_concurrent_aborts_wins(store: tuple[ModelStore, str, str]) -> None:
    models, current, candidate = store
    started = rollouts.start(models, candidate, "canary", 50)
    reasons = [f"worker {i}" for i in range(16)]
    late: list[str] = []

    def abort(reason: str) -> None:
        try:
            rollouts.abort(models, reason, started.id)
        except ModelStoreError:  # it had ended already: the first writer's reason stands
            late.append(reason)

    threads = [threading.Thread(target=abort, args=(reason,)) for reason in reasons]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ended = rollouts.read_rollout(models)
    assert ended is not None
    assert ended.state == "aborted"
    assert ended.reason in reasons
    assert ended.reason not in late
    assert models.current_version() == current
    with pytest.raises(ModelStoreError, match="no running rollout to promote"):
        rollouts.promote(models)


def test_promote_moves_current_and_ends_the_rollout(store: tuple[ModelStore, str, str]) -> None:
    models, _, candidate = store
    started = rollouts.start(models, candidate, "canary", 5)
    promoted = rollouts.promote(models)
    assert (promoted.state, models.current_version()) == ("promoted", candidate)
    with pytest.raises(ModelStoreError, match="no running rollout to abort"):
        rollouts.abort(models, "late", started.id)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("[]", "not a JSON object"),
        ("{", "ROLLOUT is not valid JSON"),
        ('{"id": "a1", "candidate": "../x", "baseline": "v", "mode": "canary", "percent": 5}', "invalid"),
        ('{"id": "a1", "candidate": "v2", "baseline": "v1", "mode": "canary", "percent": 500}', "invalid mode"),
        (json.dumps({"id": "a1"}), "not a rollout"),
    ],
)
def test_a_damaged_rollout_file_is_refused_with_the_reason(
    store: tuple[ModelStore, str, str], content: str, reason: str
) -> None:
    models, _, _ = store
    (models.root / rollouts.ROLLOUT_FILE).write_text(content)
    with pytest.raises(Exception, match=reason):
        rollouts.read_rollout(models)


def test_a_losing_start_names_the_winner_even_while_its_marker_is_still_empty(
    store: tuple[ModelStore, str, str],
) -> None:
    """The winner creates its marker and then writes its id: a loser that reads in between waited for
    nothing and answered "rollout ?" (a flaky CI run of the concurrent-starts test)."""
    model_store, _, _ = store
    marker = model_store.root / rollouts._NEXT_MARKER.format(id="none")
    marker.touch()
    writer = threading.Timer(0.05, marker.write_bytes, args=(b"abc123",))
    writer.start()
    try:
        assert rollouts._claim_start(model_store, None, "def456") == "abc123"
    finally:
        writer.join()
