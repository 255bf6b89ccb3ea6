"""Keys from API_KEYS_FILE over HTTP: scopes, models, rates, per-tenant views, audit lines, reloads."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from src.api.main import create_app
from src.tenants import access
from tests.conftest import SECOND_MODEL, make_settings
from tests.tenants.test_keys import KEY_A, KEY_B, sha, write_keys

A = {"X-API-Key": "secret-a"}
B = {"X-API-Key": "secret-b"}
TEXT = {"text": "a fine film"}
METRICS_TOKEN = "a-metrics-token-for-tests"
SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}
V2_TEXT = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a fine film"]}]}


@pytest.fixture
def keyed(two_models_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(
        two_models_dir,
        api_keys_file=write_keys(tmp_path / "keys.yaml", KEY_A + KEY_B),
        prediction_log_dir=tmp_path / "logs",
        metrics_token=METRICS_TOKEN,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_key_gets_its_models_and_scopes_and_403_naming_what_is_missing(keyed: TestClient) -> None:
    assert keyed.post("/predict", json=TEXT, headers=A).status_code == 200
    # Another key's model does not exist for this key: the same 404 as a name nothing serves.
    other = keyed.post(f"/models/{SECOND_MODEL}/predict", json=TEXT, headers=A)
    assert other.status_code == 404
    assert other.json()["detail"] == f"no model named '{SECOND_MODEL}' is served here (models: sentiment)"
    v2 = keyed.post(f"/v2/models/{SECOND_MODEL}/infer", json=V2_TEXT, headers=A)
    assert v2.status_code == 404
    assert v2.json()["error"] == f"no model named '{SECOND_MODEL}' is served here (models: sentiment)"
    assert keyed.post("/v2/models/sentiment/infer", json=V2_TEXT, headers=A).status_code == 200
    feedback = keyed.post("/feedback", json={"feedback_token": "x.y", "label": "negative"}, headers=A)
    assert feedback.status_code == 403
    assert "does not have the 'feedback' scope (it has: predict)" in feedback.json()["detail"]
    for path in ("/models", "/model", "/models/sentiment/drift", "/v2/models/sentiment"):
        assert keyed.get(path, headers=A).status_code == 403, path
    assert keyed.post(f"/models/{SECOND_MODEL}/predict", json=TEXT, headers=B).status_code == 200
    assert keyed.post("/model/reload", headers=B).status_code == 403  # no key has the admin scope


def test_a_key_sees_only_its_models(keyed: TestClient, tmp_path: Path) -> None:
    assert [m["name"] for m in keyed.get("/models", headers=B).json()] == ["sentiment", SECOND_MODEL]
    narrow = f"""  - id: reader
    sha256: {sha("secret-r")}
    models: [sentiment]
    scopes: [read]
"""
    write_keys(tmp_path / "keys.yaml", KEY_A + KEY_B + narrow)
    keyed.app.state.access.refresh(force=True)  # type: ignore[attr-defined]
    reader = {"X-API-Key": "secret-r"}
    assert [m["name"] for m in keyed.get("/models", headers=reader).json()] == ["sentiment"]
    unknown = keyed.get("/models/nope", headers=reader)
    assert unknown.status_code == 404
    assert "(models: sentiment)" in unknown.json()["detail"]  # the 404 names only its own models
    # A model the key may not use answers as a name nothing serves: the same 404, naming only its own.
    for name, path in [(SECOND_MODEL, f"/models/{SECOND_MODEL}/rollout"), ("nope", "/models/nope/rollout")]:
        hidden = keyed.get(path, headers=reader)
        assert hidden.status_code == 404, path
        assert hidden.json()["detail"] == f"no model named {name!r} is served here (models: sentiment)"


def test_past_its_rate_a_key_gets_429_and_another_key_is_not_slowed(keyed: TestClient) -> None:
    statuses = [keyed.post("/predict", json=TEXT, headers=A) for _ in range(30)]
    refused = [answer for answer in statuses if answer.status_code == 429]
    assert refused, [answer.status_code for answer in statuses]
    assert {answer.status_code for answer in statuses} == {200, 429}
    assert int(refused[0].headers["retry-after"]) >= 1
    assert "over its request rate of 20 per second" in refused[0].json()["detail"]
    assert all(keyed.post("/predict", json=TEXT, headers=B).status_code == 200 for _ in range(30))
    exposition = keyed.get("/metrics", headers=SCRAPER).text
    assert re.search(r'mlservice_key_requests_total\{key="team-a",outcome="rate_limited"\} [1-9]', exposition)
    assert re.search(r'mlservice_key_requests_total\{key="team-b",outcome="accepted"\} [1-9]', exposition)


def test_refusals_and_admin_actions_are_audit_lines(
    two_models_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    admin = f"""  - id: ops
    sha256: {sha("secret-ops")}
    models: ["*"]
    scopes: [admin]
