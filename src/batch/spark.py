"""Batch scoring on Spark: `ml-service predict --spark MASTER`, and predict_udf for a team's own job.

Both fix the version on the driver (the one named, or CURRENT when the job starts), so every executor
scores with the same one, and score Arrow batches with the code /predict uses (src/batch/scoring.py):
each executor's Python worker loads the version once and keeps it for every later batch. Executors
import this package, so ml-service must be installed where they run (it is, in local mode), and
MODEL_DIR must be a path every executor can read.

predict_udf's interface follows MLflow's `mlflow.pyfunc.spark_udf`: a model reference and a
`result_type`, returning a column function:

    from src.batch.spark import predict_udf
    scored = reviews.withColumn("sentiment", predict_udf("/models", "sentiment")("review"))
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from src.batch.progress import summary_line
from src.batch.scoring import ChunkScorer, ModelChoice, limits_of, load_predictor, output_names, resolve
from src.batch.tables import STDIO, TableError, check_columns, check_no_clash
from src.config import Settings, get_settings

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import StructType

RESULT_TYPES = ("string", "struct")
LOG_CONFIG = Path(__file__).with_name("log4j2.properties")
ROW = "_ml_service_row"  # the input's row order, kept through a repartition of a small input
_CORRUPT = "_corrupt_record"
_scorers: dict[tuple[ModelChoice, int], ChunkScorer] = {}


def _scorer(settings: Settings, choice: ModelChoice) -> ChunkScorer:
    """This Python worker's scorer for the version: loaded on its first batch, kept for the others."""
    key = (choice, settings.max_text_length)
    scorer = _scorers.get(key)
    if scorer is None:
        scorer = _scorers[key] = ChunkScorer(load_predictor(settings, choice), limits_of(settings))
    return scorer


def _texts(values: pd.Series) -> list[object]:
    """A pandas column as the scorer takes it: Spark's nulls (None or NaN) become None."""
    return [None if value is None or value != value else value for value in values.tolist()]


def predict_udf(
    model_dir: str | Path | None = None,
    model: str | None = None,
    version: str | None = None,
    result_type: str = "string",
    *,
    settings: Settings | None = None,
) -> Callable[[Column | str], Column]:
    """A Spark column function scoring a text column with a stored model.

    `result_type="string"` gives the label (null for a text the rules refuse); `"struct"` gives
    label, the probabilities (or scores) as a map, version and error. The version is the one named,
    or CURRENT now; ModelStoreError if the model or version does not exist.
    """
    from pyspark.sql.pandas.functions import pandas_udf

    if result_type not in RESULT_TYPES:
        raise ValueError(f"result_type must be one of {', '.join(RESULT_TYPES)}, not {result_type!r}")
    settings = settings or get_settings()
    choice = resolve(settings, Path(model_dir or settings.model_dir), model, version)
    values = "probabilities" if load_predictor(settings, choice).has_probabilities else "scores"
    struct = f"label string, {values} map<string,double>, version string, error string"

    def labels(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        scorer = _scorer(settings, choice)
        for texts in batches:
            yield pd.Series(scorer.score(_texts(texts)).labels, dtype=object)

    def answers(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        scorer = _scorer(settings, choice)
        names = [name.split("_", 1)[1] for name in scorer.names]
        for texts in batches:
            scored = scorer.score(_texts(texts))
            maps = [
                None if label is None else dict(zip(names, map(float, row), strict=True))
                for label, row in zip(scored.labels, scored.values, strict=True)
            ]
            yield pd.DataFrame(
                {"label": scored.labels, values: maps, "version": choice.version, "error": scored.errors}
            )

    import pandas as pd

    # Spark tells the kind of pandas UDF from the hints, read as objects (this module postpones them)
    labels.__annotations__ = {"batches": Iterator[pd.Series], "return": Iterator[pd.Series]}
    answers.__annotations__ = {"batches": Iterator[pd.Series], "return": Iterator[pd.DataFrame]}
    make_udf: Any = pandas_udf  # its stubs type the function form by its hints, which an iterator UDF has not
    if result_type == "string":
        return make_udf(labels, "string")  # type: ignore[no-any-return]
    return make_udf(answers, struct)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class SparkJob:
    """`ml-service predict --spark`: the same job as src/batch/job.py's, read and written by Spark."""

    input: str
    output: str
    input_format: str
    output_format: str
    text_column: str = "text"
    keep: list[str] | None = None


@dataclass
class SparkOutcome:
    """What the Spark run did."""

    rows: int
    refused: int
    seconds: float
    output: str
    master: str

    def summary(self) -> str:
        """The last line, as the local command's."""
        return summary_line(self.rows, self.refused, self.seconds, f"{self.output} (Spark {self.master})")


def _is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _local(path: str) -> Path:
    return Path(path.removeprefix("file://"))


def session(master: str, app: str = "ml-service predict") -> SparkSession:
    """A Spark session on `master` whose Python workers run this interpreter (and its packages);
    TableError when Spark cannot start (no Java 17, a master that does not answer)."""
    from pyspark.errors import PySparkException
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName(app)
    builder = builder.config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
    logging = f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}"
    builder = builder.config("spark.driver.extraJavaOptions", logging)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # read when the context starts its workers
    try:
        spark = builder.getOrCreate()
    except (PySparkException, OSError) as error:
        raise TableError(f"Spark could not start on {master} (it needs Java 17): {_first_line(error)}") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _read(spark: SparkSession, job: SparkJob) -> DataFrame:
    from pyspark.errors import AnalysisException

    reader = spark.read
    try:
        if job.input_format == "parquet":
            return reader.parquet(job.input)
        if job.input_format == "csv":
            return reader.options(header=True, multiLine=True, escape='"').csv(job.input)
        return reader.options(mode="PERMISSIVE", columnNameOfCorruptRecord=_CORRUPT).json(job.input)
    except AnalysisException as error:
        raise TableError(f"cannot read {job.input}: {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    """One line of what went wrong: a Python worker's own error (its traceback's last line) when the
    message carries one, else the message's first line."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    if "Traceback (most recent call last)" in str(error):
        raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception)\b", line)]
        if raised:
            return raised[-1][:300]
    return lines[0][:300]


