"""Reading a user's model file: skops audited, pickles only when trusted and never in this process,
MLflow directories by their MLmodel file; every refusal one line, before anything is published."""

from __future__ import annotations

import os
import pickle
import platform
from pathlib import Path

import joblib
import pytest
import sklearn
import skops.io
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from src.store.model_sources import ModelSourceError, read_model_source

TEXTS = ["good film", "great acting", "bad plot", "awful film", "lovely", "terrible"]
LABELS = ["positive", "positive", "negative", "negative", "positive", "negative"]
LIMIT = 50_000_000


def fitted() -> Pipeline:
    return Pipeline([("v", TfidfVectorizer()), ("c", LogisticRegression())]).fit(TEXTS, LABELS)


def mlflow_dir(folder: Path, model_file: str, serialization: str, sklearn_version: str = sklearn.__version__) -> Path:
    """An MLflow model directory as mlflow.sklearn.save_model writes it (without MLflow installed)."""
    folder.mkdir()
    (folder / "MLmodel").write_text(
        "artifact_path: model\n"
        "flavors:\n"
        "  python_function:\n"
        "    env:\n"
        "      virtualenv: python_env.yaml\n"
        "    loader_module: mlflow.sklearn\n"
        f"    model_path: {model_file}\n"
        "    predict_fn: predict\n"
        f"    python_version: {platform.python_version()}\n"
        "  sklearn:\n"
        "    code: null\n"
        f"    pickled_model: {model_file}\n"
        f"    serialization_format: {serialization}\n"
        f"    sklearn_version: {sklearn_version}\n"
        "mlflow_version: 2.17.2\n"
        "model_uuid: 5e2b3c1d\n"
    )
    return folder


class RunsCode:
    """A pickle that, when loaded, writes the process id it was loaded in."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (f"import os; open({str(self.marker)!r}, 'w').write(str(os.getpid()))",))


def test_a_skops_file_is_read_and_its_versions_recorded(tmp_path: Path) -> None:
    skops.io.dump(fitted(), tmp_path / "m.skops")
    source = read_model_source(tmp_path / "m.skops", trust_pickle=False, max_bytes=LIMIT)
    assert source.format == "skops"
    assert source.sklearn_version == sklearn.__version__
    assert source.pipeline.predict(["good"]) == ["positive"]


def test_a_skops_file_with_an_untrusted_type_is_refused(tmp_path: Path) -> None:
    pipeline = Pipeline([("v", TfidfVectorizer()), ("s", StandardScaler(with_mean=False)), ("c", LogisticRegression())])
    skops.io.dump(pipeline.fit(TEXTS, LABELS), tmp_path / "m.skops")
    with pytest.raises(ModelSourceError, match=r"untrusted types .*StandardScaler"):
        read_model_source(tmp_path / "m.skops", trust_pickle=False, max_bytes=LIMIT)


def test_a_pickle_is_refused_without_trust_and_never_loaded(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(RunsCode(marker)))
    with pytest.raises(ModelSourceError, match="runs any code it holds; import it with --trust-pickle"):
        read_model_source(tmp_path / "m.pkl", trust_pickle=False, max_bytes=LIMIT)
    assert not marker.exists()


def test_a_trusted_pickle_runs_in_a_child_process_not_this_one(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(RunsCode(marker)))
    with pytest.raises(ModelSourceError, match=r"holds a builtins.NoneType, not a scikit-learn Pipeline"):
        read_model_source(tmp_path / "m.pkl", trust_pickle=True, max_bytes=LIMIT)
    assert int(marker.read_text()) != os.getpid()  # the code ran, in another process: this one unpickled nothing


def test_a_trusted_joblib_file_is_loaded_through_skops(tmp_path: Path) -> None:
    joblib.dump(fitted(), tmp_path / "m.joblib", compress=3)
    source = read_model_source(tmp_path / "m.joblib", trust_pickle=True, max_bytes=LIMIT)
    assert source.format == "pickle"
    assert source.sklearn_version == sklearn.__version__
    assert source.skops_bytes.startswith(b"PK")
    assert list(source.pipeline.predict(TEXTS)) == LABELS


def test_a_pickle_that_allocates_too_much_memory_is_stopped(tmp_path: Path) -> None:
    class Hog:
        def __reduce__(self) -> tuple[object, tuple[int]]:
            return (bytearray, (8 << 30,))

    (tmp_path / "hog.pkl").write_bytes(pickle.dumps(Hog()))
    with pytest.raises(ModelSourceError, match=r"cannot load hog.pkl: unpickling failed: MemoryError"):
        read_model_source(tmp_path / "hog.pkl", trust_pickle=True, max_bytes=LIMIT)


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    skops.io.dump(fitted(), tmp_path / "m.skops")
    size = (tmp_path / "m.skops").stat().st_size
    with pytest.raises(ModelSourceError, match=f"is {size} bytes, over the limit of 1000 \\(MAX_MODEL_BYTES\\)"):
        read_model_source(tmp_path / "m.skops", trust_pickle=True, max_bytes=1000)


@pytest.mark.parametrize("serialization", ["cloudpickle", "pickle"])
def test_an_mlflow_directory_saved_with_pickle_needs_trust(tmp_path: Path, serialization: str) -> None:
    folder = mlflow_dir(tmp_path / "model", "model.pkl", serialization)
    joblib.dump(fitted(), folder / "model.pkl")
    with pytest.raises(ModelSourceError, match=r"model.pkl is a pickle"):
        read_model_source(folder, trust_pickle=False, max_bytes=LIMIT)
    source = read_model_source(folder, trust_pickle=True, max_bytes=LIMIT)
    assert source.format == f"mlflow-{serialization}"
    assert (source.sklearn_version, source.python_version) == (sklearn.__version__, platform.python_version())


def test_an_mlflow_directory_saved_with_skops_is_audited(tmp_path: Path) -> None:
    folder = mlflow_dir(tmp_path / "model", "model.skops", "skops", sklearn_version="1.5.2")
    skops.io.dump(fitted(), folder / "model.skops")
    source = read_model_source(folder, trust_pickle=False, max_bytes=LIMIT)
    assert (source.format, source.sklearn_version) == ("mlflow-skops", "1.5.2")  # as MLmodel records it


@pytest.mark.parametrize(
    ("mlmodel", "reason"),
    [
        ("flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n", "no sklearn flavour"),
        ("flavors: [\n", "not valid YAML"),
        ("flavors:\n  sklearn:\n    pickled_model: ../outside.pkl\n", "not a file inside the directory"),
        ("flavors:\n  sklearn:\n    pickled_model: model.pkl\n    serialization_format: onnx\n", "format 'onnx'"),
        ("flavors:\n  sklearn: {}\n", "does not name the model file"),
    ],
)
def test_a_broken_mlflow_directory_is_refused_with_the_reason(tmp_path: Path, mlmodel: str, reason: str) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    joblib.dump(fitted(), folder / "model.pkl")
    joblib.dump(fitted(), tmp_path / "outside.pkl")
    (folder / "MLmodel").write_text(mlmodel)
    with pytest.raises(ModelSourceError, match=reason):
        read_model_source(folder, trust_pickle=True, max_bytes=LIMIT)


def test_a_directory_without_mlmodel_and_a_missing_path_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match="without an MLmodel file"):
        read_model_source(tmp_path, trust_pickle=True, max_bytes=LIMIT)
    with pytest.raises(ModelSourceError, match="no such file"):
        read_model_source(tmp_path / "nope.skops", trust_pickle=True, max_bytes=LIMIT)
    assert list(tmp_path.iterdir()) == []
