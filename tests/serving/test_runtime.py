"""The serving core without any protocol: built from the settings, started, asked, stopped."""

from __future__ import annotations

import asyncio
from pathlib import Path

from src.serving.inference import InferenceRequest
from src.serving.runtime import ServingRuntime
from tests.conftest import make_settings


def test_a_runtime_answers_every_protocol_question_without_http(model_dir: Path, tmp_path: Path) -> None:
    runtime = ServingRuntime(make_settings(model_dir, prediction_log_dir=tmp_path / "log"), tmp_path)

    async def session() -> None:
        plane = runtime.data_plane
        assert not plane.ready()  # nothing is loaded before start
        await runtime.start()
        try:
            assert plane.live()
            assert plane.ready()
            assert plane.server_metadata().extensions == ("binary_tensor_data",)
            assert plane.model_ready("sentiment")
            metadata = plane.model_metadata(None)
            assert (metadata.name, metadata.output_labels) == ("sentiment", ["negative", "positive"])
            inference = await plane.infer(InferenceRequest(["A lovely, warm film."], protocol="test"))
            assert inference.predictions[0].label == "positive"
            assert inference.feedback_tokens is not None  # the log is on: the asker may correct the answer
            quiet = await plane.infer(InferenceRequest(["A lovely, warm film."], protocol="test", feedback=False))
            assert quiet.feedback_tokens is None
        finally:
            await runtime.stop()

    asyncio.run(session())
    assert list((tmp_path / "log").rglob("*.jsonl*")), "stop writes the prediction log out"
