"""A store written by someone who should not be trusted: links out of it, odd pointers, deep metadata.

Writing to the model volume is needed for each of these; the service must still not read files
outside the store, repeat what it found there, or fail with a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from src.api.main import create_app
from src.cli import models as cli
from src.errors import ModelStoreError, ModelVerificationError
from src.store.registry import ModelRegistry
from src.store.store import CURRENT_FILE, METADATA_FILE, ModelStore
from tests.conftest import make_settings
from tests.store.test_store import LABELS, TEXTS, tiny_pipeline


def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "hostname"
    secret.parent.mkdir()
    secret.write_text("secret-host-name\n")
    return secret


def test_a_current_that_is_a_symbolic_link_is_refused_and_never_quoted(tmp_path: Path) -> None:
    store = ModelRegistry(tmp_path / "models").store()
    store.publish(tiny_pipeline(), {})
    (store.root / CURRENT_FILE).unlink()
    (store.root / CURRENT_FILE).symlink_to(_secret(tmp_path))
    with pytest.raises(ModelStoreError, match="symbolic link") as raised:
        store.current_version()
    assert "secret-host-name" not in raised.value.message


def test_current_holding_anything_but_a_version_name_is_not_repeated(tmp_path: Path) -> None:
    store = ModelRegistry(tmp_path).store()
    store.publish(tiny_pipeline(), {})
    (store.root / CURRENT_FILE).write_text("../../etc/hostname")
    with pytest.raises(ModelStoreError, match="does not hold a version name") as raised:
        store.current_version()
    assert "etc" not in raised.value.message


def test_health_shows_neither_paths_nor_what_a_linked_current_points_at(tmp_path: Path) -> None:
    root = tmp_path / "models"
    store = ModelRegistry(root).store()
    store.publish(tiny_pipeline(), {})
    (store.root / CURRENT_FILE).unlink()
    (store.root / CURRENT_FILE).symlink_to(_secret(tmp_path))
    with TestClient(create_app(make_settings(root))) as client:
        for path in ("/health", "/health/ready", "/v2/health/ready"):
            text = client.get(path).text
            assert "secret-host-name" not in text
            assert str(tmp_path) not in text
        assert client.get("/health").json()["models"]["sentiment"]["reason"]


def test_a_version_folder_linked_out_of_the_store_is_not_served(tmp_path: Path) -> None:
    elsewhere = ModelStore(tmp_path / "elsewhere")
    version = elsewhere.publish(tiny_pipeline(), {})
    store = ModelRegistry(tmp_path / "models").store()
    store.root.mkdir(parents=True)
    (store.root / version).symlink_to(elsewhere.root / version)
    (store.root / CURRENT_FILE).write_text(version)
    with pytest.raises(ModelVerificationError, match="leads out of the model store"):
        store.load()


def test_deeply_nested_metadata_is_refused_and_listed_as_unreadable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ModelRegistry(tmp_path).store()
    version = store.publish(tiny_pipeline(), {})
    (store.root / version / METADATA_FILE).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelVerificationError, match="nested over 64 levels deep"):
        store.read_metadata(version)
    assert cli.main(["--model-dir", str(tmp_path), "list"]) == 0
    assert "unreadable" in capsys.readouterr().out


def test_publish_refuses_what_every_server_would_refuse_before_current_moves(tmp_path: Path) -> None:
    store = ModelStore(tmp_path, max_model_bytes=1_000_000)
    first = store.publish(tiny_pipeline(), {})
    big = Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())])
    big.fit([" ".join(f"w{i}x{j}" for j in range(200)) for i in range(3000)] + TEXTS, ["a"] * 3000 + LABELS)
    with pytest.raises(ModelVerificationError, match="MAX_MODEL_BYTES"):
        store.publish(big, {})
    untrusted = Pipeline([("scale", FunctionTransformer(str.lower)), ("clf", LogisticRegression())])
    with pytest.raises(ModelVerificationError):
        store.publish(untrusted, {})
    assert store.current_version() == first
    assert store.versions() == [first]
    assert not any(entry.name.startswith(".") for entry in tmp_path.iterdir() if entry.name != CURRENT_FILE)
    assert json.loads((tmp_path / first / METADATA_FILE).read_text())["version"] == first
