"""Model files built to hurt: zip bombs, oversized files, dangerous parameters, bad version names."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from src.engine.pipeline_checks import UnsupportedModelError, check_pipeline
from src.errors import ModelNotFoundError, ModelVerificationError
from src.store.serialization import dump_pipeline
from src.store.store import ModelStore
from tests.store.forge import write_version

TEXTS = ["good film", "great acting", "bad plot", "awful film", "lovely", "terrible"]
LABELS = ["positive", "positive", "negative", "negative", "positive", "negative"]
ROOT = Path(__file__).resolve().parents[2]


def tiny_pipeline(**vectorizer: object) -> Pipeline:
    return Pipeline([("tfidf", TfidfVectorizer(**vectorizer)), ("clf", LogisticRegression())]).fit(TEXTS, LABELS)


def zip_bomb(path: Path, inflated_bytes: int) -> bytes:
    """A zip whose schema.json inflates to `inflated_bytes` of spaces (valid JSON padding)."""
    chunk = b" " * (1 << 20)
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("schema.json", "w", force_zip64=True) as member,
    ):
        member.write(b"{")
        for _ in range(inflated_bytes // len(chunk)):
            member.write(chunk)
        member.write(b"}")
    return path.read_bytes()


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    data = zip_bomb(tmp_path / "bomb.zip", 400 << 20)
    assert len(data) < 1 << 20  # 0.4 MiB on disk, 400 MiB inflated
    write_version(tmp_path / "store", "v1", data)
    # In a fresh process, so its peak memory is this load's alone.
    script = (
        "import resource, sys\n"
        "from src.store.store import ModelStore\n"
        "from src.errors import ModelVerificationError\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    ModelStore(sys.argv[1]).load()\n"
        "except ModelVerificationError as error:\n"
        "    print(error.message)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "store")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    message, grown_mib = result.stdout.strip().splitlines()
    assert "unpacks to" in message
    assert "MAX_MODEL_BYTES" in message
    assert int(grown_mib) < 50


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    store = ModelStore(tmp_path, max_model_bytes=1_000_000)
    write_version(tmp_path, "v1", os.urandom(1_500_000))
    with pytest.raises(ModelVerificationError, match=r"1500000 bytes, over the limit of 1000000 \(MAX_MODEL_BYTES\)"):
        store.load()


def published_with(tmp_path: Path, **attributes: object) -> ModelStore:
    """A store whose CURRENT holds such a pipeline, written past publish() (which refuses it too)."""
    pipeline = tiny_pipeline()
    for name, value in attributes.items():
        setattr(pipeline.named_steps["tfidf"], name, value)
    store = ModelStore(tmp_path)
    with pytest.raises(ModelVerificationError):
        store.publish(pipeline, {})
    write_version(tmp_path, "v1", dump_pipeline(pipeline))
    return store


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({"input": "filename"}, "input must be 'content'"),
        ({"input": "file"}, "input must be 'content'"),
        ({"ngram_range": (1, 9)}, r"ngram_range must be within \(1, 5\)"),
        ({"token_pattern": r"(?u)\b(\w+)+\b$"}, "can backtrack without bound"),
        ({"token_pattern": r"(a|aa)+$"}, "can backtrack without bound"),
        ({"token_pattern": r"(\w)(\w)"}, "more than one capturing group"),
        ({"token_pattern": r"(unclosed"}, "does not compile"),
        ({"encoding": "utf-16"}, "encoding must be utf-8"),
    ],
)
def test_dangerous_parameters_are_refused_like_untrusted_types(
    tmp_path: Path, attributes: dict[str, object], reason: str
) -> None:
    store = published_with(tmp_path, **attributes)
    started = time.perf_counter()
    with pytest.raises(ModelVerificationError, match=reason):
        store.load()
    assert time.perf_counter() - started < 3.0


def test_a_file_named_as_text_is_never_read(tmp_path: Path) -> None:
    """The reproduction: with input='filename', a text naming a file made the service read it."""
    secret = tmp_path / "secret.txt"
    secret.write_text("awful awful awful")
    pipeline = tiny_pipeline()
    pipeline.named_steps["tfidf"].input = "filename"
    assert pipeline.predict_proba([str(secret)])[0][0] > 0.5  # it read the file: why this must be refused
    with pytest.raises(UnsupportedModelError, match="input must be 'content'"):
        check_pipeline(pipeline)


def test_the_default_kinds_of_model_pass(tmp_path: Path) -> None:
    for options in ({}, {"analyzer": "char_wb", "ngram_range": (2, 4)}, {"ngram_range": (1, 3)}):
        store = ModelStore(tmp_path / str(len(options)))
        store.publish(tiny_pipeline(**options), {})
        assert store.load().pipeline.predict(["good"]) == ["positive"]


@pytest.mark.parametrize("name", ["../elsewhere", "/etc", ".hidden", "a/b", "", "x" * 200, "v1\n"])
def test_activate_refuses_names_that_are_not_versions(tmp_path: Path, name: str) -> None:
    store = ModelStore(tmp_path)
    version = store.publish(tiny_pipeline(), {})
    with pytest.raises(ModelNotFoundError, match="invalid model version name"):
        store.activate(name)
    assert store.current_version() == version


def test_prune_keeps_the_newest_and_current_and_removes_stale_temporaries(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    versions = [store.publish(tiny_pipeline(), {}, version=f"2026010{i}T000000Z-aaaaaa") for i in range(1, 7)]
    store.activate(versions[0])  # rolled back to the oldest
    stale = tmp_path / ".tmp-crashed"
    stale.mkdir()
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh = tmp_path / ".tmp-publishing-now"
    fresh.mkdir()
    removed = store.prune(keep=2)
    assert removed == versions[1:4]
    assert store.versions() == [versions[0], *versions[4:]]
    assert store.current_version() == versions[0]
    assert not stale.exists()
    assert fresh.exists()
    with pytest.raises(ValueError, match="at least one"):
        store.prune(keep=0)


def test_publish_with_keep_prunes(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    for i in range(4):
        store.publish(tiny_pipeline(), {}, keep=2, version=f"2026010{i}T000000Z-bbbbbb")
    assert store.versions() == ["20260102T000000Z-bbbbbb", "20260103T000000Z-bbbbbb"]
