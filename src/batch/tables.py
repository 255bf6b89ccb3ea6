"""CSV, JSON Lines and Parquet, read and written a chunk at a time (pyarrow), so memory stays flat.

A reader yields Chunks: the input columns the output carries, and the text column's values (bytes
from CSV, so a row that is not UTF-8 is refused alone; Python values from JSON Lines; whatever the
Parquet column holds). A problem with the file as a whole (it cannot be opened, a column is missing,
a CSV block cannot be parsed) is a TableError with one line; a problem with one row is that row's
error (src/batch/scoring.py).

From JSON Lines, a carried field keeps its JSON: a JSON Lines output writes it back as it was; CSV
and Parquet write a string as itself and any other value as its JSON text.
"""

from __future__ import annotations

import contextlib
import csv
import io
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from src.batch.scoring import Unreadable

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
STDIO = "-"
CSV_BLOCK_BYTES = 4 << 20  # a CSV row longer than this stops the run (pyarrow parses block by block)
_JSON = b"ml-service.json"  # field metadata: the column holds each value's JSON text


class TableError(Exception):
    """The file as a whole cannot be read or written; `message` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def format_of(path: str, given: str | None, side: str) -> str:
    """The table format: the one given, else the extension's (`-` is JSON Lines unless given)."""
    if given is not None:
        return given
    if path == STDIO:
        return "jsonl"
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        known = ", ".join(FORMATS)
        raise TableError(f"cannot tell the {side} format from {path!r}: use {known}, or --{side}-format")
    return FORMATS[suffix]


@dataclass
class Chunk:
    """Up to chunk-rows rows: the carried input columns, and the text column's values in row order."""

    carried: pa.RecordBatch
    texts: list[object]


class Reader:
    """One input table; `columns` is known once it is open, `total_rows` when the format says it."""

    columns: list[str]
    total_rows: int | None = None

    def __init__(self, handle: IO[bytes] | None, size: int | None) -> None:
        self.handle = handle
        self.size = size

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (never standard input)."""
        if self.handle is not None and self.handle is not _stdin():
            self.handle.close()

    def fraction_read(self) -> float | None:
        """How much of the file has been read (by bytes), when that can be known."""
        if self.handle is None or not self.size:
            return None
        try:
            return min(1.0, self.handle.tell() / self.size)
        except (OSError, ValueError):
            return None

    def chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        """The table in order, chunk_rows rows at a time."""
        raise NotImplementedError

    def carried_schema(self) -> pa.Schema:
        """The carried columns' types (what an input without rows gives the output)."""
        return pa.schema([pa.field(name, pa.string()) for name in self.columns])


def check_columns(found: Sequence[str], text_column: str, keep: Sequence[str] | None, where: str) -> list[str]:
    """The carried columns (every column when `keep` is None), after checking the named ones exist."""
    if len(set(found)) != len(found):
        twice = sorted({name for name in found if list(found).count(name) > 1})
        raise TableError(f"{where} names the column {twice[0]!r} twice")
    for name in [text_column, *(keep or [])]:
        if name not in found:
            shown = ", ".join(repr(column) for column in list(found)[:20]) or "none"
            raise TableError(f"{where} has no column {name!r} (columns: {shown})")
    return list(found) if keep is None else list(dict.fromkeys(keep))


RESULT_COLUMNS = ("label", "version", "error")


def check_no_clash(carried: Sequence[str], outputs: Sequence[str]) -> None:
    """Refuse carried input columns named like an output column (label, version, error, the outputs)."""
    clash = sorted(set(carried) & {*RESULT_COLUMNS, *outputs})
    if clash:
        raise TableError(
            f"the input column {clash[0]!r} would clash with an output column: name the columns to carry "
            "with --id-column"
        )


def _slices(batch: pa.RecordBatch, rows: int) -> Iterator[pa.RecordBatch]:
    for start in range(0, batch.num_rows, rows):
        yield batch.slice(start, rows)


class CsvReader(Reader):
    """CSV with a header row; every column read as text, the text column as bytes."""

    def __init__(self, handle: IO[bytes], size: int | None, where: str, text_column: str, keep: Sequence[str] | None):
        super().__init__(handle, size)
        header = handle.readline(CSV_BLOCK_BYTES)
        try:
            names = next(csv.reader([header.decode("utf-8-sig")]), [])
        except (UnicodeDecodeError, csv.Error) as error:
            raise TableError(f"{where}: the header row is not CSV text ({error})") from None
        self.columns = check_columns(names, text_column, keep, where)
        self.text_column = text_column
        self.where = where
        types = {name: pa.string() for name in names}
        types[text_column] = pa.binary()
        self.reader = pa_csv.open_csv(
            handle,
            read_options=pa_csv.ReadOptions(column_names=names, block_size=CSV_BLOCK_BYTES, use_threads=False),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=types,
                include_columns=list(dict.fromkeys([*self.columns, text_column])),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )

    def chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        while True:
            try:
                batch = self.reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowInvalid, OSError) as error:
                reason = str(error).splitlines()[0]
                if "straddl" in reason:
                    reason = f"a row is longer than {CSV_BLOCK_BYTES >> 20} MiB, or a quote is never closed"
                raise TableError(f"{self.where}: {reason}") from None
            for part in _slices(batch, chunk_rows):
                raw = part.column(self.text_column)
                texts = raw.to_pylist()
                carried = part.select(self.columns)
                if self.text_column in self.columns:
                    carried = carried.set_column(
                        self.columns.index(self.text_column), self.text_column, _as_text(raw, texts)
                    )
                yield Chunk(carried, texts)


