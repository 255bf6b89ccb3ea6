"""One reload reaches every worker: POST /model/reload and SIGHUP to the production server (2 workers).

Store polling is off (MODEL_POLL_SECONDS=0), so only the reload can make a worker serve a newly
published version; each check opens fresh connections, which the kernel spreads over both workers.
"""

from __future__ import annotations

import json
import shutil
import signal
import urllib.request
from pathlib import Path

import pytest

from src.model.trainer import ModelTrainer
from tests.e2e.servers import Server, free_port, production_command, production_env, request, running_server, wait_until

pytestmark = pytest.mark.e2e


def _versions_served(server: Server, connections: int = 24) -> set[str]:
    return {
        request(server.url("/predict"), body={"text": "a fine film"}).json()["model_version"]
        for _ in range(connections)
    }


def _reload(server: Server) -> dict[str, object]:
    req = urllib.request.Request(server.url("/model/reload"), method="POST", headers={"X-API-Key": "admin"})
    with urllib.request.urlopen(req, timeout=40) as response:
        answer: dict[str, object] = json.loads(response.read())
        return answer


def test_one_reload_request_and_one_sighup_reach_every_worker(
    model_dir: Path, trained: ModelTrainer, tmp_path: Path
) -> None:
    store = tmp_path / "models"
    shutil.copytree(model_dir, store)
    port = free_port()
    env = production_env(store, port, tmp_path, ADMIN_API_KEYS="admin")
    with running_server(production_command(), port, env, tmp_path, ready_path="/health/ready") as server:
        (old,) = _versions_served(server)
        new = trained.save_model(store)
        assert _versions_served(server) == {old}  # nothing polls: both workers keep the old version

        answer = _reload(server)
        workers = answer["workers"]
        assert isinstance(workers, dict)
        assert len(workers) == 2, answer
        assert answer["missing"] == []
        for report in workers.values():
            assert report["sentiment"]["model_version"] == new
        assert answer["model_version"] == new
        assert _versions_served(server) == {new}

        newest = trained.save_model(store)
        server.process.send_signal(signal.SIGHUP)
        wait_until(lambda: _versions_served(server) == {newest}, 20, "both workers to serve the newest version")
        assert server.process.poll() is None  # the server reloads on SIGHUP; it does not stop
    assert "reload: asked 2 workers" in server.log()
