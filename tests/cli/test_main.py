"""The `ml-service` command: its subcommands, exit statuses, and the installed command serving for real."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from src.cli import main
from tests.e2e.servers import ROOT, free_port, request, running_server


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in ("serve", "train", "models"):
        assert command in out


def test_models_and_train_are_the_store_cli_and_the_train_script(
    model_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["models", "--model-dir", str(model_dir), "list"]) == 0
    assert "sentiment:" in capsys.readouterr().out
    assert main(["models", "--model-dir", str(model_dir), "rollback", "nothing-here"]) == 2
    assert main(["train", "--data", str(tmp_path / "missing.csv"), "--model-dir", str(tmp_path)]) == 2
    with pytest.raises(SystemExit) as exited:
        main(["train", "--help"])
    assert exited.value.code == 0
    assert "usage: ml-service train" in capsys.readouterr().out


def test_serve_takes_its_settings_from_the_environment_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "9000"]) == 2
    assert "PORT=9000 ml-service serve" in capsys.readouterr().err
    assert main(["serve", "--help"]) == 0


@pytest.mark.e2e
def test_pip_install_gives_a_command_that_serves(model_dir: Path, tmp_path: Path) -> None:
    """`pip install .` (a wheel built by the declared backend), then the command alone, outside the checkout."""
    wheel_dir, target = tmp_path / "wheel", tmp_path / "installed"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheel_dir), str(ROOT)], check=True, timeout=300)
    (wheel,) = wheel_dir.glob("ml_service-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True, timeout=300)
    command = target / "bin" / "ml-service"
    env = {"PYTHONPATH": str(target), "PATH": os.environ["PATH"]}  # the installed package, not this checkout
    listed = subprocess.run(
        [str(command), "models", "--model-dir", str(model_dir), "list"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert "sentiment:" in listed.stdout
    port = free_port()
    serve_env = {**env, "MODEL_DIR": str(model_dir), "HOST": "127.0.0.1", "PORT": str(port), "WORKERS": "1"}
    serve_env["GRPC_PORT"] = str(free_port())
    serve_env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    with running_server([str(command), "serve"], port, serve_env, tmp_path, ready_path="/health/ready") as server:
        answer = request(server.url("/predict"), body={"text": "A wonderful, moving film."})
        assert answer.status == 200
        assert answer.json()["label"] == "positive"
        assert str(target) in (Path("/proc") / str(server.process.pid) / "cmdline").read_text()