def _as_text(raw: pa.Array, values: list[Any]) -> pa.Array:
    """The CSV text column carried into the output as text: a row that is not UTF-8 carries null."""
    try:
        return raw.cast(pa.string())
    except pa.ArrowInvalid:
        decoded = []
        for value in values:
            try:
                decoded.append(value.decode("utf-8"))
            except UnicodeDecodeError:
                decoded.append(None)
        return pa.array(decoded, pa.string())


class ParquetReader(Reader):
    """A Parquet file, read a row group's batches at a time."""

    def __init__(self, path: Path, where: str, text_column: str, keep: Sequence[str] | None) -> None:
        super().__init__(None, None)
        try:
            self.file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as error:
            raise TableError(f"{where} is not a readable Parquet file ({str(error).splitlines()[0]})") from None
        self.columns = check_columns(self.file.schema_arrow.names, text_column, keep, where)
        self.text_column = text_column
        self.where = where
        self.total_rows = self.file.metadata.num_rows
        self.read = 0

    def fraction_read(self) -> float | None:
        return self.read / self.total_rows if self.total_rows else None

    def carried_schema(self) -> pa.Schema:
        return pa.schema([self.file.schema_arrow.field(name) for name in self.columns])

    def chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        wanted = list(dict.fromkeys([*self.columns, self.text_column]))
        try:
            for batch in self.file.iter_batches(batch_size=chunk_rows, columns=wanted):
                self.read += batch.num_rows
                yield Chunk(batch.select(self.columns), batch.column(self.text_column).to_pylist())
        except (pa.ArrowException, OSError) as error:
            raise TableError(f"{self.where}: {str(error).splitlines()[0]}") from None


class JsonLinesReader(Reader):
    """One JSON object per line; the carried fields are those of the first chunk's rows (or those named)."""

    def __init__(
        self, handle: IO[bytes], size: int | None, where: str, text_column: str, keep: Sequence[str] | None, limit: int
    ) -> None:
        super().__init__(handle, size)
        self.where = where
        self.text_column = text_column
        self.keep = keep
        self.limit = limit
        self.line = 0
        self.columns = []
        self.first: tuple[list[Any], list[object]] | None = None
        self.missing = Unreadable(f"the row has no {text_column!r} field")

    def open(self, chunk_rows: int) -> None:
        """Read the first chunk, which says which fields there are."""
        rows, texts = self._rows(chunk_rows)
        seen: dict[str, None] = {}
        for row in rows:
            if isinstance(row, dict):
                seen.update(dict.fromkeys(row))
        if rows and self.text_column not in seen:
            shown = ", ".join(repr(name) for name in list(seen)[:20]) or "none"
            raise TableError(
                f"{self.where}: no row of the first {len(rows)} has the field {self.text_column!r} (fields: {shown})"
            )
        self.columns = list(seen) if self.keep is None else list(dict.fromkeys(self.keep))
        self.first = (rows, texts)

    def _line(self) -> bytes | None:
        assert self.handle is not None
        line = self.handle.readline(self.limit + 1)
        if not line:
            return None
        if len(line) > self.limit and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):  # the rest of the over-long line, a block at a time
                line = self.handle.readline(1 << 20)
            return b"\x00"
        return line

    def _rows(self, chunk_rows: int) -> tuple[list[Any], list[object]]:
        rows: list[Any] = []
        texts: list[object] = []
        while len(rows) < chunk_rows:
            line = self._line()
            if line is None:
                break
            self.line += 1
            if not line.strip():
                continue
            if line == b"\x00":
                rows.append(None)
                texts.append(Unreadable(f"line {self.line} is over {self.limit} bytes"))
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                rows.append(None)
                texts.append(Unreadable(f"line {self.line} is not JSON ({str(error).split(':')[0]})"))
                continue
            if not isinstance(row, dict):
                rows.append(None)
                texts.append(Unreadable(f"line {self.line} is not a JSON object"))
                continue
            rows.append(row)
            texts.append(row.get(self.text_column, self.missing))
        return rows, texts

    def chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        if self.first is None:
            self.open(chunk_rows)
        assert self.first is not None
        rows, texts = self.first
        self.first = ([], [])
        while rows:
            yield Chunk(self._carried(rows), texts)
            rows, texts = self._rows(chunk_rows)

    def _carried(self, rows: list[Any]) -> pa.RecordBatch:
        arrays = []
        for name in self.columns:
            values = [
                orjson.dumps(row[name]).decode() if isinstance(row, dict) and name in row else None for row in rows
            ]
            arrays.append(pa.array(values, pa.string()))
        return pa.RecordBatch.from_arrays(arrays, schema=self.carried_schema())

    def carried_schema(self) -> pa.Schema:
        return pa.schema([pa.field(name, pa.string(), metadata={_JSON: b"1"}) for name in self.columns])


