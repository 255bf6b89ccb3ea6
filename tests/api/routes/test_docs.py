"""/docs is served from the image under a strict CSP, and can be turned off."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from src.api.main import create_app
from tests.conftest import make_settings


def test_docs_load_nothing_from_outside(client: TestClient) -> None:
    """FastAPI's default /docs loaded Swagger UI from a CDN with no integrity hash and no CSP."""
    page = client.get("/docs")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "default-src 'none'" in csp
    assert "http" not in page.text  # every script and style sheet is the service's own
    assert "<script>" not in page.text  # no inline script for the CSP to allow
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "docs.js"):
        response = client.get(f"/docs/static/{asset}")
        assert response.status_code == 200
        assert len(response.content) > 50
    assert "SwaggerUIBundle" in client.get("/docs/static/swagger-ui-bundle.js").text
    assert client.get("/docs/static/../../config.py").status_code == 404
    assert client.get("/docs/static/index.html").status_code == 404
    assert client.get("/redoc").status_code == 404


def test_docs_can_be_turned_off(model_dir: Path) -> None:
    with TestClient(create_app(make_settings(model_dir, docs_enabled=False))) as client:
        assert client.get("/docs").status_code == 404
        assert client.get("/openapi.json").status_code == 200
