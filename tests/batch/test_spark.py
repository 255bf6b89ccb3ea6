"""The batch job on Spark in local mode (a real JVM): predict_udf and run_on_spark score as the local command
does, in input order, and refuse bad input with one line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from src.batch.scoring import resolve
from src.batch.spark import SparkJob, predict_udf, run_on_spark, session
from src.batch.tables import TableError
from src.config import Settings
from src.errors import ModelStoreError
from src.serving.predictor import Predictor
from src.store.store import StoredModel

TEXTS = ["a wonderful, moving film", "a dull and boring mess", " ", None, "it was fine", "loved it", "x" * 20_001]


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    spark = session("local[2]", app="ml-service tests")
    yield spark
    spark.stop()


def test_predict_udf_gives_the_label_or_the_whole_answer(
    spark: SparkSession, model_dir: Path, stored: StoredModel
) -> None:
    frame = spark.createDataFrame([(i, text) for i, text in enumerate(TEXTS * 30)], "id long, review string")
    label = predict_udf(model_dir, "sentiment")
    whole = predict_udf(model_dir, "sentiment", result_type="struct")
    rows = frame.withColumn("sentiment", label("review")).withColumn("answer", whole("review")).orderBy("id").collect()
    predictor = Predictor(stored)
    assert len(rows) == len(TEXTS) * 30
    for row in rows:
        answer = row["answer"]
        assert answer["version"] == stored.version
        if row["review"] in (None, " ") or len(row["review"]) > 20_000:
            assert row["sentiment"] is None
            assert answer["label"] is None
            assert answer["probabilities"] is None
            assert answer["error"]
            continue
        expected = predictor.predict(row["review"])
        assert row["sentiment"] == expected.label == answer["label"]
        assert answer["probabilities"] == expected.probabilities
        assert answer["error"] is None
    assert rows[3]["answer"]["error"] == "text is empty (null)"


def test_predict_udf_refuses_what_it_cannot_do(model_dir: Path) -> None:
    with pytest.raises(ValueError, match="result_type must be one of string, struct, not 'double'"):
        predict_udf(model_dir, result_type="double")
    with pytest.raises(ModelStoreError, match="no model named 'nope'"):
        predict_udf(model_dir, "nope")


def _job(tmp_path: Path, source: Path, fmt: str, **extra: object) -> SparkJob:
    return SparkJob(str(source), str(tmp_path / "out.parquet"), fmt, "parquet", **extra)  # type: ignore[arg-type]


def test_the_job_keeps_the_inputs_order_and_scores_as_the_predictor(
    spark: SparkSession, tmp_path: Path, model_dir: Path, stored: StoredModel
) -> None:
    source = tmp_path / "in.parquet"
    texts = [TEXTS[i % len(TEXTS)] for i in range(2_000)]
    pq.write_table(pa.table({"id": list(range(2_000)), "text": texts}), source)
    settings = Settings(model_dir=model_dir)
    outcome = run_on_spark(
        _job(tmp_path, source, "parquet"), settings, resolve(settings, model_dir, None, None), "local[2]"
    )
    assert outcome.rows == 2_000
    assert outcome.refused == sum(text is None or not text.strip() or len(text) > 20_000 for text in texts)
    assert outcome.summary().endswith(f"to {tmp_path / 'out.parquet'} (Spark local[2])")
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column("id").to_pylist() == list(range(2_000))
    assert len(list((tmp_path / "out.parquet").glob("part-*"))) == 2  # both cores scored
    predictor = Predictor(stored)
    expected = {text: predictor.predict(text).label for text in TEXTS if text and text.strip() and len(text) < 20_000}
    assert table.column("label").to_pylist() == [expected.get(text) if text else None for text in texts]
    assert [name for name in (tmp_path).iterdir() if name.name.startswith(".out")] == []


def test_json_lines_that_are_not_objects_are_rows_with_an_error(
    spark: SparkSession, tmp_path: Path, model_dir: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1, "text": "great"}\nnot json\n{"id": 3, "text": "awful"}\n')
    settings = Settings(model_dir=model_dir)
    run_on_spark(_job(tmp_path, source, "jsonl"), settings, resolve(settings, model_dir, None, None), "local[2]")
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [row["error"] for row in rows] == [None, "the line is not a JSON object", None]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("column", "has no column 'text' (columns: 'id', 'body')"),
        ("exists", "exists; --overwrite replaces it"),
        ("absent", "no such file or folder"),
    ],
)
def test_bad_input_is_one_line(spark: SparkSession, tmp_path: Path, model_dir: Path, setup: str, message: str) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,body\n1,fine\n" if setup == "column" else "id,text\n1,fine\n")
    if setup == "exists":
        (tmp_path / "out.parquet").mkdir()
    if setup == "absent":
        source = tmp_path / "absent.csv"
    settings = Settings(model_dir=model_dir)
    with pytest.raises(TableError) as refused:
        run_on_spark(_job(tmp_path, source, "csv"), settings, resolve(settings, model_dir, None, None), "local[2]")
    assert message in refused.value.message
    assert "\n" not in refused.value.message
    assert [name for name in (tmp_path).iterdir() if name.name.startswith(".out")] == []


def test_a_python_workers_error_is_named_by_its_own_last_line() -> None:
    from src.batch.spark import _first_line

    message = (
        "[PYTHON_EXCEPTION] An exception was thrown from the Python worker: Traceback (most recent call last):\n"
        '  File "worker.py", line 3, in <module>\n    import sklearn\n'
        "ModuleNotFoundError: No module named 'sklearn'\n\n\tat org.apache.spark.api.python.BasePythonRunner"
    )
    assert _first_line(RuntimeError(message)) == "ModuleNotFoundError: No module named 'sklearn'"
    assert _first_line(RuntimeError("Path does not exist: file:/x.csv\n\tat org.apache")) == (
        "Path does not exist: file:/x.csv"
    )
    assert _first_line(RuntimeError("")) == "RuntimeError"
