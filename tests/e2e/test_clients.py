"""Clients nobody here wrote, unchanged, against the production server: KServe's SDK (REST v2, REST v1
and gRPC) and the bodies MLflow's client sends, built with pandas as it builds them.

The SDK lives in its own venv (.venv-kserve, `make .venv-kserve/.installed`); tests/e2e/kserve_client.py
runs there and reports what each client got. Every client must find the server live and ready and the
model ready, and give each text the label /predict gives it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from src import API_VERSION
from tests.e2e.servers import free_port, production_command, production_env, request, running_server

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
KSERVE_PYTHON = ROOT / ".venv-kserve" / "bin" / "python"
TEXTS = [
    "A wonderful, moving film.",
    "Dull, boring and far too long.",
    "Not bad at all, actually pretty good.",
    'The food was "fine", I suppose, but the service, sadly, was slow.',  # quotes and commas: CSV's quoting
]


@pytest.fixture(scope="module")
def answers(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], list[str]]]:
    if not KSERVE_PYTHON.exists():
        pytest.fail(f"{KSERVE_PYTHON} is missing: `make .venv-kserve/.installed` installs KServe's SDK")
    tmp_path = tmp_path_factory.mktemp("clients")
    port = free_port()
    env = production_env(model_dir, port, tmp_path)
    with running_server(production_command(), port, env, tmp_path, ready_path="/health/ready") as server:
        expected = [request(server.url("/predict"), body={"text": text}).json()["label"] for text in TEXTS]
        script = [str(KSERVE_PYTHON), str(ROOT / "tests" / "e2e" / "kserve_client.py")]
        address = f"127.0.0.1:{env['GRPC_PORT']}"
        run = subprocess.run(
            [*script, server.base_url, address, "sentiment", json.dumps(TEXTS)],
            capture_output=True,
            timeout=120,
            check=False,
        )
        if run.returncode != 0:
            sys.stderr.write(run.stderr.decode(errors="replace"))
        assert run.returncode == 0, run.stderr.decode(errors="replace")[-2000:]
        yield json.loads(run.stdout), expected


@pytest.mark.parametrize("client", ["rest_v2", "rest_v1", "grpc"])
def test_kserves_sdk_finds_the_server_and_model_ready_and_predicts_as_predict_does(
    answers: tuple[dict[str, Any], list[str]], client: str
) -> None:
    got, expected = answers
    report = got[client]
    assert report["live"] is True
    assert report.get("ready", True) is True  # the V1 client has no server readiness call
    assert report["model_ready"] is True
    assert report["labels"] == expected


def test_mlflows_formats_give_the_labels_predict_gives(answers: tuple[dict[str, Any], list[str]]) -> None:
    got, expected = answers
    mlflow = got["mlflow"]
    assert mlflow["ping"] == 200
    assert mlflow["version"] == API_VERSION
    for name in ("dataframe_split", "dataframe_records", "instances", "inputs", "csv"):
        assert mlflow[name] == expected, name
