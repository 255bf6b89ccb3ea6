"""`import` through the command line: what it publishes, and each refusal with a one-line error, a
non-zero exit and nothing published."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
import sklearn
import skops.io
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, StandardScaler
from sklearn.svm import LinearSVC

from src.cli.models import main
from src.model.datasets import Dataset
from src.store.store import ModelStore
from tests.e2e.servers import ROOT

OTHER_SKLEARN = "1.5.2"


@pytest.fixture(scope="module")
def data(bundled: Dataset) -> tuple[Dataset, Dataset]:
    return bundled.sample(3000, random_state=8).split(0.3, random_state=8)


@pytest.fixture(scope="module")
def good(data: tuple[Dataset, Dataset]) -> Pipeline:
    train, _ = data
    return Pipeline([("v", TfidfVectorizer(ngram_range=(1, 2), min_df=2)), ("c", LinearSVC())]).fit(
        train.texts, train.labels
    )


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    status = main(["--model-dir", str(tmp_path / "store"), "import", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out, err


def published(tmp_path: Path, name: str = "mine") -> list[str]:
    return ModelStore(tmp_path / "store" / name).versions()


def as_if_made_with(data: bytes, version: str) -> bytes:
    """A skops file whose estimators record another scikit-learn version, as an older install writes it."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename == "schema.json":
                content = content.replace(
                    json.dumps(json.dumps(sklearn.__version__)).encode(), json.dumps(json.dumps(version)).encode()
                )
            target.writestr(item, content)
    return out.getvalue()


def test_an_imported_skops_model_is_published_with_its_provenance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], good: Pipeline
) -> None:
    skops.io.dump(good, tmp_path / "svc.skops")
    status, out, err = run(tmp_path, capsys, "mine", tmp_path / "svc.skops")
    assert status == 0, err
    version = out.strip()
    assert published(tmp_path) == [version]
    metadata = ModelStore(tmp_path / "store" / "mine").read_metadata(version)
    assert metadata["imported_from"]["sha256"] == hashlib.sha256((tmp_path / "svc.skops").read_bytes()).hexdigest()
    assert metadata["imported_from"]["sklearn_version"] == sklearn.__version__
    assert {"sklearn_version", "python_version", "numpy_version", "scipy_version", "sha256"} <= set(metadata)
    assert metadata["parity"]["passed"]
    assert metadata["parity"]["texts"] >= 500
    assert (metadata["engine"], metadata["output"]) == ("compiled", "scores")
    assert re.search(r"engine compiled, scores reproduced on 6[0-9]{2} texts", err)


def test_a_pickle_without_trust_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], good: Pipeline) -> None:
    joblib.dump(good, tmp_path / "svc.joblib")
    status, out, err = run(tmp_path, capsys, "mine", tmp_path / "svc.joblib")
    assert (status, out) == (2, "")
    assert err.count("\n") == 1
    assert "--trust-pickle" in err
    assert "nothing published" in err
    assert published(tmp_path) == []


def test_an_untrusted_type_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: tuple[Dataset, Dataset]
) -> None:
    train, _ = data
    pipeline = Pipeline([("v", TfidfVectorizer()), ("s", StandardScaler(with_mean=False)), ("c", LogisticRegression())])
    joblib.dump(pipeline.fit(train.texts, train.labels), tmp_path / "scaled.joblib")
    status, _, err = run(tmp_path, capsys, "mine", tmp_path / "scaled.joblib", "--trust-pickle")
    assert status == 2
    assert "untrusted types sklearn.preprocessing._data.StandardScaler" in err
    assert err.count("\n") == 1
    assert published(tmp_path) == []


def test_another_scikit_learn_version_is_refused_without_recorded_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], good: Pipeline
) -> None:
    (tmp_path / "old.skops").write_bytes(as_if_made_with(skops.io.dumps(good), OTHER_SKLEARN))
    status, _, err = run(tmp_path, capsys, "mine", tmp_path / "old.skops")
    assert status == 2
    assert f"made with scikit-learn {OTHER_SKLEARN} but this server runs {sklearn.__version__}" in err
    assert err.count("\n") == 1
    assert published(tmp_path) == []


