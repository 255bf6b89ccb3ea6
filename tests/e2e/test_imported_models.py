"""The done-when matrix: every supported pipeline type, built in plain scikit-learn, saved as skops, as
joblib and as an MLflow directory, imported with the command line, served by the production server,
and answering 1,000 texts over HTTP as scikit-learn does: to 1e-9 over JSON, to FP32 over V2."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import joblib
import numpy as np
import pytest
import sklearn
import skops.io
from sklearn.pipeline import Pipeline

from src.cli.models import main as store_cli
from src.engine.parity import builtin_texts
from src.model.datasets import Dataset
from tests.e2e.servers import Server, free_port, production_command, production_env, request, running_server
from tests.engine.pipelines import SUPPORTED
from tests.engine.test_model_types import labels_for

pytestmark = pytest.mark.e2e
FORMATS = ("skops", "joblib", "mlflow")


def save(pipeline: Pipeline, fmt: str, folder: Path, mlflow_format: str) -> Path:
    """The file (or directory) a user would have after saving the fitted pipeline this way."""
    if fmt == "skops":
        skops.io.dump(pipeline, folder / "model.skops")
        return folder / "model.skops"
    if fmt == "joblib":
        joblib.dump(pipeline, folder / "model.joblib")
        return folder / "model.joblib"
    directory = folder / "mlflow-model"
    directory.mkdir()
    model_file = "model.skops" if mlflow_format == "skops" else "model.pkl"
    if mlflow_format == "skops":
        skops.io.dump(pipeline, directory / model_file)
    else:
        joblib.dump(pipeline, directory / model_file)
    (directory / "MLmodel").write_text(
        "flavors:\n"
        "  python_function:\n"
        "    loader_module: mlflow.sklearn\n"
        f"    model_path: {model_file}\n"
        f"    python_version: {platform.python_version()}\n"
        "  sklearn:\n"
        f"    pickled_model: {model_file}\n"
        f"    serialization_format: {mlflow_format}\n"
        f"    sklearn_version: {sklearn.__version__}\n"
    )
    return directory


@pytest.fixture(scope="module")
def texts(bundled: Dataset) -> list[str]:
    return bundled.sample(500, random_state=99).texts + builtin_texts(500, seed=7)


@pytest.fixture(scope="module")
def imported(bundled: Dataset, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Pipeline]]:
    """Each type trained once, saved three ways and imported with the command line: model name -> pipeline."""
    root = tmp_path_factory.mktemp("imported")
    train = bundled.sample(2000, random_state=12)
    models: dict[str, Pipeline] = {}
    imports: list[tuple[str, Path, list[str]]] = []
    for k, (kind, (make, three)) in enumerate(sorted(SUPPORTED.items())):
        pipeline = make().fit(train.texts, labels_for(train, three))
        for fmt in FORMATS:
            folder = root / "saved" / f"{kind}-{fmt}"
            folder.mkdir(parents=True)
            path = save(pipeline, fmt, folder, "skops" if k % 2 else "cloudpickle")
            name = f"{kind}-{fmt}"
            imports.append((name, path, [] if fmt == "skops" else ["--trust-pickle"]))
            models[name] = pipeline

    def run(name: str, path: Path, trust: list[str]) -> int:
        return store_cli(["--model-dir", str(root / "store"), "import", name, str(path), *trust])

    # Two at a time: a pickle is read in a child process, so the second import runs while one waits.
    with ThreadPoolExecutor(2) as pool:
        statuses = dict(zip([name for name, _, _ in imports], pool.map(lambda job: run(*job), imports), strict=True))
    assert all(status == 0 for status in statuses.values()), statuses
    return root / "store", models


@pytest.fixture(scope="module")
def server(imported: tuple[Path, dict[str, Pipeline]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    store, models = imported
    tmp_path = tmp_path_factory.mktemp("imported-server")
    port = free_port()
    env = production_env(
        store,
        port,
        tmp_path,
        WORKERS="1",
        MAX_MODELS=str(len(models)),
        MAX_BATCH_SIZE="1000",
        MAX_BODY_BYTES="10000000",
        DEFAULT_MODEL_NAME=next(iter(models)),
        REQUIRED_MODELS=",".join(models),
    )
    with running_server(production_command(), port, env, tmp_path, ready_path="/health/ready", timeout=180) as running:
        yield running


def expected_outputs(pipeline: Pipeline, texts: list[str]) -> tuple[str, np.ndarray]:
    if hasattr(pipeline, "predict_proba"):
        return "probabilities", np.asarray(pipeline.predict_proba(texts))
    return "scores", np.asarray(pipeline.decision_function(texts)).reshape(len(texts), -1)


def test_every_type_and_format_is_imported_compiled(server: Server, imported: tuple[Path, dict[str, Pipeline]]) -> None:
    _, models = imported
    listed = {model["name"]: model for model in request(server.url("/models")).json()}
    assert set(models) <= set(listed)
    assert {listed[name]["engine"] for name in models} == {"compiled"}
    assert all(listed[name]["ready"] for name in models)


@pytest.mark.parametrize("kind", sorted(SUPPORTED))
def test_json_and_v2_answers_equal_scikit_learn(
    server: Server, imported: tuple[Path, dict[str, Pipeline]], texts: list[str], kind: str
) -> None:
    _, models = imported
    pipeline = models[f"{kind}-skops"]
    output, expected = expected_outputs(pipeline, texts)
    labels = [str(label) for label in pipeline.predict(texts)]
    for fmt in FORMATS:
        name = f"{kind}-{fmt}"
        reply = request(server.url(f"/models/{name}/predict/batch"), body={"texts": texts}, timeout=60)
        assert reply.status == 200, reply.body[:300]
        predictions = reply.json()["predictions"]
        assert [p["label"] for p in predictions] == labels, name
        assert all(set(p) == {"label", output} for p in predictions), name
        served = np.array([list(p[output].values()) for p in predictions])
        assert np.abs(served - expected).max() <= 1e-9, name

        body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]}
        reply = request(server.url(f"/v2/models/{name}/infer"), body=body, timeout=60)
        assert reply.status == 200, reply.body[:300]
        tensors = {tensor["name"]: tensor for tensor in reply.json()["outputs"]}
        assert set(tensors) == {"label", output}
        assert tensors["label"]["data"] == labels
        fp32 = np.asarray(tensors[output]["data"], dtype=np.float32).reshape(tensors[output]["shape"])
        assert np.array_equal(fp32, expected.astype(np.float32)) or np.allclose(fp32, expected, rtol=1e-6, atol=1e-7)
