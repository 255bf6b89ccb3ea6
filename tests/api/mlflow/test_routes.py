"""MLflow's scoring protocol with plain HTTP requests, in each of its formats."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from src import API_VERSION
from src.api.main import create_app
from tests.conftest import SECOND_MODEL, make_settings
from tests.tenants.test_keys import sha, write_keys

TEXTS = ["A wonderful, moving film.", "Dull, boring and far too long."]
LABELS = ["positive", "negative"]

FORMATS = {
    "dataframe_split": {"dataframe_split": {"columns": ["text"], "data": [[t] for t in TEXTS]}},
    "dataframe_split with index and other columns": {
        "dataframe_split": {"index": [0, 1], "columns": ["id", "text"], "data": [[1, TEXTS[0]], [2, TEXTS[1]]]}
    },
    "dataframe_split without columns": {"dataframe_split": {"data": [[t] for t in TEXTS]}},
    "dataframe_records": {"dataframe_records": [{"text": t} for t in TEXTS]},
    "instances": {"instances": TEXTS},
    "instances as records": {"instances": [{"text": t} for t in TEXTS]},
    "inputs": {"inputs": TEXTS},
    "inputs as columns": {"inputs": {"text": TEXTS}, "params": {}},
    "a column of another name": {"dataframe_records": [{"review": t} for t in TEXTS]},
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_each_json_format_gives_the_labels(client: TestClient, name: str) -> None:
    response = client.post("/invocations", json=FORMATS[name])
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": LABELS}


def test_csv_with_a_header_row_and_quoted_commas(client: TestClient) -> None:
    body = 'id,text\n1,"A wonderful, moving film."\n2,"Dull, boring and far too long."\n'
    response = client.post("/invocations", content=body, headers={"Content-Type": "text/csv; charset=utf-8"})
    assert response.json() == {"predictions": LABELS}


def test_a_csv_of_a_million_empty_lines_is_counted_not_kept(client: TestClient) -> None:
    import tracemalloc

    body = b"text\n" + b"\n" * 1_000_000  # within MAX_BODY_BYTES; as lists, about 60 MB
    tracemalloc.start()
    try:
        response = client.post("/invocations", content=body, headers={"Content-Type": "text/csv"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 400
    assert "batch has 1000000 texts; the limit is 256 (MAX_BATCH_SIZE)" in response.json()["message"]
    assert peak < 30_000_000, peak  # the body and its text (about 5 MB each as str), not a list per row


def test_ping_version_and_a_named_model(two_models_dir: Path) -> None:
    with TestClient(create_app(make_settings(two_models_dir))) as client:
        assert client.get("/ping").status_code == 200
        assert client.get("/version").text == API_VERSION
        named = client.post(f"/models/{SECOND_MODEL}/invocations", json={"inputs": ["buy now, free money"]})
        assert named.status_code == 200, named.text
        missing = client.post("/models/nope/invocations", json={"inputs": ["x"]})
        assert missing.status_code == 404
        assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"{", "application/json", 400, "not valid JSON"),
        (b'{"instances": ["x"], "inputs": ["y"]}', "application/json", 400, "exactly one of"),
        (b'{"data": ["x"]}', "application/json", 400, "exactly one of"),
        (b'{"dataframe_split": ["x"]}', "application/json", 400, "dataframe_split must be an object"),
        (
            b'{"dataframe_split": {"columns": ["a", "b"], "data": [["x", "y"]]}}',
            "application/json",
            400,
            "named 'text'",
        ),
        (b'{"dataframe_split": {"columns": ["text"], "data": [["x", "y"]]}}', "application/json", 400, "does not fit"),
        (b'{"dataframe_records": [{"text": 3}]}', "application/json", 400, "must be a text, not int"),
        (b'{"instances": ["  "]}', "application/json", 400, "non-whitespace character (at instances.0)"),
        (b"text\n", "text/csv", 400, "at least one text is needed"),
        (b"", "text/csv", 400, "needs a header row"),
        (b"text\n\xff\n", "text/csv", 400, "not UTF-8"),
        (b"x", "text/plain", 415, "application/json or text/csv"),
    ],
)
def test_a_malformed_invocation_is_mlflows_error_naming_the_problem(
    client: TestClient, body: bytes, content_type: str, status: int, message: str
) -> None:
    response = client.post("/invocations", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text
    error = response.json()
    assert error["error_code"] == "BAD_REQUEST"
    assert message in error["message"]


def test_keys_scopes_and_models_as_on_every_route(model_dir: Path, tmp_path: Path) -> None:
    keys = f"""  - id: reader
    sha256: {sha("reader-key")}
    models: ["*"]
    scopes: [read]
  - id: other-model
    sha256: {sha("other-key")}
    models: [spam]
    scopes: [predict]
"""
    settings = make_settings(model_dir, api_keys_file=write_keys(tmp_path / "keys.yaml", keys))
    with TestClient(create_app(settings)) as keyed:
        body = {"inputs": TEXTS}
        assert keyed.post("/invocations", json=body).json()["error_code"] == "UNAUTHENTICATED"
        refused = keyed.post("/invocations", json=body, headers={"X-API-Key": "reader-key"})
        assert (refused.status_code, refused.json()["error_code"]) == (403, "PERMISSION_DENIED")
        elsewhere = keyed.post("/invocations", json=body, headers={"X-API-Key": "other-key"})
        # Not its model: for this key the default model does not exist, and no answer names it.
        assert (elsewhere.status_code, elsewhere.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
        assert "sentiment" not in elsewhere.json()["message"]
        assert keyed.get("/ping").status_code == 200  # health needs no key