def open_reader(
    path: str, fmt: str, text_column: str, keep: Sequence[str] | None, *, line_limit: int, chunk_rows: int
) -> Reader:
    """The input, opened and its columns checked (TableError, one line, when it cannot be)."""
    where = "standard input" if path == STDIO else path
    if fmt == "parquet":
        if path == STDIO:
            raise TableError("Parquet cannot be read from standard input (its index is at the end): give a file")
        return ParquetReader(Path(path), where, text_column, keep)
    handle, size = _open_input(path)
    try:
        if fmt == "csv":
            return CsvReader(handle, size, where, text_column, keep)
        reader = JsonLinesReader(handle, size, where, text_column, keep, line_limit)
        reader.open(chunk_rows)
    except BaseException:
        if handle is not _stdin():
            handle.close()
        raise
    return reader


def _stdin() -> IO[bytes]:
    return sys.stdin.buffer


def _open_input(path: str) -> tuple[IO[bytes], int | None]:
    if path == STDIO:
        return _stdin(), None
    try:
        handle = Path(path).open("rb")  # noqa: SIM115 - closed by the job, which reads it to the end
    except OSError as error:
        raise TableError(f"cannot read {path}: {error.strerror}") from None
    try:
        size = Path(path).stat().st_size
    except OSError:
        size = None
    return handle, size


def output_schema(carried: pa.Schema, outputs: Sequence[str]) -> pa.Schema:
    """The carried columns, then label, each output column, version and error."""
    fields = [*carried, pa.field("label", pa.string())]
    fields += [pa.field(name, pa.float64()) for name in outputs]
    fields += [pa.field("version", pa.string()), pa.field("error", pa.string())]
    return pa.schema(fields)


def _plain(batch: pa.RecordBatch) -> pa.RecordBatch:
    """JSON-text columns as CSV and Parquet write them: a string as itself, anything else as its JSON."""
    arrays, fields = [], []
    for field, array in zip(batch.schema, batch.columns, strict=True):
        if field.metadata and _JSON in field.metadata:
            values = [
                None if text is None else (orjson.loads(text) if text.startswith('"') else text)
                for text in array.to_pylist()
            ]
            array = pa.array(values, pa.string())
            field = pa.field(field.name, pa.string())
        arrays.append(array)
        fields.append(field)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


class Writer:
    """One output table, written a batch at a time to an open binary stream."""

    def __init__(self, sink: IO[bytes], fmt: str, schema: pa.Schema) -> None:
        self.sink = sink
        self.fmt = fmt
        self.names = schema.names
        self.json_columns = {f.name for f in schema if f.metadata and _JSON in f.metadata}
        plain = pa.schema([pa.field(f.name, f.type) for f in schema])
        self.writer: Any = None
        if fmt == "csv":
            options = pa_csv.WriteOptions(quoting_style="needed")
            self.writer = pa_csv.CSVWriter(sink, plain, write_options=options)
        elif fmt == "parquet":
            self.writer = pq.ParquetWriter(sink, plain)

    def write(self, batch: pa.RecordBatch) -> None:
        """The next rows, in order."""
        if self.fmt == "jsonl":
            self._write_lines(batch)
            return
        self.writer.write_batch(_plain(batch) if self.json_columns else batch)

    def _write_lines(self, batch: pa.RecordBatch) -> None:
        columns = [
            [None if v is None else orjson.Fragment(v) for v in column.to_pylist()]
            if name in self.json_columns
            else column.to_pylist()
            for name, column in zip(self.names, batch.columns, strict=True)
        ]
        names = self.names
        lines = io.BytesIO()
        for values in zip(*columns, strict=True):
            lines.write(orjson.dumps(dict(zip(names, values, strict=True)), option=orjson.OPT_APPEND_NEWLINE))
        self.sink.write(lines.getvalue())

    def abandon(self) -> None:
        """Stop writing a table that will be thrown away (its stream is about to be closed and removed)."""
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
            self.writer = None

    def close(self) -> None:
        """The format's end (Parquet's footer), then the stream's buffers."""
        if self.writer is not None:
            self.writer.close()
        self.sink.flush()
