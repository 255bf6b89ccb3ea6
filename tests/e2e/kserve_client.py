"""Run by `.venv-kserve/bin/python` (KServe's SDK and pandas, not the service's venv): every call a
migrating team's client makes, unchanged, printed as one JSON object for tests/e2e/test_clients.py.

    python tests/e2e/kserve_client.py BASE_URL GRPC_ADDRESS MODEL TEXTS_JSON
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx
import pandas
from kserve import (
    InferenceGRPCClient,
    InferenceRESTClient,
    InferInput,
    InferRequest,
    RESTConfig,
)


def _labels(response: Any) -> list[str]:
    output = next(output for output in response.outputs if output.name == "label")
    return [label.decode() if isinstance(label, bytes) else str(label) for label in output.as_numpy().tolist()]


def _request(model: str, texts: list[str]) -> Any:
    return InferRequest(model_name=model, infer_inputs=[InferInput("text", [len(texts)], "BYTES", data=texts)])


async def _rest_v2(base_url: str, model: str, texts: list[str]) -> dict[str, Any]:
    client = InferenceRESTClient(RESTConfig(protocol="v2"))
    try:
        response = await client.infer(base_url, _request(model, texts), model_name=model)
        return {
            "live": await client.is_server_live(base_url),
            "ready": await client.is_server_ready(base_url),
            "model_ready": await client.is_model_ready(base_url, model),
            "labels": _labels(response),
        }
    finally:
        await client.close()


async def _rest_v1(base_url: str, model: str, texts: list[str]) -> dict[str, Any]:
    client = InferenceRESTClient(RESTConfig(protocol="v1"))
    try:
        response = await client.infer(base_url, {"instances": texts}, model_name=model)
        return {
            "live": await client.is_server_live(base_url),
            "model_ready": await client.is_model_ready(base_url, model),
            "labels": response["predictions"],
        }
    finally:
        await client.close()


async def _grpc(address: str, model: str, texts: list[str]) -> dict[str, Any]:
    client = InferenceGRPCClient(address)
    try:
        response = await client.infer(_request(model, texts))
        return {
            "live": await client.is_server_live(),
            "ready": await client.is_server_ready(),
            "model_ready": await client.is_model_ready(model),
            "labels": _labels(response),
        }
    finally:
        await client.close()


def _mlflow(base_url: str, texts: list[str]) -> dict[str, Any]:
    """The bodies MLflow's own client builds from a pandas DataFrame (mlflow.models.utils / pyfunc scoring)."""
    frame = pandas.DataFrame({"text": texts})
    bodies: dict[str, tuple[str, str]] = {
        "dataframe_split": ("application/json", json.dumps({"dataframe_split": frame.to_dict(orient="split")})),
        "dataframe_records": ("application/json", json.dumps({"dataframe_records": frame.to_dict(orient="records")})),
        "instances": ("application/json", json.dumps({"instances": texts})),
        "inputs": ("application/json", json.dumps({"inputs": frame.to_dict(orient="list")})),
        "csv": ("text/csv", frame.to_csv(index=False)),
    }
    answers: dict[str, Any] = {}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        answers["ping"] = client.get("/ping").status_code
        answers["version"] = client.get("/version").text
        for name, (content_type, body) in bodies.items():
            response = client.post("/invocations", content=body, headers={"Content-Type": content_type})
            answers[name] = response.json()["predictions"] if response.status_code == 200 else response.text
    return answers


async def main(base_url: str, address: str, model: str, texts: list[str]) -> dict[str, Any]:
    return {
        "rest_v2": await _rest_v2(base_url, model, texts),
        "rest_v1": await _rest_v1(base_url, model, texts),
        "grpc": await _grpc(address, model, texts),
        "mlflow": _mlflow(base_url, texts),
    }


if __name__ == "__main__":
    base, grpc_address, model_name, given = sys.argv[1:5]
    print(json.dumps(asyncio.run(main(base, grpc_address, model_name, json.loads(given)))))  # noqa: T201
