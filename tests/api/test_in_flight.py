"""Requests in flight count every protocol while they run (the autoscaling signal), and the shedding
limit is published beside them."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from src.api.grpc.protocol import open_inference_pb2 as oip
from src.api.grpc.service import InferenceService
from src.serving.dataplane import DataPlane
from src.serving.inference import Inference, InferenceRequest
from src.tenants.access import Access
from tests.api.grpc.test_service import Context


def _gauge(name: str, transport: str) -> float:
    return REGISTRY.get_sample_value(name, {"transport": transport}) or 0.0


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """The in-flight gauges (http, grpc) as each inference saw them while it ran."""
    observed: list[tuple[float, float]] = []
    infer = DataPlane.infer

    async def observing(self: DataPlane, request: InferenceRequest) -> Inference:
        observed.append(
            (_gauge("mlservice_requests_in_flight", "http"), _gauge("mlservice_requests_in_flight", "grpc"))
        )
        return await infer(self, request)

    monkeypatch.setattr(DataPlane, "infer", observing)
    return observed


def test_http_and_grpc_requests_are_in_flight_while_they_run(
    client: TestClient, seen: list[tuple[float, float]]
) -> None:
    http_before = _gauge("mlservice_requests_in_flight", "http")
    assert client.post("/predict", json={"text": "A fine film."}).status_code == 200
    assert seen[-1][0] == http_before + 1
    assert _gauge("mlservice_requests_in_flight", "http") == http_before
    limit = client.app.state.settings.max_pending_requests  # type: ignore[attr-defined]
    assert _gauge("mlservice_requests_in_flight_limit", "http") == limit  # MAX_PENDING_REQUESTS, set at start

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        app: Any = client.app
        service = InferenceService(app.state.data_plane, Access(None, None, None), loop, rollout_key_header="x")
        message = oip.ModelInferRequest(model_name="sentiment")
        message.inputs.add(name="text", datatype="BYTES", shape=[1]).contents.bytes_contents.append(b"A fine film.")
        grpc_before = _gauge("mlservice_requests_in_flight", "grpc")
        service.ModelInfer(message, Context())
        assert seen[-1][1] == grpc_before + 1
        assert _gauge("mlservice_requests_in_flight", "grpc") == grpc_before
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
