"""docs/batch-scoring.md runs as written: every block in order, as a reader would in an empty folder,
with the trained model in MODEL_DIR. Python blocks that name a file are saved under that name; `ml-service`
lines run the command from this checkout, `python` lines this interpreter. What the page says they print,
they print."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.e2e.servers import ROOT

PAGE = ROOT / "docs" / "batch-scoring.md"
_BLOCK = re.compile(r"```(python|bash)\n(.*?)```", re.S)

pytestmark = pytest.mark.e2e


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{shlex.join(command)}\n{result.stdout}\n{result.stderr}"
    return result


def test_the_page_runs_as_written(tmp_path: Path, model_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MODEL_DIR": str(model_dir), "PYSPARK_PYTHON": sys.executable}
    said: dict[str, subprocess.CompletedProcess[str]] = {}
    for kind, body in _BLOCK.findall(PAGE.read_text()):
        if kind == "python":
            first = body.splitlines()[0]
            assert first.startswith("# "), first
            assert first.endswith(".py"), first
            (tmp_path / first[2:]).write_text(body)
            continue
        for line in body.splitlines():
            command = shlex.split(line)
            if command[0] == "ml-service":
                said[line] = run([sys.executable, "-m", "src.cli", *command[1:]], tmp_path, env)
            elif command[0] == "python":
                said[line] = run([sys.executable, *command[1:]], tmp_path, env)
            else:
                raise AssertionError(f"the page runs a command this test does not know: {line}")
    page = PAGE.read_text()
    first = next(result for line, result in said.items() if "--output scored.parquet" in line)
    summary = first.stderr.strip().splitlines()[-1]
    shown = re.search(r"\n(1,000 rows, 200 refused \(see the error column\) in )[\d.]+ s", page)
    assert shown is not None
    assert summary.startswith(shown.group(1))
    assert summary.endswith("to scored.parquet")
    table = pq.read_table(tmp_path / "scored.parquet")
    assert table.column_names[:4] == ["review_id", "review", "stars", "label"]
    assert table.column("error").to_pylist()[2] == "text must contain at least one non-whitespace character"
    spark = pq.read_table(tmp_path / "scored-on-spark.parquet")
    assert spark.column("label").to_pylist() == table.column("label").to_pylist()
    assert (tmp_path / "scored.jsonl").read_text().count("\n") == 1_000
    printed = said["python score_reviews.py"].stdout.splitlines()
    assert printed == ["800 scored", "200 refused"]
    assert "This prints `800 scored` and `200 refused`." in page
