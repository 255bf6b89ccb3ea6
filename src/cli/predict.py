"""`ml-service predict`: score a whole CSV, JSON Lines or Parquet file with a stored model.

ml-service predict --input reviews.csv --output scored.parquet
ml-service predict --input tickets.jsonl --output - --text-column body --id-column ticket
ml-service predict --input lake/comments.parquet --output scored.parquet --spark local[2]

Formats come from the extensions (.csv, .jsonl or .ndjson, .parquet or .pq); `-` is standard input or
output, JSON Lines unless --input-format/--output-format says otherwise. Exit status
(src/exit_codes.py): 0 done (rows that could not be scored carry an error and are counted), 2 refused
(a one-line reason on standard error, nothing written under the output's name).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from src import exit_codes
from src.cli.arguments import at_least_one, model_name
from src.config import get_settings
from src.errors import ModelStoreError

FORMATS = ("csv", "jsonl", "parquet")


def build_parser(prog: str = "ml-service predict") -> argparse.ArgumentParser:
    """The command line of batch scoring."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Score every row of a table with a stored model: each input row gives one output row, in "
        "order, with the carried input columns, the label, each class's probability (or score), the version, "
        "and an error naming the rule for a row that cannot be scored.",
    )
    parser.add_argument("--input", required=True, help="the table to score (a file, or - for standard input)")
    parser.add_argument(
        "--output", required=True, help="where the scored table goes (a file, or - for standard output)"
    )
    parser.add_argument("--input-format", choices=FORMATS, help="the input's format (default: from its extension)")
    parser.add_argument("--output-format", choices=FORMATS, help="the output's format (default: from its extension)")
    parser.add_argument("--model", type=model_name, help="the model's name (default: DEFAULT_MODEL_NAME)")
    parser.add_argument("--version", help="the version to score with (default: CURRENT when the run starts)")
    parser.add_argument("--model-dir", type=Path, help="the model store (default: MODEL_DIR)")
    parser.add_argument("--text-column", default="text", help="the column holding the texts (default: text)")
    parser.add_argument(
        "--id-column",
        action="append",
        dest="keep",
        metavar="COLUMN",
        help="an input column to carry into the output (repeat for more); default: every input column",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    parser.add_argument("--workers", type=at_least_one, help="worker processes (default: one per core)")
    parser.add_argument("--chunk-rows", type=at_least_one, default=5_000, help="rows per chunk (default: 5000)")
    parser.add_argument("--quiet", action="store_true", help="no progress; the summary only")
    parser.add_argument(
        "--spark",
        metavar="MASTER",
        help="run the job on Spark (local[2], spark://host:7077, yarn, ...): input and output are then paths "
        "Spark reads and writes, and the output is a folder of part files",
    )
    return parser


def _stop(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None, *, prog: str = "ml-service predict") -> int:
    """Entry point: a one-line error and exit 2 for anything that stops the run."""
    args = build_parser(prog).parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)  # a stopped run cleans up as Ctrl-C does: no partial file stays
    try:
        from src.batch.progress import Progress
        from src.batch.scoring import resolve
        from src.batch.tables import TableError, format_of
    except ImportError as error:  # pyarrow is in requirements-batch.txt, not in the server's image
        print(f"error: batch scoring needs {error.name}: pip install -r requirements-batch.txt", file=sys.stderr)
        return exit_codes.REFUSED
    settings = get_settings()
    try:
        input_format = format_of(args.input, args.input_format, "input")
        output_format = format_of(args.output, args.output_format, "output")
        choice = resolve(settings, args.model_dir or settings.model_dir, args.model, args.version)
        if args.spark:
            from src.batch.spark import SparkJob, run_on_spark

            spark_job = SparkJob(args.input, args.output, input_format, output_format, args.text_column, args.keep)
            outcome = run_on_spark(spark_job, settings, choice, args.spark, overwrite=args.overwrite)
            print(outcome.summary(), file=sys.stderr)
            return exit_codes.OK
        from src.batch.job import BatchJob, default_workers, run

        job = BatchJob(
            args.input,
            args.output,
            input_format,
            output_format,
            text_column=args.text_column,
            keep=args.keep,
            overwrite=args.overwrite,
            workers=args.workers or default_workers(),
            chunk_rows=args.chunk_rows,
        )
        progress = Progress(sys.stderr, enabled=not args.quiet)
        run(job, settings, choice, progress)
    except (TableError, ModelStoreError) as error:
        print(f"error: {error.message}", file=sys.stderr)
        return exit_codes.REFUSED
    except KeyboardInterrupt:
        print("error: stopped before the end; nothing was written under the output's name", file=sys.stderr)
        return exit_codes.REFUSED
    progress.finish("standard output" if args.output == "-" else args.output)
    return exit_codes.OK
