"""The issue's proof: for a few thousand real texts, `ml-service predict` (on every core, and on Spark
local[2]) gives each text the label and probabilities the production server's /predict gives it."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from src.model.datasets import Dataset
from tests.cli.test_predict import predict
from tests.e2e.servers import free_port, production_command, production_env, request, running_server

pytestmark = pytest.mark.e2e
ROWS = 3_000


def _served(server_url: str, texts: list[str]) -> list[dict[str, object]]:
    answers: list[dict[str, object]] = []
    for start in range(0, len(texts), 200):
        reply = request(f"{server_url}/predict/batch", body={"texts": texts[start : start + 200]}, timeout=30)
        assert reply.status == 200, reply.body
        answers += reply.json()["predictions"]
    return answers


def test_every_label_equals_the_servers_locally_and_on_spark(model_dir: Path, sample: Dataset, tmp_path: Path) -> None:
    texts = [text for text in sample.texts if text.strip()][:ROWS]
    source = tmp_path / "reviews.parquet"
    pq.write_table(pa.table({"review_id": list(range(len(texts))), "review": texts}), source)
    local = predict(
        model_dir, "--input", str(source), "--output", str(tmp_path / "local.parquet"), "--text-column", "review"
    )
    assert local.returncode == 0, local.stderr
    on_spark = predict(
        model_dir,
        "--input",
        str(source),
        "--output",
        str(tmp_path / "spark.parquet"),
        "--text-column",
        "review",
        "--spark",
        "local[2]",
    )
    assert on_spark.returncode == 0, on_spark.stderr
    assert on_spark.stderr.decode().strip().splitlines()[-1].endswith("(Spark local[2])")
    port = free_port()
    with running_server(production_command(), port, production_env(model_dir, port, tmp_path), tmp_path) as server:
        served = _served(server.base_url, texts)
    for name in ("local", "spark"):
        table = pq.read_table(tmp_path / f"{name}.parquet")
        assert table.column("review_id").to_pylist() == list(range(len(texts))), name
        rows = table.to_pylist()
        assert [row["label"] for row in rows] == [answer["label"] for answer in served], name
        for row, answer in zip(rows, served, strict=True):
            probabilities = answer["probabilities"]
            assert isinstance(probabilities, dict)
            assert {label: row[f"probability_{label}"] for label in probabilities} == probabilities, name
            assert row["error"] is None
