from __future__ import annotations

from fastapi.testclient import TestClient


def _value(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_by_route_and_status(client: TestClient) -> None:
    ok = 'mlservice_http_requests_total{method="POST",route="/predict",status="200"}'
    bad = 'mlservice_http_requests_total{method="POST",route="/predict",status="422"}'
    before = client.get("/metrics").text
    for _ in range(3):
        client.post("/predict", json={"text": "Lovely"})
    client.post("/predict", json={"text": ""})
    client.get("/health")
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    assert _value(after, ok) - _value(before, ok) == 3
    assert _value(after, bad) - _value(before, bad) == 1
    assert 'route="/health"' not in after
    assert 'route="/metrics"' not in after
    assert "mlservice_http_request_duration_seconds_bucket" in after
    predicted = sum(
        _value(after, f'mlservice_predictions_total{{label="{label}",model="sentiment"}}')
        for label in ("negative", "positive")
    )
    predicted_before = sum(
        _value(before, f'mlservice_predictions_total{{label="{label}",model="sentiment"}}')
        for label in ("negative", "positive")
    )
    assert predicted - predicted_before == 3
    assert "mlservice_input_oov_ratio_bucket" in after
    assert 'mlservice_model_info{engine="compiled"' in after


def test_unknown_paths_share_one_label(client: TestClient) -> None:
    client.get("/no/such/path/123")
    assert 'route="other"' in client.get("/metrics").text
    assert "/no/such/path/123" not in client.get("/metrics").text
