"""`ml-service predict`: a stored model over a whole table, on every core, with memory flat in its size.

The main process reads a chunk, hands it to a pool of worker processes (each loads the version once
and scores with the compiled engine), and writes the chunks back in input order; at most two chunks
per worker are in flight, so memory does not grow with the file. The output is written beside its
name (`.NAME.partial-*`) and renamed at the end: a run that fails or is stopped leaves nothing under
the output's name, and an existing output is replaced only with `overwrite`.
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import signal
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa

from src.batch.progress import Progress
from src.batch.scoring import ChunkScorer, ModelChoice, ScoredChunk, limits_of, load_predictor, output_names
from src.batch.tables import STDIO, Chunk, Reader, TableError, Writer, check_no_clash, open_reader, output_schema
from src.config import Settings

IN_FLIGHT_PER_WORKER = 2


def default_workers() -> int:
    """One worker per core this process may run on."""
    return len(os.sched_getaffinity(0))


@dataclass(frozen=True)
class BatchJob:
    """What to score and where the results go."""

    input: str
    output: str
    input_format: str
    output_format: str
    text_column: str = "text"
    keep: list[str] | None = None  # the input columns the output carries; None: all of them
    overwrite: bool = False
    workers: int = field(default_factory=default_workers)
    chunk_rows: int = 5_000

    def check_output(self) -> None:
        """Refuse, before any work, an output that exists (without overwrite), is the input, or has no folder."""
        if self.output == STDIO:
            return
        path = Path(self.output)
        if self.input != STDIO and path.resolve() == Path(self.input).resolve():
            raise TableError(f"the output {self.output} is the input: write the results elsewhere")
        if path.is_dir():
            raise TableError(f"the output {self.output} is a folder: name a file")
        if path.exists() and not self.overwrite:
            raise TableError(f"the output {self.output} exists; --overwrite replaces it")
        if not path.parent.is_dir():
            raise TableError(f"the output's folder {path.parent} does not exist")


@dataclass
class Outcome:
    """What the run did."""

    rows: int
    refused: int
    version: str


_worker_scorer: ChunkScorer | None = None


def _start_worker(settings: Settings, choice: ModelChoice) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the main process ends the pool
    global _worker_scorer
    _worker_scorer = ChunkScorer(load_predictor(settings, choice), limits_of(settings))


def _score_in_worker(texts: list[object]) -> ScoredChunk:
    assert _worker_scorer is not None
    return _worker_scorer.score(texts)


class _Scorers:
    """In this process (one worker) or in a pool; `submit` returns something whose get() is the result."""

    def __init__(self, settings: Settings, choice: ModelChoice, scorer: ChunkScorer, workers: int) -> None:
        self.scorer = scorer
        self.pool: Pool | None = None
        if workers > 1:
            context = multiprocessing.get_context("spawn")  # never fork a process pyarrow's threads run in
            self.pool = context.Pool(workers, initializer=_start_worker, initargs=(settings, choice))
        self.limit = IN_FLIGHT_PER_WORKER * max(1, workers)

    def submit(self, texts: list[object]) -> AsyncResult[ScoredChunk] | ScoredChunk:
        if self.pool is None:
            return self.scorer.score(texts)
        return self.pool.apply_async(_score_in_worker, (texts,))

    def close(self, *, finished: bool) -> None:
        if self.pool is None:
            return
        if finished:
            self.pool.close()
        else:
            self.pool.terminate()
        self.pool.join()


def _result(chunk: Chunk, scored: ScoredChunk, version: str, schema: pa.Schema) -> pa.RecordBatch:
    count = len(chunk.texts)
    arrays = [*chunk.carried.columns, pa.array(scored.labels, pa.string())]
    for column in range(scored.values.shape[1]):
        values = scored.values[:, column]
        arrays.append(pa.array(values, pa.float64(), mask=np.isnan(values)))
    arrays.append(pa.repeat(pa.scalar(version, pa.string()), count))
    arrays.append(pa.array(scored.errors, pa.string()))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


@contextmanager
def _sink(job: BatchJob) -> Iterator[tuple[IO[bytes], Any]]:
    """The stream the table is written to, and a callable that puts it under the output's name."""
    import sys

    if job.output == STDIO:
        yield sys.stdout.buffer, lambda: None
        return
    final = Path(job.output)
    partial = final.with_name(f".{final.name}.partial-{secrets.token_hex(4)}")
    handle = partial.open("xb")
    placed = False

    def place() -> None:
        nonlocal placed
        handle.close()
        if job.overwrite:
            partial.replace(final)
        else:
            try:
                os.link(partial, final)  # fails if something took the name meanwhile
            except FileExistsError:
                raise TableError(f"the output {job.output} appeared while scoring; --overwrite replaces it") from None
            partial.unlink()
        placed = True

    try:
        yield handle, place
    finally:
        if not placed:
            handle.close()
            partial.unlink(missing_ok=True)


def run(job: BatchJob, settings: Settings, choice: ModelChoice, progress: Progress) -> Outcome:
    """Score the job's table; TableError or ModelStoreError (one line each) for what stops it."""
    job.check_output()
    predictor = load_predictor(settings, choice)
    names = output_names(predictor)
    line_limit = 4 * 4 * settings.max_text_length + (1 << 16)  # a UTF-8 JSON line holding the longest text
    with ExitStack() as stack:
        reader = stack.enter_context(
            open_reader(
                job.input, job.input_format, job.text_column, job.keep, line_limit=line_limit, chunk_rows=job.chunk_rows
            )
        )
        check_no_clash(reader.columns, names)
        sink, place = stack.enter_context(_sink(job))
        scorers = _Scorers(settings, choice, ChunkScorer(predictor, limits_of(settings)), job.workers)
        finished = False
        try:
            rows = _score_all(reader, scorers, sink, job, names, choice.version, progress)
            finished = True
        finally:
            scorers.close(finished=finished)
        place()
    return Outcome(rows, progress.refused, choice.version)


def _score_all(
    reader: Reader,
    scorers: _Scorers,
    sink: IO[bytes],
    job: BatchJob,
    names: list[str],
    version: str,
    progress: Progress,
) -> int:
    pending: deque[tuple[Chunk, AsyncResult[ScoredChunk] | ScoredChunk]] = deque()
    writer: Writer | None = None
    schema: pa.Schema | None = None
    rows = 0

    def write_oldest() -> None:
        nonlocal writer, schema, rows
        chunk, waiting = pending.popleft()
        scored = waiting if isinstance(waiting, ScoredChunk) else waiting.get()
        if writer is None or schema is None:
            schema = output_schema(chunk.carried.schema, names)
            writer = Writer(sink, job.output_format, schema)
        writer.write(_result(chunk, scored, version, schema))
        rows += len(chunk.texts)
        progress.advance(len(chunk.texts), scored.refused, reader.fraction_read())

    try:
        for chunk in reader.chunks(job.chunk_rows):
            pending.append((chunk, scorers.submit(chunk.texts)))
            if len(pending) >= scorers.limit:
                write_oldest()
        while pending:
            write_oldest()
    except BaseException:
        if writer is not None:
            writer.abandon()
        raise
    if writer is None:  # an input without rows: the output has the columns and no rows
        writer = Writer(sink, job.output_format, output_schema(reader.carried_schema(), names))
    writer.close()
    return rows