def _columns(frame: DataFrame, job: SparkJob) -> list[str]:
    found = [name for name in frame.columns if name != _CORRUPT]
    return check_columns(found, job.text_column, job.keep, job.input)


def _output_schema(frame: DataFrame, carried: Sequence[str], outputs: Sequence[str]) -> StructType:
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    fields = [frame.schema[name] for name in carried]
    fields.append(StructField("label", StringType()))
    fields += [StructField(name, DoubleType()) for name in outputs]
    fields += [StructField("version", StringType()), StructField("error", StringType())]
    return StructType(fields)


def _scored(frame: DataFrame, job: SparkJob, settings: Settings, choice: ModelChoice, counts: Any) -> DataFrame:
    carried = _columns(frame, job)
    outputs = output_names(load_predictor(settings, choice))
    check_no_clash(carried, outputs)
    corrupt = _CORRUPT in frame.columns
    text_column = job.text_column
    rows, refused = counts

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        scorer = _scorer(settings, choice)
        from src.batch.scoring import Unreadable

        for batch in batches:
            texts = _texts(batch[text_column])
            if corrupt:
                texts = [
                    Unreadable("the line is not a JSON object") if isinstance(bad, str) else text
                    for text, bad in zip(texts, batch[_CORRUPT].tolist(), strict=True)
                ]
            scored = scorer.score(texts)
            result = batch[carried].copy()
            result["label"] = scored.labels
            for index, name in enumerate(scorer.names):
                result[name] = scored.values[:, index]
            result["version"] = choice.version
            result["error"] = scored.errors
            rows.add(len(texts))
            refused.add(scored.refused)
            yield result

    columns = [*carried, job.text_column, *([_CORRUPT] if corrupt else [])]
    selected = frame.select(*dict.fromkeys(columns))
    if _is_local(job.input) and _local(job.input).is_file():
        selected = _spread(selected)
    return selected.mapInPandas(score, _output_schema(frame, carried, outputs))


def _spread(frame: DataFrame) -> DataFrame:
    """One input file, which Spark may read as one partition (a Parquet row group, a multi-line CSV),
    split into a row range per core, each range in input order."""
    from pyspark.sql.functions import monotonically_increasing_id

    cores = frame.sparkSession.sparkContext.defaultParallelism
    numbered = frame.withColumn(ROW, monotonically_increasing_id())
    return numbered.repartitionByRange(cores, ROW).sortWithinPartitions(ROW).drop(ROW)


def _write(frame: DataFrame, job: SparkJob, target: str) -> None:
    writer = frame.write.mode("errorifexists")
    if job.output_format == "csv":
        writer.options(header=True, escape='"').csv(target)
    elif job.output_format == "jsonl":
        writer.json(target)
    else:
        writer.parquet(target)


def run_on_spark(
    job: SparkJob, settings: Settings, choice: ModelChoice, master: str, *, overwrite: bool = False
) -> SparkOutcome:
    """Score the job's table on Spark. A local output is written beside its name and renamed at the end
    (a folder of part files); TableError (one line) for what stops it."""
    if STDIO in (job.input, job.output):
        raise TableError("with --spark, input and output are paths Spark reads and writes, not -")
    local = _is_local(job.output)
    final = _local(job.output)
    if local:
        if final.exists() and not overwrite:
            raise TableError(f"the output {job.output} exists; --overwrite replaces it")
        if not final.parent.is_dir():
            raise TableError(f"the output's folder {final.parent} does not exist")
    if _is_local(job.input) and not _local(job.input).exists():
        raise TableError(f"cannot read {job.input}: no such file or folder")
    started = time.monotonic()
    from pyspark.sql import SparkSession

    ours = SparkSession.getActiveSession() is None  # a session the caller made is the caller's to stop
    spark = session(master)
    try:
        counts = (spark.sparkContext.accumulator(0), spark.sparkContext.accumulator(0))
        scored = _scored(_read(spark, job), job, settings, choice, counts)
        target = str(final.with_name(f".{final.name}.partial-{secrets.token_hex(4)}")) if local else job.output
        try:
            _write(scored, job, target)
        except Exception as error:
            if local:
                shutil.rmtree(target, ignore_errors=True)
            raise TableError(f"Spark could not score {job.input}: {_first_line(error)}") from None
        if local:
            _place(Path(target), final, overwrite=overwrite)
        return SparkOutcome(counts[0].value, counts[1].value, time.monotonic() - started, job.output, master)
    finally:
        if ours:
            spark.stop()


def _place(partial: Path, final: Path, *, overwrite: bool) -> None:
    """The finished folder under the output's name; an old output is moved aside first, then removed."""
    old = None
    if final.exists():
        if not overwrite:
            shutil.rmtree(partial, ignore_errors=True)
            raise TableError(f"the output {final} appeared while scoring; --overwrite replaces it")
        old = final.with_name(f".{final.name}.old-{secrets.token_hex(4)}")
        final.rename(old)
    partial.rename(final)
    if old is not None:
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink()
