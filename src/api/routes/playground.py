"""The playground page at `/`: plain HTML, CSS and JavaScript, served with strict security headers.

A client that does not ask for HTML at `/` (KServe's V1 liveness check, `curl`) gets `{"status": "alive"}`,
as KServe's model server answers there."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse

router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).resolve().parents[1] / "static"
FILES = {"playground.js": "text/javascript", "playground.css": "text/css", "favicon.svg": "image/svg+xml"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


@cache
def _read(name: str) -> bytes:
    return (STATIC / name).read_bytes()


@router.get("/")
async def page(request: Request) -> Response:
    """The playground page for a browser; `{"status": "alive"}` for a client that does not ask for HTML."""
    if "text/html" not in request.headers.get("accept", ""):
        return JSONResponse({"status": "alive"}, headers={"Vary": "Accept"})
    return Response(
        _read("index.html"), media_type="text/html; charset=utf-8", headers={**SECURITY_HEADERS, "Vary": "Accept"}
    )


@router.get("/static/{name}")
async def asset(name: str) -> Response:
    """The page's script and style sheet (nothing else is served from the folder)."""
    if name not in FILES:
        raise HTTPException(status_code=404, detail="Not Found")
    return Response(_read(name), media_type=FILES[name], headers=SECURITY_HEADERS)
