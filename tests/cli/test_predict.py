"""`ml-service predict` as a person runs it: a real process over real files; bad input is one line, exit 2,
and nothing under the output's name."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from src.serving.predictor import Predictor
from src.store.store import StoredModel

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["a wonderful, moving film", "a dull and boring mess", "", "it was fine", "x" * 20_001, "loved it"]


def predict(
    model_dir: Path, *args: str, stdin: bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "src.cli", "predict", *args],
        cwd=ROOT,
        env={**os.environ, "MODEL_DIR": str(model_dir)},
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def write_csv(path: Path, texts: list[str], repeat: int = 1) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ticket", "text", "team"])
        for round_ in range(repeat):
            for index, text in enumerate(texts):
                writer.writerow([f"t{round_}-{index}", text, "support"])
    return path


def leftovers(folder: Path, name: str) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir() if name in entry.name)


def test_every_row_comes_out_in_order_with_its_columns_label_and_version(
    tmp_path: Path, model_dir: Path, stored: StoredModel
) -> None:
    source = write_csv(tmp_path / "tickets.csv", TEXTS, repeat=50)
    result = predict(
        model_dir, "--input", str(source), "--output", str(tmp_path / "scored.parquet"), "--chunk-rows", "7"
    )
    assert result.returncode == 0, result.stderr
    table = pq.read_table(tmp_path / "scored.parquet")
    classes = Predictor(stored).classes
    assert table.column_names == [
        "ticket",
        "text",
        "team",
        "label",
        *[f"probability_{c}" for c in classes],
        "version",
        "error",
    ]
    assert table.num_rows == 300
    assert table.column("ticket").to_pylist()[:7] == [f"t0-{i}" for i in range(6)] + ["t1-0"]
    assert set(table.column("version").to_pylist()) == {stored.version}
    predictor = Predictor(stored)
    rows = table.to_pylist()
    for row in rows[:6]:
        if row["error"] is None:
            expected = predictor.predict(row["text"])
            assert row["label"] == expected.label
            assert expected.probabilities is not None
            assert [row[f"probability_{c}"] for c in classes] == list(expected.probabilities.values())
    assert rows[2]["error"] == "text must contain at least one non-whitespace character"
    assert rows[4]["error"] == "text has 20001 characters; the limit is 20000 (MAX_TEXT_LENGTH)"
    assert rows[4]["label"] is None
    summary = result.stderr.decode().strip().splitlines()[-1]
    assert summary.startswith("300 rows, 100 refused (see the error column) in ")
    assert summary.endswith(f"rows/s) to {tmp_path / 'scored.parquet'}")
    assert leftovers(tmp_path, ".scored") == []


def test_a_pool_of_workers_writes_what_one_process_writes(tmp_path: Path, model_dir: Path) -> None:
    source = write_csv(tmp_path / "in.csv", TEXTS, repeat=40)
    one = predict(model_dir, "--input", str(source), "--output", str(tmp_path / "one.csv"), "--workers", "1")
    two = predict(
        model_dir, "--input", str(source), "--output", str(tmp_path / "two.csv"), "--workers", "2", "--chunk-rows", "13"
    )
    assert one.returncode == two.returncode == 0, two.stderr
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "two.csv").read_bytes()


def test_standard_input_to_standard_output_in_json_lines_with_named_columns(tmp_path: Path, model_dir: Path) -> None:
    lines = b'{"id": 1, "body": "great", "secret": "x"}\n{"id": 2, "body": 3}\nnot json\n'
    result = predict(
        model_dir, "--input", "-", "--output", "-", "--text-column", "body", "--id-column", "id", stdin=lines
    )
    assert result.returncode == 0, result.stderr
    rows = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [row["id"] for row in rows] == [1, 2, None]
    assert "secret" not in rows[0]
    assert rows[0]["label"] in ("positive", "negative")
    assert rows[1]["error"] == "text must be a string, not int"
    assert rows[2]["error"].startswith("line 3 is not JSON")
    assert result.stderr.decode().strip().endswith("to standard output")


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("missing-column", ["--text-column", "review"], "has no column 'review' (columns: 'ticket', 'text', 'team')"),
        ("no-input", [], "cannot read {tmp}/absent.csv: No such file or directory"),
        ("not-parquet", [], "is not a readable Parquet file"),
        ("model", ["--model", "nope"], "no model named 'nope' in"),
        ("version", ["--version", "20200101T000000000Z-000000"], "has no version '20200101T000000000Z-000000'"),
        ("exists", [], "the output {tmp}/out.csv exists; --overwrite replaces it"),
        ("no-folder", [], "the output's folder {tmp}/missing does not exist"),
        ("clash", [], "the input column 'label' would clash with an output column"),
        ("format", [], "cannot tell the output format from"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_under_the_outputs_name(
    tmp_path: Path, model_dir: Path, setup: str, args: list[str], message: str
) -> None:
    source = write_csv(tmp_path / "in.csv", TEXTS)
    output = tmp_path / "out.csv"
    if setup == "no-input":
        source = tmp_path / "absent.csv"
    elif setup == "not-parquet":
        source = tmp_path / "in.parquet"
        source.write_bytes(b"PAR1 and then nothing")
    elif setup == "exists":
        output.write_text("keep me\n")
    elif setup == "no-folder":
        output = tmp_path / "missing" / "out.csv"
    elif setup == "clash":
        source.write_text("label,text\nx,great\n")
    elif setup == "format":
        output = tmp_path / "out.txt"
    result = predict(model_dir, "--input", str(source), "--output", str(output), *args)
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert message.format(tmp=tmp_path) in lines[0]
    if setup == "exists":
        assert output.read_text() == "keep me\n"
    else:
        assert not output.exists()
    assert leftovers(tmp_path, ".out") == []


def test_overwrite_replaces_an_existing_output(tmp_path: Path, model_dir: Path) -> None:
    source = write_csv(tmp_path / "in.csv", TEXTS)
    output = tmp_path / "out.jsonl"
    output.write_text("old\n")
    result = predict(model_dir, "--input", str(source), "--output", str(output), "--overwrite")
    assert result.returncode == 0, result.stderr
    assert len(output.read_text().splitlines()) == len(TEXTS)


def test_a_file_that_breaks_half_way_leaves_nothing_under_the_outputs_name(tmp_path: Path, model_dir: Path) -> None:
    source = tmp_path / "in.csv"
    with source.open("wb") as handle:
        handle.write(b"text\n" + b"a fine film\n" * 300_000)  # 3.6 MB of good rows, more than one chunk
        handle.write(b'"' + b"x" * (5 << 20) + b'"\n')  # one row longer than a CSV block
    output = tmp_path / "out.parquet"
    result = predict(model_dir, "--input", str(source), "--output", str(output), "--chunk-rows", "1000")
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 2
    assert lines == [f"error: {source}: a row is longer than 4 MiB, or a quote is never closed"]
    assert not output.exists()
    assert leftovers(tmp_path, ".out") == []


def test_a_stopped_run_leaves_nothing_under_the_outputs_name(tmp_path: Path, model_dir: Path) -> None:
    source = write_csv(tmp_path / "in.csv", ["a fine film with a long enough text to take a while"], repeat=400_000)
    output = tmp_path / "out.csv"
    process = subprocess.Popen(
        [sys.executable, "-m", "src.cli", "predict", "--input", str(source), "--output", str(output)],
        cwd=ROOT,
        env={**os.environ, "MODEL_DIR": str(model_dir)},
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not leftovers(tmp_path, ".out.csv.partial") and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert stderr.decode().strip().splitlines()[-1] == (
        "error: stopped before the end; nothing was written under the output's name"
    )
    assert not output.exists()
    assert leftovers(tmp_path, ".out") == []


def test_a_parquet_text_column_that_is_not_text_is_refused_row_by_row(tmp_path: Path, model_dir: Path) -> None:
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": pa.array([1, None, 3], pa.int64())}), source)
    result = predict(model_dir, "--input", str(source), "--output", str(tmp_path / "out.jsonl"))
    assert result.returncode == 0, result.stderr
    errors = [orjson.loads(line)["error"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert errors == ["text must be a string, not int", "text is empty (null)", "text must be a string, not int"]
