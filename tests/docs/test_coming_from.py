"""docs/coming-from.md's Python examples run as written, with KServe's SDK (.venv-kserve), against the
production server: each prints what the page says it prints. (Its `curl` lines run in test_examples.py.)
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.servers import ROOT, Server, free_port, production_command, production_env, running_server

PAGE = ROOT / "docs" / "coming-from.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
KSERVE_PYTHON = ROOT / ".venv-kserve" / "bin" / "python"
# What each example prints, line by line, as its comments say.
PRINTED = [
    ["True True", "True", "label ['positive', 'negative']"],
    ["True True", "['positive', 'negative']"],
    ["True True", "label [b'positive']"],
]


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    tmp_path = tmp_path_factory.mktemp("coming-from")
    port = free_port()
    env = production_env(model_dir, port, tmp_path)
    with running_server(production_command(), port, env, tmp_path, ready_path="/health/ready") as running:
        yield running, env["GRPC_PORT"]


def test_the_page_has_an_example_per_client() -> None:
    assert len(BLOCKS) == len(PRINTED)


@pytest.mark.e2e
@pytest.mark.parametrize("index", range(len(PRINTED)))
def test_each_kserve_sdk_example_prints_what_the_page_says(server: tuple[Server, str], index: int) -> None:
    running, grpc_port = server
    code = BLOCKS[index].replace("localhost:8000", running.base_url.removeprefix("http://"))
    code = code.replace("localhost:8081", f"127.0.0.1:{grpc_port}")
    result = subprocess.run([str(KSERVE_PYTHON), "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == PRINTED[index]
