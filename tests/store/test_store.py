from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from src.errors import ModelNotFoundError, ModelVerificationError
from src.store import store as store_module
from src.store.serialization import dump_pipeline
from src.store.store import CURRENT_FILE, METADATA_FILE, MODEL_FILE, ModelStore
from tests.store.forge import write_version

TEXTS = ["good film", "great acting", "bad plot", "awful film", "lovely", "terrible"]
LABELS = ["positive", "positive", "negative", "negative", "positive", "negative"]


def tiny_pipeline() -> Pipeline:
    return Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())]).fit(TEXTS, LABELS)


def test_publish_then_load_round_trips(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    pipeline = tiny_pipeline()
    version = store.publish(pipeline, {"classes": ["negative", "positive"]})
    assert store.current_version() == version
    assert store.versions() == [version]
    loaded = store.load()
    assert loaded.version == version
    assert loaded.metadata["sklearn_version"] == sklearn.__version__
    assert loaded.metadata["classes"] == ["negative", "positive"]
    assert loaded.pipeline.named_steps["tfidf"].vocabulary_ == pipeline.named_steps["tfidf"].vocabulary_
    assert (loaded.pipeline.predict_proba(TEXTS) == pipeline.predict_proba(TEXTS)).all()
    # Publishing must not change the caller's pipeline (the vocabulary is stored compactly).
    assert isinstance(pipeline.named_steps["tfidf"].vocabulary_, dict)
    assert not hasattr(pipeline.named_steps["tfidf"], "vocabulary_terms_")


def test_new_version_becomes_current_and_old_stays_loadable(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    first = store.publish(tiny_pipeline(), {})
    second = store.publish(tiny_pipeline(), {})
    assert store.current_version() == second
    assert store.load(first).version == first
    store.activate(first)
    assert store.load().version == first


def test_empty_store_says_so(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no version published yet"):
        ModelStore(tmp_path / "absent").load()
    assert ModelStore(tmp_path / "absent").versions() == []


def test_unknown_or_malicious_version_names_are_refused(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    store.publish(tiny_pipeline(), {})
    for name in ("nope", "../etc", ".tmp-x"):
        with pytest.raises(ModelNotFoundError):
            store.load(name)


def _published(tmp_path: Path) -> tuple[ModelStore, str]:
    store = ModelStore(tmp_path)
    return store, store.publish(tiny_pipeline(), {})


def test_corrupted_model_file_is_refused(tmp_path: Path) -> None:
    store, version = _published(tmp_path)
    path = tmp_path / version / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelVerificationError, match="does not match the sha256"):
        store.load()


def test_wrong_sha256_is_refused(tmp_path: Path) -> None:
    store, version = _published(tmp_path)
    meta_path = tmp_path / version / METADATA_FILE
    metadata = json.loads(meta_path.read_text())
    metadata["sha256"] = "0" * 64
    meta_path.write_text(json.dumps(metadata))
    with pytest.raises(ModelVerificationError, match="sha256"):
        store.load()


def test_garbage_with_matching_hash_is_refused(tmp_path: Path) -> None:
    store, version = _published(tmp_path)
    (tmp_path / version / MODEL_FILE).write_bytes(b"not a zip file")
    meta_path = tmp_path / version / METADATA_FILE
    metadata = json.loads(meta_path.read_text())
    metadata["sha256"] = hashlib.sha256(b"not a zip file").hexdigest()
    meta_path.write_text(json.dumps(metadata))
    with pytest.raises(ModelVerificationError, match="not a skops file"):
        store.load()


def test_unreadable_metadata_is_refused(tmp_path: Path) -> None:
    store, version = _published(tmp_path)
    (tmp_path / version / METADATA_FILE).write_text("{truncated")
    with pytest.raises(ModelVerificationError, match=r"metadata\.json is not valid JSON"):
        store.load()


def test_other_sklearn_minor_version_is_refused_with_advice(tmp_path: Path) -> None:
    store, version = _published(tmp_path)
    meta_path = tmp_path / version / METADATA_FILE
    metadata = json.loads(meta_path.read_text())
    metadata["sklearn_version"] = "1.2.2"
    meta_path.write_text(json.dumps(metadata))
    with pytest.raises(ModelVerificationError, match=r"scikit-learn 1\.2\.2 .* retrain"):
        store.load()


def test_untrusted_type_is_refused_before_loading(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    pipeline = Pipeline(
        [("tfidf", TfidfVectorizer()), ("scale", StandardScaler(with_mean=False)), ("clf", LogisticRegression())]
    ).fit(TEXTS, LABELS)
    with pytest.raises(ModelVerificationError, match=r"untrusted types .*StandardScaler"):
        store.publish(pipeline, {})  # refused before anything is written
    assert store.current_version() is None
    write_version(tmp_path, "v1", dump_pipeline(pipeline))  # a file put there by other means
    with pytest.raises(ModelVerificationError, match=r"untrusted types .*StandardScaler"):
        store.load()


class Crash(BaseException):
    """Stands for the process dying mid-publish."""


@pytest.mark.parametrize("crash_point", ["dump", "metadata", "rename", "current"])
def test_interrupted_publish_leaves_the_old_model_active(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_point: str
) -> None:
    store, old = _published(tmp_path)
    original_write = store_module._write_durably

    def crash(*args: object, **kwargs: object) -> None:
        raise Crash

    if crash_point == "dump":
        monkeypatch.setattr(store_module, "dump_pipeline", crash)
    elif crash_point == "metadata":
        monkeypatch.setattr(
            store_module,
            "_write_durably",
            lambda path, data: crash() if path.name == METADATA_FILE else original_write(path, data),
        )
    elif crash_point == "rename":
        monkeypatch.setattr(Path, "rename", crash)
    else:
        monkeypatch.setattr("src.store.store.os.replace", crash)
    with pytest.raises(Crash):
        store.publish(tiny_pipeline(), {})
    monkeypatch.undo()
    assert store.current_version() == old
    assert store.load().version == old
    assert (tmp_path / CURRENT_FILE).read_text().strip() == old
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-") and p.is_dir()]


def test_racing_publishes_leave_a_consistent_store(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    pipelines = [tiny_pipeline() for _ in range(6)]
    published: list[str] = []
    threads = [threading.Thread(target=lambda p=p: published.append(store.publish(p, {}))) for p in pipelines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(published) == store.versions()
    assert store.current_version() in published
    assert store.load().version == store.current_version()
