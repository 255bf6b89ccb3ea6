"""Interactive API documentation at `/docs`, served from the image: no CDN, the playground's CSP.

FastAPI's own /docs loads Swagger UI from a CDN with no integrity hash; in a cluster without
internet it is a blank page. The Swagger UI 5 files (Apache-2.0; version 5 reads OpenAPI 3.1) come
from the pinned `drf-spectacular-sidecar` package, read as plain files (nothing of it is imported);
DOCS_ENABLED=false leaves /docs out (the schema stays at /openapi.json).
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Response

from src.api.routes.playground import SECURITY_HEADERS, STATIC

router = APIRouter(include_in_schema=False)

# Swagger UI draws its icons as data: images; nothing else is loosened.
DOCS_HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": SECURITY_HEADERS["Content-Security-Policy"].replace(
        "img-src 'self'", "img-src 'self' data:"
    ),
}
_BUNDLE_FILES = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript"}


def _bundle_dir() -> Path:
    spec = importlib.util.find_spec("drf_spectacular_sidecar")
    if spec is None or not spec.submodule_search_locations:
        raise HTTPException(status_code=404, detail="Not Found")
    return Path(next(iter(spec.submodule_search_locations))) / "static" / "drf_spectacular_sidecar" / "swagger-ui-dist"


@cache
def _read(path: Path) -> bytes:
    return path.read_bytes()


@router.get("/docs")
async def page() -> Response:
    """The documentation page."""
    return Response(_read(STATIC / "docs.html"), media_type="text/html; charset=utf-8", headers=DOCS_HEADERS)


@router.get("/docs/static/{name}")
async def asset(name: str) -> Response:
    """Swagger UI's script and style sheet, and the script that starts it."""
    if name == "docs.js":
        return Response(_read(STATIC / "docs.js"), media_type="text/javascript", headers=DOCS_HEADERS)
    if name not in _BUNDLE_FILES:
        raise HTTPException(status_code=404, detail="Not Found")
    return Response(_read(_bundle_dir() / name), media_type=_BUNDLE_FILES[name], headers=DOCS_HEADERS)
