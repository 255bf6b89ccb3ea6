"""The request and response objects of directly dispatched routes, in the fewest steps.

`header` reads a request header from a table of the request's headers made once per request (the
middleware and the handler each asked for several, each a scan of the list).

`BodyRequest` is Starlette's Request whose body is read straight from the ASGI messages (Starlette's
goes through an async generator per request). `JSONAnswer` is a Response for JSON the handler has
already encoded: its headers are the ones Starlette would write, built without parsing any; its
body is encoded by orjson, as Starlette's JSONResponse writes it (compact UTF-8), in a tenth of the
standard library's time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Scope

from src.documents import encode_json

HEADERS_SCOPE_KEY = "ml_service.headers"  # the request's headers by name, made by header()
_JSON_TYPE = (b"content-type", b"application/json")


def header(scope: Scope, name: bytes) -> str | None:
    """The request's header `name` (lower case), its first value if repeated; None without it."""
    headers: dict[bytes, bytes] | None = scope.get(HEADERS_SCOPE_KEY)
    if headers is None:
        headers = scope[HEADERS_SCOPE_KEY] = dict(reversed(scope["headers"]))
    value = headers.get(name)
    return None if value is None else value.decode("latin-1")


class BodyRequest(Request):
    """A Request whose `body()` gathers the `http.request` messages itself."""

    async def body(self) -> bytes:
        try:
            return self._body
        except AttributeError:
            pass
        if self._stream_consumed:
            raise RuntimeError("Stream consumed")
        chunks: list[bytes] = []
        while True:
            message = await self._receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            elif message["type"] == "http.disconnect":
                self._is_disconnected = True
                raise ClientDisconnect()
        self._stream_consumed = True
        self._body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return self._body


class JSONAnswer(Response):
    """A 200 JSON answer from a value: compact UTF-8 (`encode_json`)."""

    media_type = "application/json"

    def __init__(self, content: Any, headers: Mapping[str, str] | None = None) -> None:
        self.status_code = 200
        self.background = None
        self.body = encode_json(content)
        extra = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items()]
        self.raw_headers = [*extra, (b"content-length", str(len(self.body)).encode()), _JSON_TYPE]
