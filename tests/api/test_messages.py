"""The lean request and answer of directly dispatched routes against Starlette's own."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import pytest
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from src.api.messages import BodyRequest, JSONAnswer, header

SCOPE: dict[str, Any] = {"type": "http", "method": "POST", "path": "/predict", "headers": []}


def _receive_of(messages: list[dict[str, Any]]) -> Any:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


@pytest.mark.parametrize(
    "messages",
    [
        [{"type": "http.request", "body": b'{"text": "x"}'}],
        [{"type": "http.request", "body": b"ab", "more_body": True}, {"type": "http.request", "body": b"c"}],
        [{"type": "http.request", "body": b"", "more_body": True}, {"type": "http.request"}],
        [{"type": "http.request", "body": b"a", "more_body": True}, {"type": "http.disconnect"}],
    ],
    ids=["one", "chunks", "empty", "disconnect"],
)
def test_the_body_is_starlettes(messages: list[dict[str, Any]]) -> None:
    async def read(kind: type[Request]) -> tuple[bytes | str, bytes | str]:
        request = kind(dict(SCOPE), _receive_of(messages))
        try:
            first = await request.body()
        except ClientDisconnect:
            return "disconnect", "disconnect"
        return first, await request.body()  # the second read is the same bytes

    assert asyncio.run(read(BodyRequest)) == asyncio.run(read(Request))


@pytest.mark.parametrize("headers", [None, {"X-Feedback-Token": "t.1"}])
@pytest.mark.parametrize(
    "content",
    [
        {"label": "positive", "probabilities": {"a": 0.25, "b": 1e-7, "c": 1 / 3}},
        {"t": "é\u2028"},
        [],
        {"term": "\ud800"},  # a lone surrogate, as JSON's "\ud800" decodes
        {"big": 2**70},
    ],
    ids=["answer", "non-ascii", "empty", "lone-surrogate", "big-integer"],
)
def test_the_answer_is_what_a_starlette_response_sends(content: Any, headers: dict[str, str] | None) -> None:
    async def sent(response: Response) -> list[MutableMapping[str, Any]]:
        messages: list[MutableMapping[str, Any]] = []

        async def send(message: MutableMapping[str, Any]) -> None:
            messages.append(message)

        await response(dict(SCOPE), _receive_of([]), send)
        return messages

    ours = asyncio.run(sent(JSONAnswer(content, headers)))
    assert json.loads(ours[1]["body"]) == content  # every value back as it was, floats bit for bit
    theirs = asyncio.run(sent(Response(ours[1]["body"], media_type="application/json", headers=headers)))
    assert ours == theirs


def test_the_answer_is_utf8_as_starlettes_json_response_writes_it() -> None:
    content = {"label": "négatif", "probabilities": {"négatif": 0.5, "positif": 0.5}}
    assert JSONAnswer(content).body == JSONResponse(content).body


def test_a_header_is_its_first_value_and_the_table_is_made_once() -> None:
    scope: dict[str, Any] = {
        **SCOPE,
        "headers": [(b"content-type", b"application/json"), (b"x-request-id", b"a"), (b"x-request-id", b"b")],
    }
    assert header(scope, b"x-request-id") == "a"
    assert header(scope, b"content-type") == "application/json"
    assert header(scope, b"x-api-key") is None
    scope["headers"].append((b"x-api-key", b"late"))  # the table is the request's as it was first read
    assert header(scope, b"x-api-key") is None