"""
    settings = make_settings(two_models_dir, api_keys_file=write_keys(tmp_path / "keys.yaml", KEY_A + admin))
    with TestClient(create_app(settings)) as client, caplog.at_level(logging.INFO, logger="src.audit"):
        logging.getLogger("src.audit").addHandler(caplog.handler)
        try:
            client.post(f"/models/{SECOND_MODEL}/predict", json=TEXT, headers=A)
            client.get("/models", headers=A)
            assert client.post("/model/reload", headers={"X-API-Key": "secret-ops"}).status_code == 200
        finally:
            logging.getLogger("src.audit").removeHandler(caplog.handler)
    lines = [json.loads(record.getMessage()) for record in caplog.records if record.name == "src.audit"]
    assert [(line["event"], line["key"], line["route"], line["model"], line["outcome"]) for line in lines] == [
        ("refused", "team-a", "/models/{name}/predict", SECOND_MODEL, "forbidden"),
        ("refused", "team-a", "/models", None, "forbidden"),
        ("admin", "ops", "/model/reload", None, "done"),
    ]
    assert "secret" not in caplog.text


def test_a_changed_file_is_taken_and_a_bad_one_keeps_the_keys_in_force(
    keyed: TestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys.yaml"
    access = keyed.app.state.access  # type: ignore[attr-defined]
    write_keys(path, KEY_B)  # A is revoked
    os.utime(path, ns=(1, 1))  # a new state even within the file system's timestamp resolution
    access.refresh(force=True)
    assert keyed.post("/predict", json=TEXT, headers=A).status_code == 403
    path.write_text("keys: [")
    with caplog.at_level(logging.ERROR, logger="src.tenants.access"):
        access.refresh(force=True)
    assert "cannot be used; keeping the 1 keys in force" in caplog.text
    assert keyed.post("/predict", json=TEXT, headers=B).status_code == 200


def test_without_keys_everything_but_admin_is_open(client: TestClient) -> None:
    assert client.post("/predict", json=TEXT).status_code == 200
    assert client.get("/models").status_code == 200
    assert client.post("/model/reload").status_code == 401


def test_v2_answers_carry_a_token_per_text_and_corrections_have_their_own_rate(
    two_models_dir: Path, tmp_path: Path
) -> None:
    slow = f"""  - id: slow-feedback
    sha256: {sha("secret-s")}
    models: ["*"]
    scopes: [predict, feedback]
    feedback_rate: 1
"""
    settings = make_settings(
        two_models_dir, api_keys_file=write_keys(tmp_path / "keys.yaml", slow), prediction_log_dir=tmp_path / "logs"
    )
    key = {"X-API-Key": "secret-s"}
    with TestClient(create_app(settings)) as client:
        body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["great", "awful"]}]}
        answer = client.post("/v2/models/sentiment/infer", json=body, headers=key).json()
        tokens = answer["parameters"]["feedback_token"].split(",")
        assert len(tokens) == 2
        first, second = ({"feedback_token": token, "label": "negative"} for token in tokens)
        assert client.post("/feedback", json=first, headers=key).status_code == 202
        limited = client.post("/feedback", json=second, headers=key)
        assert limited.status_code == 429  # one correction a second, however fast it may predict
        assert "over its feedback rate of 1 per second" in limited.json()["detail"]
        assert client.post("/predict", json=TEXT, headers=key).status_code == 200


def test_a_key_hammering_past_its_rate_gets_one_audit_line_a_second(
    keyed: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    access._rate_refusals.last.clear()  # no line of an earlier test's refusals counts against this one
    audit = logging.getLogger("src.audit")
    audit.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="src.audit"):
            statuses = [keyed.post("/predict", json=TEXT, headers=A).status_code for _ in range(60)]
    finally:
        audit.removeHandler(caplog.handler)
    refused = statuses.count(429)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "src.audit"]
    assert refused >= 20
    assert 1 <= len(lines) <= 3  # however many it sends, about one line a second
    assert all(line["outcome"] == "rate_limited" for line in lines)
    assert sum(line["refusals"] for line in lines) <= refused  # the rest are counted in the next line
