"""State files are data, not trust (issue #27, findings 1, 11 and 12): metadata is read back before
CURRENT moves; a ROLLOUT that cannot be read is reported and cleared, never a traceback; prune
keeps what a rollout needs; a lost race says who won and exits non-zero."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from src.cli.models import main
from src.errors import ModelStoreError, ModelVerificationError
from src.store import rollout as rollouts
from src.store.registry import ModelRegistry
from src.store.store import MAX_METADATA_BYTES, ModelStore, OutputLimits
from tests.e2e.servers import ROOT

TEXTS = ["good film", "great acting", "bad plot", "awful film"]
LABELS = ["positive", "positive", "negative", "negative"]


def pipeline() -> Pipeline:
    return Pipeline([("v", TfidfVectorizer()), ("c", LogisticRegression())]).fit(TEXTS, LABELS)


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def versions(tmp_path: Path) -> tuple[ModelStore, list[str]]:
    """A model with six versions, the first CURRENT."""
    store = ModelRegistry(tmp_path).store("sentiment")
    published = [store.publish(pipeline(), {}) for _ in range(6)]
    store.activate(published[0])
    return store, published


def test_metadata_servers_would_refuse_is_never_published(tmp_path: Path) -> None:
    """Finding 1: a refused import had already written a 34.7 MB metadata.json and switched CURRENT."""
    store = ModelStore(tmp_path / "mine")
    current = store.publish(pipeline(), {})
    before = snapshot(tmp_path)
    with pytest.raises(ModelVerificationError, match=f"over {MAX_METADATA_BYTES}"):
        store.publish(pipeline(), {"imported_from": {"python_version": "lol " * MAX_METADATA_BYTES}})
    assert snapshot(tmp_path) == before
    assert store.current_version() == current


def test_publish_and_load_refuse_models_over_the_output_limits(tmp_path: Path) -> None:
    """Finding 7: a cap on classes and on the bytes of a full batch's answer, at publish and at load."""
    store = ModelStore(tmp_path / "mine", output=OutputLimits(max_classes=2, max_response_bytes=1_000_000))
    version = store.publish(pipeline(), {})
    three = Pipeline([("v", TfidfVectorizer()), ("c", LogisticRegression())]).fit(TEXTS[:3], ["a", "b", "c"])
    with pytest.raises(ModelVerificationError, match=r"3 classes, over the limit of 2 \(MAX_CLASSES\)"):
        store.publish(three, {})
    strict = ModelStore(tmp_path / "mine", output=OutputLimits(max_response_bytes=10_000, max_batch_size=256))
    with pytest.raises(ModelVerificationError, match="MAX_RESPONSE_BYTES"):
        strict.load(version)
    assert store.current_version() == version


@pytest.mark.parametrize(
    "content",
    [b"\x00garbage\xff", b'{"id": "abc", "candidate": ', b"{" + b" " * 20_000 + b"}", None],
    ids=["garbage", "truncated", "over 16 KB", "a link"],
)
def test_an_unreadable_rollout_is_reported_by_status_and_cleared_by_abort(
    versions: tuple[ModelStore, list[str]], content: bytes | None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 11: status, abort and start all refused a corrupt ROLLOUT; only deleting it by hand helped."""
    store, published = versions
    rollouts.start(store, published[1], "canary", 10)
    path = store.root / rollouts.ROLLOUT_FILE
    path.unlink()
    if content is None:
        (store.root.parent / "elsewhere").write_text('{"id": "x"}')
        path.symlink_to(store.root.parent / "elsewhere")
    else:
        path.write_bytes(content)
    root = ["--model-dir", str(store.root.parent)]
    assert main([*root, "rollout", "status", "sentiment"]) == 2
    err = capsys.readouterr().err
    assert "every server answers with CURRENT alone" in err
    assert "rollout abort sentiment" in err
    assert main([*root, "rollout", "abort", "sentiment"]) == 0
    assert "cleared it" in capsys.readouterr().out
    assert not path.is_symlink()
    assert not path.exists()
    if content is None:
        assert (store.root.parent / "elsewhere").exists()  # the link's target is left alone
    assert rollouts.read_rollout(store) is None
    assert rollouts.start(store, published[1], "shadow", 50).running  # a new rollout can start


def test_prune_keeps_a_running_rollouts_versions(versions: tuple[ModelStore, list[str]]) -> None:
    """Finding 12: `train` and `import` prune with keep 5, which deleted a running rollout's candidate."""
    store, published = versions
    store.activate(published[-1])
    rollouts.start(store, published[0], "canary", 10)  # the oldest version, as candidate
    removed = store.prune(2)
    assert published[0] not in removed
    assert published[0] in store.versions()
    assert rollouts.promote(store).candidate == published[0]


def test_prune_removes_nothing_while_the_rollout_cannot_be_read(versions: tuple[ModelStore, list[str]]) -> None:
    store, published = versions
    (store.root / rollouts.ROLLOUT_FILE).write_bytes(b"not json")
    assert store.prune(1) == []
    assert store.versions() == published


def test_of_two_concurrent_starts_one_wins_and_the_other_says_so(versions: tuple[ModelStore, list[str]]) -> None:
    """Finding 12: two concurrent `rollout start`s both exited 0 with different ids, one lost."""
    store, published = versions
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def start(index: int) -> None:
        barrier.wait()
        try:
            outcomes.append(f"won {rollouts.start(store, published[1 + index % 3], 'canary', 10).id}")
        except ModelStoreError as error:
            outcomes.append(error.message)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [outcome for outcome in outcomes if outcome.startswith("won ")]
    assert len(winners) == 1
    current = rollouts.read_rollout(store)
    assert current is not None
    assert winners == [f"won {current.id}"]
    for outcome in outcomes:
        if outcome not in winners:
            assert f"rollout {current.id}" in outcome or "has a running rollout" in outcome


def test_an_abort_that_loses_to_promote_exits_non_zero(versions: tuple[ModelStore, list[str]]) -> None:
    """Finding 12: an `abort` that lost to `promote` exited 0, as if the candidate had been stopped."""
    store, published = versions
    started = rollouts.start(store, published[1], "canary", 10)
    assert rollouts._claim(store, started)  # promote's claim, just before ours
    root = str(store.root.parent)
    result = subprocess.run(
        [sys.executable, "-m", "src.model.store_cli", "--model-dir", root, "rollout", "abort", "sentiment"],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"rollout {started.id} was ended first by another command" in result.stderr
    assert result.stderr.count("\n") == 1
