"""uvicorn's httptools protocol with the limits a server facing slow, greedy or silent clients needs.

uvicorn bounds neither the time a client may take to send its headers or body, nor the size and
number of its headers, nor the connections one worker holds, nor how long it may leave an answer
unread, nor how many requests it may pipeline. Per connection, this protocol adds:

- a header timeout: from the connection (or the end of the previous response) until the request's
  headers are complete; past it the client gets 408 and the connection is closed;
- a body timeout: from the headers until the whole body has arrived; past it, 408 and close (the
  app sees a disconnect);
- a write timeout: a client that leaves the answer unread (the send buffer stays full) for that
  long is disconnected, so it holds neither memory nor a request task;
- caps on header bytes (request line included), on the number of headers, and on the chunked
  framing around a body (chunk sizes and extensions): 431 or 400, and close;
- a cap on pipelined requests waiting behind the one being answered: reading stops while any wait,
  and a client past the cap is disconnected;
- a cap on open connections per worker: past it, a new connection is closed at once.

It also sends a response's head and its body in one write (uvicorn writes the head as soon as the
app starts its response, then each part of the body): one send(2), one TCP segment for a small
answer, where there were two of each.

The limits come as a ConnectionLimits object (`functools.partial(GuardedHttpToolsProtocol,
limits=...)` is the protocol class given to uvicorn), read from Settings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from itertools import chain
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from src import metrics
from src.api.middleware import REQUEST_TASKS_STATE_KEY
from src.config import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionLimits:
    """What one connection may take of a worker: time, header size, framing, pipelining; and how many there are."""

    header_timeout: float
    body_timeout: float
    write_timeout: float
    max_header_bytes: int
    max_headers: int
    max_pipelined: int
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        """The limits the settings give (HEADER_TIMEOUT_SECONDS and the rest)."""
        return cls(
            header_timeout=settings.header_timeout_seconds,
            body_timeout=settings.body_timeout_seconds,
            write_timeout=settings.write_timeout_seconds,
            max_header_bytes=settings.max_header_bytes,
            max_headers=settings.max_header_count,
            max_pipelined=settings.max_pipelined_requests,
            max_connections=settings.max_connections_per_worker,
        )


class _HeadWithBody:
    """The connection's transport, holding a response's head until its first body part is written.

    A held head goes out with the next write, joined to it, or when the transport is closed or the
    response is complete; `100 Continue` (a client waits for it before sending its body) is never held.
    """

    _HEAD = b"HTTP/1.1 "
    _CONTINUE = b"HTTP/1.1 100 "

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held = b""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held:
            data, self._held = self._held + bytes(data), b""
        elif data[:9] == self._HEAD and data[:13] != self._CONTINUE:
            self._held = bytes(data)
            return
        self._transport.write(data)

    def flush(self) -> None:
        """Send a held head now."""
        if self._held:
            held, self._held = self._held, b""
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = b""
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _plain_response(status: HTTPStatus, message: str) -> bytes:
    body = message.encode()
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with header and body timeouts, header size and count caps, a connection cap."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        *,
        limits: ConnectionLimits,
        **kwargs: Any,
    ) -> None:
        super().__init__(config, server_state, app_state, **kwargs)
        self.limits = limits
        # Load shedding counts the worker's request tasks (src/api/middleware.py); every request's
        # scope state is a copy of app_state, so the set reaches it without a global.
        app_state[REQUEST_TASKS_STATE_KEY] = server_state.tasks
        self._write_timer: asyncio.TimerHandle | None = None
        self._framing_bytes = 0  # bytes received while a body is being read, less the body's own
        # One lazy timer per connection: arming moves `_deadline_at` (a clock read), and the timer, when
        # it fires early, sleeps again until the deadline. A call_later plus cancel per request phase
        # cost more CPU per request than the rest of this class.
        self._deadline_at: float | None = None
        self._on_deadline: Callable[[], None] = self._on_header_timeout
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._raw_bytes = 0  # bytes received while headers are incomplete: bounds a never-ending header
        self._chunk_bytes = 0  # the size of the chunk being parsed
        self._in_head = False  # a request has begun and its headers are not complete
        self._head_bytes = 0  # the bytes of every chunk its head has been parsed from (at least its size)
        self._awaiting_headers = True
        self._rejected = False
        self._refused_at_connect = False
        self._headers_completed = False  # during the current data_received call
        self._in_body = False  # the current request's headers are in, its body is not complete yet

    # Connection life
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            metrics.CONNECTIONS_REFUSED.labels(reason="max_connections").inc()
            self._refused_at_connect = True
            transport.abort()
            return
        super().connection_made(transport)
        self._head_with_body = _HeadWithBody(transport)
        self.transport = cast(asyncio.Transport, self._head_with_body)
        self._arm(self.limits.header_timeout, self._on_header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._cancel_write_timer()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._refused_at_connect:
            super().connection_lost(exc)

    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        deadline = self.loop.time() + seconds
        self._deadline_at = deadline
        self._on_deadline = callback
        if self._timer is not None and self._timer_at <= deadline:
            return  # the pending timer fires first and sleeps again until this deadline
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self.loop.call_at(deadline, self._check_deadline)

    def _disarm(self) -> None:
        self._deadline_at = None

    def _check_deadline(self) -> None:
        self._timer = None
        deadline = self._deadline_at
        if deadline is None:
            return
        if self.loop.time() < deadline:
            self._timer_at = deadline
            self._timer = self.loop.call_at(deadline, self._check_deadline)
            return
        self._deadline_at = None
        self._on_deadline()

    def _refuse(self, status: HTTPStatus, message: str, metric_reason: str) -> None:
        """Answer with a plain error and close: the connection's state is no longer trustworthy."""
        self._rejected = True
        self._disarm()
        metrics.CONNECTIONS_REFUSED.labels(reason=metric_reason).inc()
        cycle = self.cycle  # the last request's, or this one's once its head is complete
        if self._awaiting_headers:  # a new request's head: answered unless an earlier answer is still due
            answered = cycle is None or cycle.response_complete
        else:  # this request's body: answered unless its own response has begun
            answered = cycle is None or not cycle.response_started
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app sees http.disconnect and its response goes nowhere
            cycle.message_event.set()
        if not self.transport.is_closing():
            if answered:
                self.transport.write(_plain_response(status, message))
            self.transport.close()

    def _on_header_timeout(self) -> None:
        self._refuse(HTTPStatus.REQUEST_TIMEOUT, "request headers not received in time", "header_timeout")

    def _on_body_timeout(self) -> None:
        if self._in_body:
            self._refuse(HTTPStatus.REQUEST_TIMEOUT, "request body not received in time", "body_timeout")

    # Data
    def data_received(self, data: bytes) -> None:
        if self._rejected:
            return
        counted = self._awaiting_headers
        in_body = self._in_body
        self._headers_completed = False
        self._chunk_bytes = len(data)
        if self._in_head:
            self._head_bytes += len(data)
        if in_body:
            self._framing_bytes += len(data)
        super().data_received(data)
        if in_body and self._framing_bytes > self.limits.max_header_bytes and not self._rejected:
            message = f"chunked framing over {self.limits.max_header_bytes} bytes beyond the body"
            self._refuse(HTTPStatus.BAD_REQUEST, message, "body_framing")
            return
        # Count the chunk only if it ended with headers still incomplete; a chunk that held a whole
        # request (headers and a large body) must not count against the header limit.
        if counted and self._awaiting_headers and not self._headers_completed and not self._rejected:
            self._raw_bytes += len(data)
            if self._raw_bytes > self.limits.max_header_bytes:
                self._too_large()

    def _too_large(self) -> None:
        message = f"request headers over {self.limits.max_header_bytes} bytes or {self.limits.max_headers} fields"
        self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, message, "header_size")

    # Parser callbacks
    # A connection refused mid-chunk parses the rest of that chunk: every callback then does nothing
    # (uvicorn's own on_url and on_header only gather the rest of that chunk's fields).
    def on_message_begin(self) -> None:
        if self._rejected:
            return
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = self._chunk_bytes
        self._awaiting_headers = True
        self._raw_bytes = 0
        if self._deadline_at is None:  # a keep-alive connection starting its next request
            self._arm(self.limits.header_timeout, self._on_header_timeout)

    def on_headers_complete(self) -> None:
        if self._rejected:
            return
        self._in_head = False
        self._headers_completed = True
        # The request line's target and every field as the parser completed them (4: ": " and CRLF).
        # That size is at most the bytes of the chunks the head came in plus one per field (a field may
        # be sent without the space): when those are within the cap, so is the size, uncounted.
        headers, limits = self.headers, self.limits
        if len(headers) > limits.max_headers or (
            self._head_bytes + len(headers) > limits.max_header_bytes
            and len(self.url) + 4 * len(headers) + sum(map(len, chain.from_iterable(headers))) > limits.max_header_bytes
        ):
            self._too_large()
            return
        self._awaiting_headers = False
        super().on_headers_complete()
        if len(self.pipeline) > self.limits.max_pipelined:
            self._drop("pipeline")
            return
        self._in_body = True
        self._framing_bytes = 0
        self._arm(self.limits.body_timeout, self._on_body_timeout)

    def on_body(self, body: bytes) -> None:
        if not self._rejected:
            self._framing_bytes -= len(body)
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._rejected:
            return
        self._disarm()
        self._in_body = False
        self._awaiting_headers = True  # whatever comes next on this connection is a new request's head
        self._raw_bytes = 0
        answered_early = self.cycle is not None and self.cycle.response_complete
        super().on_message_complete()
        if answered_early:
            # The response went out before the body ended (a 401, a 413): uvicorn armed its keep-alive
            # timer then, and the body's bytes cancelled it; the next request's head gets our timer.
            self._arm(self.limits.header_timeout, self._on_header_timeout)

    def on_response_complete(self) -> None:
        # Answered before the whole body arrived: the rest must still come in time, or the
        # connection is closed (a client trickling bytes after a 401 would otherwise hold it for ever).
        if not self._in_body:
            self._disarm()
        self._head_with_body.flush()
        super().on_response_complete()
        if self.pipeline:  # uvicorn resumes reading; more requests wait already, so read no more yet
            self.flow.pause_reading()

    def _drop(self, metric_reason: str) -> None:
        """Close at once, answering nothing more: the client is past a bound mid-stream."""
        self._rejected = True
        self._disarm()
        metrics.CONNECTIONS_REFUSED.labels(reason=metric_reason).inc()
        for cycle in [self.cycle, *(queued for queued, _ in self.pipeline)]:
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()
        self.pipeline.clear()
        self.transport.abort()

    # Writing
    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.limits.write_timeout, self._on_write_timeout)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel_write_timer()

    def _cancel_write_timer(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _on_write_timeout(self) -> None:
        self._write_timer = None
        logger.info("client left an answer unread for %.0f s; closing its connection", self.limits.write_timeout)
        self._drop("write_timeout")
