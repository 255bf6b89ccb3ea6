"""CSV, JSON Lines and Parquet read and written a chunk at a time; a problem with the file is one line."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from src.batch.scoring import Unreadable
from src.batch.tables import TableError, Writer, format_of, open_reader, output_schema


def _read(path: Path, fmt: str, keep: list[str] | None = None, chunk_rows: int = 2) -> tuple[list[str], list[object]]:
    texts: list[object] = []
    with open_reader(str(path), fmt, "text", keep, line_limit=1000, chunk_rows=chunk_rows) as reader:
        for chunk in reader.chunks(chunk_rows):
            assert chunk.carried.num_rows in (0, len(chunk.texts))
            texts += chunk.texts
    return reader.columns, texts


def test_the_format_comes_from_the_extension_or_is_named() -> None:
    assert format_of("a.CSV", None, "input") == "csv"
    assert format_of("a.ndjson", None, "input") == "jsonl"
    assert format_of("a.pq", None, "output") == "parquet"
    assert format_of("-", None, "output") == "jsonl"
    assert format_of("a.txt", "csv", "input") == "csv"
    with pytest.raises(TableError, match=r"cannot tell the input format from 'a.txt'"):
        format_of("a.txt", None, "input")


def test_csv_texts_arrive_as_bytes_so_one_bad_row_is_refused_alone(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b'id,text\n1,"good, with a comma"\n2,"two\nlines"\n3,\xff\xfe\n4,\n')
    columns, texts = _read(path, "csv")
    assert columns == ["id", "text"]
    assert texts == [b"good, with a comma", b"two\nlines", b"\xff\xfe", b""]


def test_a_missing_or_repeated_column_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("id,body\n1,x\n")
    with pytest.raises(TableError, match=r"has no column 'text' \(columns: 'id', 'body'\)"):
        _read(path, "csv")
    path.write_text("text,text\n1,x\n")
    with pytest.raises(TableError, match=r"names the column 'text' twice"):
        _read(path, "csv")
    path.write_text("text,id\nx,1\n")
    with pytest.raises(TableError, match=r"has no column 'ticket'"):
        _read(path, "csv", keep=["ticket"])
    parquet = tmp_path / "in.parquet"
    pq.write_table(pa.table({"body": ["x"]}), parquet)
    with pytest.raises(TableError, match=r"has no column 'text' \(columns: 'body'\)"):
        _read(parquet, "parquet")


def test_a_file_that_is_not_parquet_or_is_missing_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    path.write_bytes(b"PAR1 but not really")
    with pytest.raises(TableError, match=r"is not a readable Parquet file"):
        _read(path, "parquet")
    with pytest.raises(TableError, match=r"cannot read .*nope.csv: No such file or directory"):
        _read(tmp_path / "nope.csv", "csv")


def test_json_lines_rows_that_cannot_be_read_are_rows_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    lines = [
        b'{"id": 1, "text": "fine"}',
        b"not json",
        b"[1, 2]",
        b"",
        b'{"id": 2}',
        b'{"text": "' + b"x" * 2000 + b'"}',
    ]
    lines.append(b'{"id": [3], "text": 5}')
    path.write_bytes(b"\n".join(lines) + b"\n")
    columns, texts = _read(path, "jsonl", chunk_rows=3)
    assert columns == ["id", "text"]
    assert texts[0] == "fine"
    reasons = [value.reason for value in texts[1:5] if isinstance(value, Unreadable)]
    assert reasons[0].startswith("line 2 is not JSON")
    assert reasons[1:] == ["line 3 is not a JSON object", "the row has no 'text' field", "line 6 is over 1000 bytes"]
    assert texts[5] == 5


def test_json_lines_without_the_field_in_the_first_chunk_is_a_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"body": "x"}\n{"body": "y"}\n')
    with pytest.raises(TableError, match=r"no row of the first 2 has the field 'text' \(fields: 'body'\)"):
        _read(path, "jsonl")


def _write(fmt: str, carried: pa.RecordBatch) -> bytes:
    sink = io.BytesIO()
    schema = output_schema(carried.schema, ["probability_a"])
    writer = Writer(sink, fmt, schema)
    count = carried.num_rows
    arrays = [*carried.columns, pa.array(["a"] * count), pa.array([0.25] * count), pa.array(["v1"] * count)]
    writer.write(pa.RecordBatch.from_arrays([*arrays, pa.array([None] * count, pa.string())], schema=schema))
    writer.close()
    return sink.getvalue()


def test_json_fields_go_back_as_they_were_and_as_text_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": 7, "meta": {"a": [1]}, "text": "fine", "note": "plain"}\n')
    with open_reader(str(path), "jsonl", "text", None, line_limit=1000, chunk_rows=10) as reader:
        carried = next(iter(reader.chunks(10))).carried
    line = orjson.loads(_write("jsonl", carried))
    assert line == {
        "id": 7,
        "meta": {"a": [1]},
        "text": "fine",
        "note": "plain",
        "label": "a",
        "probability_a": 0.25,
        "version": "v1",
        "error": None,
    }
    assert _write("csv", carried).splitlines()[1] == b'"7","{""a"":[1]}","fine","plain","a",0.25,"v1",'
    table = pq.read_table(io.BytesIO(_write("parquet", carried)))
    assert table.column("id").to_pylist() == ["7"]
    assert table.column("note").to_pylist() == ["plain"]
