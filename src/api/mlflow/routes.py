"""MLflow's scoring protocol, a thin adapter over the data plane: what `mlflow models serve` (and
SageMaker's container contract) answers for a scikit-learn model, so their clients work unchanged.

- `POST /invocations` scores with the default model, `POST /models/{name}/invocations` with a named one.
  The body is `application/json` with exactly one of `dataframe_split` (`{"columns": [...], "data":
  [[...]]}`), `dataframe_records` (`[{"text": ...}]`), `instances` or `inputs` (a list of texts or of
  records, or `{"text": [...]}`), and optionally `params` (accepted, unused: a text model takes none);
  or `text/csv` with a header row. A table's text is its `text` column, or its only one. The answer is
  `{"predictions": [labels]}`.
- `GET /ping`: 200 when every required model is ready (the rule of /health/ready), else 503.
- `GET /version`: the server's version, as plain text.

Errors are MLflow's `{"error_code": ..., "message": ...}`: BAD_REQUEST (400) for a malformed request or a
broken text rule.
"""

from __future__ import annotations

import csv
import io
import itertools
from typing import Any

from fastapi import APIRouter, Request, Response

from src import API_VERSION, tracing
from src.api.deps import DataPlaneDep, infer, inference_request, media_type
from src.api.error_responses import MLFLOW_ERRORS, not_ready
from src.api.request_bodies import json_object, texts_of_columns, texts_of_rows, texts_of_table
from src.api.routing import policy
from src.documents import encode_json
from src.errors import BadRequestError
from src.serving.dataplane import DataPlane
from src.serving.text_rules import Location, TextLimits, check_batch_size

router = APIRouter(tags=["mlflow scoring protocol"])
ERRORS = MLFLOW_ERRORS.name
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
PARAMS = "params"


def _json_texts(body: bytes, limits: TextLimits) -> tuple[list[str], Location]:
    request = json_object(body, "the invocation")
    given = [key for key in FORMATS if key in request]
    unknown = set(request) - {*FORMATS, PARAMS}
    if len(given) != 1 or unknown:
        raise BadRequestError(
            f"the invocation must hold exactly one of {', '.join(FORMATS)} (and optionally {PARAMS}); "
            f"got {', '.join(sorted(request)) or 'none'}"
        )
    name = given[0]
    value = request[name]
    if name == "dataframe_split":
        if not isinstance(value, dict):
            raise BadRequestError("dataframe_split must be an object with columns and data (pandas' split orient)")
        return texts_of_table(value.get("columns"), value.get("data"), limits, (name,)), (name, "data")
    if name != "dataframe_records" and isinstance(value, dict):
        return texts_of_columns(value, limits, (name,)), (name,)
    return texts_of_rows(value, limits, (name,)), (name,)


def _csv_texts(body: bytes, limits: TextLimits) -> list[str]:
    """The texts of a CSV body, read row by row: past MAX_BATCH_SIZE rows the rest are only counted, for
    the refusal (a body of a million empty lines is cheap to send and must not become a million lists)."""
    try:
        reader = csv.reader(io.StringIO(body.decode("utf-8"), newline=""))
        rows = list(itertools.islice(reader, limits.max_batch_size + 2))  # the header, the texts, one more
        if len(rows) > limits.max_batch_size + 1:
            check_batch_size(len(rows) - 1 + sum(1 for _ in reader), limits, ("csv", "data"))
    except UnicodeDecodeError:
        raise BadRequestError("the CSV body is not UTF-8 text") from None
    except csv.Error as error:
        raise BadRequestError(f"the CSV body cannot be read ({error})") from None
    if not rows:
        raise BadRequestError("the CSV body needs a header row and a row per text")
    return texts_of_table(rows[0], rows[1:], limits, ("csv",))


async def invocations(request: Request) -> Response:
    """Classify a table's texts; `{"predictions": [labels]}`."""
    plane: DataPlane = request.app.state.data_plane
    body = await request.body()
    with tracing.child("parse"):
        if media_type(request) == "application/json":
            texts, where = _json_texts(body, plane.limits)
        else:
            texts, where = _csv_texts(body, plane.limits), ("csv", "data")
    inference = await infer(
        plane,
        inference_request(request, texts, model=request.path_params.get("name"), protocol="mlflow", feedback=False),
        lambda index: (*where, index),
        where,
    )
    predictions = [prediction.label for prediction in inference.predictions]
    return Response(encode_json({"predictions": predictions}), media_type="application/json")


_TYPES = ("application/json", "text/csv")
_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}, "text/csv": {"schema": {"type": "string"}}},
    }
}
_NAME = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
router.add_api_route(
    "/invocations",
    invocations,
    methods=["POST"],
    summary="Score (MLflow) with the default model",
    openapi_extra=policy(scope="predict", shed=True, errors=ERRORS, direct=True, accepts=_TYPES, **_BODY),
)
router.add_api_route(
    "/models/{name}/invocations",
    invocations,
    methods=["POST"],
    summary="Score (MLflow) with a named model",
    openapi_extra=policy(
        scope="predict", shed=True, errors=ERRORS, direct=True, accepts=_TYPES, parameters=_NAME, **_BODY
    ),
)


@router.get("/ping", summary="Readiness (MLflow)", openapi_extra=policy(errors=ERRORS))
async def ping(plane: DataPlaneDep) -> Response:
    """200 when every required model is ready, else 503 with Retry-After."""
    if plane.ready():
        return Response("\n", media_type="application/json")
    return not_ready("\n")


@router.get("/version", summary="Server version (MLflow)", openapi_extra=policy(errors=ERRORS))
async def version() -> Response:
    """The server's version, as plain text."""
    return Response(API_VERSION, media_type="text/plain")
