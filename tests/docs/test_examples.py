"""The documentation's examples run: every `curl` line against a real server, every relative link resolves.

Each `curl` command in a ```bash block of README.md or docs/*.md is run as written, with
localhost:8000 pointed at a production server started here (two workers; the default model and
one named `spam`, as the examples use) and `--fail-with-body` added, so an example that answers an
error fails this test.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SECOND_MODEL
from tests.e2e.servers import ROOT, Server, free_port, production_command, production_env, running_server

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"```bash\n(.*?)```", re.S)
_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def _curl_examples() -> list[tuple[str, str]]:
    examples = []
    for page in PAGES:
        for block in _BLOCK.findall(page.read_text()):
            command = ""
            for line in block.splitlines():
                command += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
                if not line.endswith("\\"):
                    if command.lstrip().startswith("curl ") and "localhost:8000" in command:
                        examples.append((page.name, command.split(" # ")[0].strip()))
                    command = ""
    return examples


EXAMPLES = _curl_examples()


@pytest.fixture(scope="module")
def server(two_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp_path = tmp_path_factory.mktemp("docs-examples")
    store = tmp_path / "models"
    shutil.copytree(two_models_dir, store)
    shutil.copytree(store / SECOND_MODEL, store / "spam")  # the docs' second model
    port = free_port()
    env = production_env(store, port, tmp_path)
    with running_server(production_command(), port, env, tmp_path, ready_path="/health/ready") as running:
        yield running


def test_the_docs_have_examples_to_run() -> None:
    pages = {page for page, _ in EXAMPLES}
    assert {"README.md", "http-api.md", "getting-started.md"} <= pages
    assert len(EXAMPLES) >= 8


@pytest.mark.e2e
@pytest.mark.parametrize(("page", "command"), EXAMPLES, ids=[f"{p}:{c[:60]}" for p, c in EXAMPLES])
def test_every_curl_example_answers_2xx(server: Server, page: str, command: str) -> None:
    runnable = command.replace("localhost:8000", server.base_url.removeprefix("http://"), 1)
    runnable = runnable.replace("curl ", "curl --fail-with-body --max-time 10 ", 1)
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", runnable], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, f"{page}: {command}\n{result.stdout}\n{result.stderr}"
    assert result.stdout.strip(), f"{page}: {command} printed nothing"


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
