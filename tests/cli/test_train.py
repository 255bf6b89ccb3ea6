from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.cli.train import main
from src.store.registry import ModelRegistry


def write_reviews(path: Path, rows: int = 120) -> Path:
    good = ["a wonderful film, loved it", "great acting and a moving story", "brilliant, funny and warm"]
    bad = ["a dull, boring mess", "awful plot and terrible acting", "worst film, a waste of time"]
    lines = ["review,sentiment"]
    for i in range(rows):
        lines.append(f'"{good[i % 3]} {i}",positive')
        lines.append(f'"{bad[i % 3]} {i}",negative')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_trains_on_a_users_csv_and_publishes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_reviews(tmp_path / "reviews.csv")
    store_dir = tmp_path / "store"
    args = ["--data", str(data), "--text-column", "review", "--label-column", "sentiment"]
    status = main([*args, "--model-dir", str(store_dir), "--tune", "--folds", "2"])
    out = capsys.readouterr().out
    assert status == 0
    assert "accuracy:" in out
    assert "confusion matrix" in out
    assert "cv macro-F1" in out
    stored = ModelRegistry(store_dir).store().load()
    assert stored.metadata["dataset"]["id"] == "file:reviews.csv"
    assert stored.metadata["evaluation"]["accuracy"] > 0.9
    assert stored.metadata["tuning"]["folds"] == 2
    assert f"published model sentiment version {stored.version}" in out


def test_if_missing_keeps_an_existing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_reviews(tmp_path / "reviews.csv")
    common = ["--data", str(data), "--text-column", "review", "--label-column", "sentiment", "--no-tune"]
    assert main([*common, "--model-dir", str(tmp_path / "s")]) == 0
    before = ModelRegistry(tmp_path / "s").store().versions()
    assert main([*common, "--model-dir", str(tmp_path / "s"), "--if-missing"]) == 0
    assert ModelRegistry(tmp_path / "s").store().versions() == before


def test_dry_run_publishes_nothing(tmp_path: Path) -> None:
    data = write_reviews(tmp_path / "reviews.csv")
    args = ["--data", str(data), "--text-column", "review", "--label-column", "sentiment", "--no-tune"]
    assert main([*args, "--model-dir", str(tmp_path / "s"), "--dry-run"]) == 0
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (None, [], "no such file"),
        ("text,label\n", [], "no labelled rows"),
        ("", [], "empty"),
        ("words,label\ngood,positive\nbad,negative\n", [], "no column 'text'"),
        ("text,label\ngood,positive\nfine,positive\n", [], "only one label"),
        ("text,label\ngood,positive\nbad,negative\n", ["--test-size", "1.5"], "--test-size"),
        ("text,label\ngood,positive\nbad,negative\n", [], "cannot hold out a test split"),
        ("text,label\nthe,positive\na,negative\nthe,positive\na,negative\n", ["--test-size", "0.5"], "cannot train"),
    ],
)
def test_bad_input_fails_in_one_line_and_publishes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, extra: list[str], message: str
) -> None:
    data = tmp_path / "data.csv"
    if content is not None:
        data.write_text(content, encoding="utf-8")
    status = main(["--data", str(data), "--model-dir", str(tmp_path / "s"), "--no-tune", *extra])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert message in err
    assert err.startswith("error: ")
    assert "\n" not in err
    assert not (tmp_path / "s").exists()


def test_unreadable_encoding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data.csv"
    data.write_bytes("text,label\nd\u00e9j\u00e0 vu,positive\nbad,negative\n".encode("utf-16"))
    assert main(["--data", str(data), "--model-dir", str(tmp_path / "s"), "--no-tune"]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_metadata_records_the_data_and_scores(tmp_path: Path) -> None:
    data = write_reviews(tmp_path / "reviews.jsonl.csv")
    main(["--data", str(data), "--text-column", "review", "--label-column", "sentiment", "--no-tune",
          "--model-dir", str(tmp_path / "s")])  # fmt: skip
    version = ModelRegistry(tmp_path / "s").store().current_version()
    metadata = json.loads((tmp_path / "s" / "sentiment" / str(version) / "metadata.json").read_text())
    for key in (
        "sha256",
        "sklearn_version",
        "python_version",
        "classes",
        "params",
        "dataset",
        "evaluation",
        "created_at",
    ):
        assert metadata[key], key
    assert len(metadata["dataset"]["sha256"]) == 64


def test_a_named_model_is_published_beside_the_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_reviews(tmp_path / "reviews.csv")
    common = ["--data", str(data), "--text-column", "review", "--label-column", "sentiment", "--no-tune"]
    assert main([*common, "--model-dir", str(tmp_path / "s")]) == 0
    assert main([*common, "--model-dir", str(tmp_path / "s"), "--name", "reviews"]) == 0
    registry = ModelRegistry(tmp_path / "s")
    assert registry.names() == ["reviews", "sentiment"]
    assert registry.store("reviews").current_version() is not None
    assert "published model reviews version" in capsys.readouterr().out
    # --if-missing asks about the named model only.
    assert main([*common, "--model-dir", str(tmp_path / "s"), "--name", "other", "--if-missing"]) == 0
    assert registry.names() == ["other", "reviews", "sentiment"]


@pytest.mark.parametrize("name", ["../up", ".hidden", "a/b", "x" * 65])
def test_a_bad_model_name_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--name", name, "--model-dir", str(tmp_path / "s")])
    assert exited.value.code == 2
    assert "invalid model name" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
