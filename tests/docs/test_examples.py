"""The documentation's examples run: every `curl` line against a real server, every relative link resolves.

Each `curl` command in a ```bash block of README.md or docs/*.md is run as written, with
localhost:8000 pointed at a production server started here (two workers; the default model and
one named `spam`, as the examples use) and `--fail-with-body` added, so an example that answers an
error fails this test; a JSON answer is checked for the shape its route promises. The `ml-service`
lines that need no file of the reader's (`models list`, `--help`) run too, against the same store.
Examples that need the reader's data or a cluster (`--data reviews.csv`, `kubectl`) are not run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SECOND_MODEL
from tests.e2e.servers import ROOT, Server, free_port, production_command, production_env, running_server

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"```bash\n(.*?)```", re.S)
_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def _commands() -> list[tuple[str, str]]:
    """(page, command) for every command line of every ```bash block, continuation lines joined."""
    found = []
    for page in PAGES:
        for block in _BLOCK.findall(page.read_text()):
            command = ""
            for line in block.splitlines():
                command += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
                if not line.endswith("\\"):
                    found.append((page.name, command.split(" # ")[0].strip()))
                    command = ""
    return found


# Pages whose examples run in a test of their own, in order, against a server they configure
# (coming-from.md's Python examples run in tests/docs/test_coming_from.py, its curl lines here).
OWN_TESTS = {"own-models.md": "tests/docs/test_own_models.py", "batch-scoring.md": "tests/docs/test_batch_scoring.py"}
EXAMPLES = [
    (page, c) for page, c in _commands() if c.startswith("curl ") and "localhost:8000" in c and page not in OWN_TESTS
]
COMMANDS = [
    (page, c)
    for page, c in _commands()
    if page not in OWN_TESTS
    and c.startswith("ml-service ")
    and (c.endswith("--help") or c.split()[1:3] == ["models", "list"])
]
# What a route's JSON answer must hold, by a part of its path.
SHAPES = {  # the first part found decides
    ":predict": {"predictions"},
    "/invocations": {"predictions"},
    "/v1/models/": {"name", "ready"},
    "/v1/models": {"models"},
    "/drift": {"status", "drifting", "signals"},
    "/feedback": {"request_id", "label", "model", "version"},
    "/predict/batch": {"predictions", "model_version"},
    "/predict": {"label", "probabilities", "model_version"},
    "/infer": {"model_name", "model_version", "outputs"},
    "/health/ready": {"status"},
    "/model": {"version", "engine"},
}


@pytest.fixture(scope="module")
def server(two_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp_path = tmp_path_factory.mktemp("docs-examples")
    store = tmp_path / "models"
    shutil.copytree(two_models_dir, store)
    shutil.copytree(store / SECOND_MODEL, store / "spam")  # the docs' second model
    port = free_port()
    env = production_env(store, port, tmp_path, PREDICTION_LOG_DIR=str(tmp_path / "logs"))  # for the feedback example
    with running_server(production_command(), port, env, tmp_path, ready_path="/health/ready") as running:
        yield running


def test_the_docs_have_examples_to_run() -> None:
    pages = {page for page, _ in EXAMPLES}
    assert {"README.md", "http-api.md", "getting-started.md"} <= pages
    assert len(EXAMPLES) >= 8
    assert len(COMMANDS) >= 3


@pytest.mark.e2e
@pytest.mark.parametrize(("page", "command"), EXAMPLES, ids=[f"{p}:{c[:60]}" for p, c in EXAMPLES])
def test_every_curl_example_answers_2xx(server: Server, page: str, command: str) -> None:
    runnable = command.replace("localhost:8000", server.base_url.removeprefix("http://"))  # each curl of a pipeline
    runnable = runnable.replace("curl ", "curl --fail-with-body --max-time 10 ")
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", runnable], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, f"{page}: {command}\n{result.stdout}\n{result.stderr}"
    assert result.stdout.strip(), f"{page}: {command} printed nothing"
    url = [word for word in shlex.split(command) if "localhost:8000" in word][-1]  # what printed the answer
    if url.endswith("/models") and "/v1/" not in url:
        assert {model["name"] for model in json.loads(result.stdout)} >= {"sentiment", "spam"}
        return
    for part, keys in SHAPES.items():
        if part in url:
            answer = json.loads(result.stdout)
            assert keys <= set(answer), f"{page}: {command} answered {sorted(answer)}"
            return


@pytest.mark.e2e
@pytest.mark.parametrize(("page", "command"), COMMANDS, ids=[f"{p}:{c}" for p, c in COMMANDS])
def test_every_self_contained_command_example_runs(server: Server, page: str, command: str) -> None:
    store = server.log_path.parent / "models"
    cli = [sys.executable, "-m", "src.cli", *shlex.split(command)[1:]]
    result = subprocess.run(
        cli, cwd=ROOT, env={**os.environ, "MODEL_DIR": str(store)}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"{page}: {command}\n{result.stderr}"
    assert "usage: ml-service" in result.stdout or "sentiment:" in result.stdout, result.stdout


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    for target in _LINK.findall(page.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


def test_commands_in_examples_are_the_installed_ones() -> None:
    """The README shows `ml-service` subcommands that exist."""
    from src.cli import COMMANDS

    readme = (ROOT / "README.md").read_text()
    used = {shlex.split(line)[1] for line in re.findall(r"^ml-service \w+.*$", readme, re.M)}
    assert used <= set(COMMANDS), used - set(COMMANDS)
