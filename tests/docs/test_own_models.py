"""docs/own-models.md runs as written: every block in order, as a reader would in an empty folder.

Python blocks that name a file (`# train_my_model.py`) are saved under that name; the others run,
against the server the page starts. `ml-service` lines run the command from this checkout; the
`ml-service serve` line starts the production server (on a free port, which replaces
localhost:8000 in the curl lines and the client code). Every command must succeed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.servers import ROOT, free_port, production_command, production_env, running_server

PAGE = ROOT / "docs" / "own-models.md"
_BLOCK = re.compile(r"```(python|bash)\n(.*?)```", re.S)

pytestmark = pytest.mark.e2e


def blocks() -> list[tuple[str, str]]:
    return [(kind, body) for kind, body in _BLOCK.findall(PAGE.read_text())]


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, f"{shlex.join(command)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_the_page_runs_as_written(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MODEL_DIR": str(tmp_path / "models")}
    outputs: list[tuple[str, str]] = []
    address = ""
    with contextlib.ExitStack() as stack:
        for kind, body in blocks():
            if kind == "python":
                first = body.splitlines()[0]
                if first.startswith("# ") and first.endswith(".py"):
                    (tmp_path / first[2:]).write_text(body)
                    continue
                assert address, "a client block before the server was started"
                outputs.append(
                    (body, run([sys.executable, "-c", body.replace("localhost:8000", address)], tmp_path, env))
                )
                continue
            for line in body.splitlines():
                words = shlex.split(line)
                assignments = dict(w.split("=", 1) for w in words if re.fullmatch(r"[A-Z_]+=.*", w))
                command = [w for w in words if w not in {f"{k}={v}" for k, v in assignments.items()}]
                if command[:2] == ["ml-service", "serve"]:
                    port = free_port()
                    serve_env = production_env(tmp_path / assignments.pop("MODEL_DIR"), port, tmp_path, **assignments)
                    stack.enter_context(
                        running_server(production_command(), port, serve_env, tmp_path, ready_path="/health/ready")
                    )
                    address = f"127.0.0.1:{port}"
                elif command[0] == "ml-service":
                    outputs.append((line, run([sys.executable, "-m", "src.cli", *command[1:]], tmp_path, env)))
                elif command[0] == "python":
                    outputs.append((line, run([sys.executable, *command[1:]], tmp_path, env)))
                elif command[0] == "curl":
                    curl = ["curl", "--fail-with-body", "--max-time", "10", *command[1:]]
                    outputs.append((line, run([w.replace("localhost:8000", address) for w in curl], tmp_path, env)))
                else:
                    raise AssertionError(f"the page runs a command this test does not know: {line}")
    said = dict(outputs)
    first, second = (said[line].strip() for line in said if line.startswith("ml-service models import"))
    assert first < second  # two versions, in publishing order
    answer = json.loads(next(out for line, out in said.items() if "The agent was friendly" in line))
    assert answer["label"] == "happy"
    assert set(answer) == {"label", "scores", "model_version"}
    explained = json.loads(next(out for line, out in said.items() if '"explain": true' in line))
    assert explained["label"] == "unhappy"
    assert len(explained["explanation"]["terms"]) <= 3
    assert next(out for body, out in said.items() if "tritonclient" in body).startswith("[b'happy' b'unhappy'] [[")
    assert next(out for line, out in said.items() if "rollback" in line).strip() == f"support: CURRENT is now {first}"
