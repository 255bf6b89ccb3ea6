"""The request path of one POST /predict, counted: the Python calls it makes and the files they are in.

One request through the whole app in process, after 50 to warm it up, under sys.setprofile (asyncio's and this bench's
own calls left out). `--project PATH` counts another checkout, e.g. an older commit.

    python -m bench.request_path [--project PATH] [--files]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import MutableMapping
from pathlib import Path
from types import FrameType
from typing import Any

from bench.app_call import TEXT, predict_request

ROOT = Path(__file__).resolve().parents[1]


def count(project: Path, model_dir: Path, files: bool) -> None:
    """In this process (with `project` first on the path): print the calls of one request."""
    sys.path.insert(0, str(project))
    from src.api.main import create_app
    from src.config import Settings

    app = create_app(Settings(model_dir=model_dir, model_poll_seconds=0))
    app.state.models.load_all()
    scope, receive = predict_request(json.dumps({"text": TEXT}).encode())
    statuses: list[int] = []
    calls: list[str] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    def profile(frame: FrameType, event: str, _: object) -> None:
        if event == "call":
            calls.append(frame.f_code.co_filename)

    async def requests() -> None:
        for _ in range(50):
            await app({**scope, "state": {}}, receive, send)
        sys.setprofile(profile)
        await app({**scope, "state": {}}, receive, send)
        sys.setprofile(None)

    asyncio.run(requests())
    assert set(statuses) == {200}, statuses
    counted = [name for name in calls if "asyncio" not in name and not name.startswith(str(ROOT / "bench"))]
    own = [name for name in counted if name.startswith(str(project / "src"))]
    libraries = sorted({name for name in counted if not name.startswith(str(project / "src"))})
    print(
        f"{project}: {len(counted)} Python calls, {len(own)} of them in src/; "
        f"{len(set(own))} files of src/ and {len(libraries)} of libraries"
    )
    if files:
        for name in sorted(set(own)) + libraries:
            print("   ", name.split("site-packages/")[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=ROOT, help="the checkout whose request path is counted")
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("MODEL_DIR", "models")).resolve())
    parser.add_argument("--files", action="store_true", help="list the files too")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    project = args.project.resolve()
    if args.in_process:
        count(project, args.model_dir, args.files)
        return 0
    with tempfile.TemporaryDirectory() as folder:  # a fresh process, so only that checkout's src is imported
        command = [sys.executable, "-m", "bench.request_path", "--in-process", "--project", str(project)]
        command += ["--model-dir", str(args.model_dir), *(["--files"] if args.files else [])]
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder, "LOG_LEVEL": "warning", "PYTHONPATH": str(project)}
        return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