def test_another_version_is_accepted_when_its_recorded_outputs_are_reproduced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], good: Pipeline, data: tuple[Dataset, Dataset]
) -> None:
    _, test = data
    (tmp_path / "old.skops").write_bytes(as_if_made_with(skops.io.dumps(good), OTHER_SKLEARN))
    texts = test.texts[:300]
    scores = good.decision_function(texts)  # what the model gave "where it was made"
    sample = write_csv(
        tmp_path / "sample.csv",
        [{"text": t, "expected_positive": repr(float(s))} for t, s in zip(texts, scores, strict=True)],
    )
    wrong = write_csv(
        tmp_path / "wrong.csv",
        [{"text": t, "expected_positive": repr(float(s) + 1e-6)} for t, s in zip(texts, scores, strict=True)],
    )
    status, _, err = run(tmp_path, capsys, "mine", tmp_path / "old.skops", "--sample", wrong)
    assert status == 2
    assert "differ by up to 1e-06" in err
    assert published(tmp_path) == []
    status, out, err = run(tmp_path, capsys, "mine", tmp_path / "old.skops", "--sample", sample)
    assert status == 0, err
    metadata = ModelStore(tmp_path / "store" / "mine").read_metadata(out.strip())
    recorded = metadata["recorded_outputs_parity"]
    assert recorded["made_with"] == OTHER_SKLEARN
    assert recorded["max_abs_difference"] <= 1e-9
    assert metadata["parity"]["sample"] == "sample.csv (300 texts)"


def test_a_pipeline_that_expects_numbers_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    numbers = Pipeline([("scale", MaxAbsScaler()), ("c", LogisticRegression())]).fit([[0.0], [1.0], [3.0]], [0, 1, 1])
    skops.io.dump(numbers, tmp_path / "numbers.skops")
    status, _, err = run(tmp_path, capsys, "mine", tmp_path / "numbers.skops")
    assert status == 2
    assert "expects numbers rather than texts" in err
    assert published(tmp_path) == []


def test_a_pipeline_whose_predict_raises_on_some_texts_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: tuple[Dataset, Dataset]
) -> None:
    """Signed hashing under sublinear tf: log of a negative count is NaN, and predict raises on that text."""
    train, _ = data
    pipeline = Pipeline(
        [("v", HashingVectorizer(norm=None)), ("t", TfidfTransformer(sublinear_tf=True)), ("c", SGDClassifier())]
    )
    pipeline.set_params(v__alternate_sign=False).fit(train.texts, train.labels)
    pipeline.set_params(v__alternate_sign=True)
    with pytest.raises(ValueError, match="NaN"), np.errstate(invalid="ignore"):
        pipeline.predict(train.texts[:50])
    skops.io.dump(pipeline, tmp_path / "nan.skops")
    status, _, err = run(tmp_path, capsys, "mine", tmp_path / "nan.skops")
    assert status == 2
    assert "the model's predict raised ValueError on sample text" in err
    assert err.count("\n") == 1
    assert published(tmp_path) == []


def test_a_file_over_max_model_bytes_is_refused_by_the_command(tmp_path: Path, data: tuple[Dataset, Dataset]) -> None:
    train, _ = data
    big = Pipeline([("v", TfidfVectorizer(analyzer="char", ngram_range=(1, 5))), ("c", LinearSVC())])
    skops.io.dump(big.fit(train.texts, train.labels), tmp_path / "svc.skops")
    assert (tmp_path / "svc.skops").stat().st_size > 1_000_000
    result = subprocess.run(
        [sys.executable, "-m", "src.model.store_cli", "import", "mine", str(tmp_path / "svc.skops")],
        cwd=ROOT,
        env={**os.environ, "MODEL_DIR": str(tmp_path / "store"), "MAX_MODEL_BYTES": "1000000"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: svc.skops is ")
    assert "over the limit of 1000000 (MAX_MODEL_BYTES)" in result.stderr
    assert result.stderr.count("\n") == 1
    assert published(tmp_path) == []


def test_the_gate_compares_an_import_with_current(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], good: Pipeline, data: tuple[Dataset, Dataset]
) -> None:
    train, test = data
    test_csv = write_csv(
        tmp_path / "test.csv", [{"text": t, "label": label} for t, label in zip(test.texts, test.labels, strict=True)]
    )
    skops.io.dump(good, tmp_path / "good.skops")
    status, out, err = run(tmp_path, capsys, "mine", tmp_path / "good.skops", "--test", test_csv)
    assert status == 0, err
    first = ModelStore(tmp_path / "store" / "mine").read_metadata(out.strip())
    assert first["evaluation"]["accuracy"] > 0.7
    assert first["behaviour"]["pass_rate"] > 0.5
    shuffled = list(np.random.default_rng(0).permutation(train.labels))
    worse = Pipeline([("v", TfidfVectorizer()), ("c", LogisticRegression())]).fit(train.texts, shuffled)
    skops.io.dump(worse, tmp_path / "worse.skops")
    status, _, err = run(tmp_path, capsys, "mine", tmp_path / "worse.skops", "--test", test_csv)
    assert status == 3
    assert "refused by the quality gate, nothing published: macro-F1" in err  # as training says it
    assert len(published(tmp_path)) == 1
    status, out, _ = run(tmp_path, capsys, "mine", tmp_path / "worse.skops", "--test", test_csv, "--force")
    assert status == 0
    forced = ModelStore(tmp_path / "store" / "mine").read_metadata(out.strip())
    assert forced["quality_gate"]["forced"] is True
