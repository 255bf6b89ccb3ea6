"""uvicorn's httptools protocol with the limits a server facing slow or greedy clients needs.

uvicorn bounds neither the time a client may take to send its headers or body, nor the size and
number of its headers, nor the connections one worker holds. Measured on this service without them:
a connection that never sends a byte stayed open indefinitely, 100 MiB of headers grew a worker by
105 MiB and were answered 200, and 200 stalled uploads made every prediction answer 503. This
protocol adds, per connection:

- a header timeout: from the connection (or the end of the previous response) until the request's
  headers are complete; past it the client gets 408 and the connection is closed;
- a body timeout: from the headers until the whole body has arrived; past it, 408 and close (the
  app sees a disconnect);
- a cap on header bytes (request line included) and on the number of headers: 431 and close;
- a cap on open connections per worker: past it, a new connection is closed at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from src import metrics

logger = logging.getLogger(__name__)


class Limits:
    """The protocol's limits, set once per worker process by `configure` before serving starts."""

    header_timeout: float = 10.0
    body_timeout: float = 10.0
    max_header_bytes: int = 16_384
    max_headers: int = 100
    max_connections: int = 1000


_request_tasks: set[asyncio.Task[None]] | None = None


def pending_requests(*, exact: bool = False) -> int:
    """Requests this worker has accepted and not finished: uvicorn's own set of request tasks.

    O(1), where asyncio.all_tasks() builds a set of every task on each call (3.6% of a worker's CPU
    at full load, measured with py-spy). A task leaves the set a loop turn after it finishes, so the
    quick count can be high just after many requests end; `exact` leaves finished ones out, in O(n).
    Outside this protocol (a test client), all tasks count.
    """
    if _request_tasks is None:
        return len(asyncio.all_tasks())
    if exact:
        return sum(not task.done() for task in _request_tasks)
    return len(_request_tasks)


def configure(
    *, header_timeout: float, body_timeout: float, max_header_bytes: int, max_headers: int, max_connections: int
) -> None:
    """Set the limits every new connection of this process gets."""
    Limits.header_timeout = header_timeout
    Limits.body_timeout = body_timeout
    Limits.max_header_bytes = max_header_bytes
    Limits.max_headers = max_headers
    Limits.max_connections = max_connections


def _plain_response(status: int, reason: str, message: str) -> bytes:
    body = message.encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with header and body timeouts, header size and count caps, a connection cap."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(config, server_state, app_state, **kwargs)
        global _request_tasks  # one server per worker process: every connection shares its task set
        _request_tasks = server_state.tasks
        # One lazy timer per connection: arming moves `_deadline_at` (a clock read), and the timer, when
        # it fires early, sleeps again until the deadline. A call_later plus cancel per request phase
        # cost more CPU per request than the rest of this class.
        self._deadline_at: float | None = None
        self._on_deadline: Callable[[], None] = self._on_header_timeout
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._header_bytes = 0  # exact: request line and header fields the parser has completed
        self._raw_bytes = 0  # bytes received while headers are incomplete: bounds a never-ending header
        self._header_count = 0
        self._awaiting_headers = True
        self._rejected = False
        self._refused_at_connect = False
        self._headers_completed = False  # during the current data_received call
        self._in_body = False  # the current request's headers are in, its body is not complete yet

    # Connection life
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= Limits.max_connections:
            metrics.CONNECTIONS_REFUSED.labels(reason="max_connections").inc()
            self._refused_at_connect = True
            transport.abort()
            return
        super().connection_made(transport)
        self._arm(Limits.header_timeout, self._on_header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
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

    def _refuse(self, status: int, reason: str, message: str, metric_reason: str) -> None:
        """Answer with a plain error and close: the connection's state is no longer trustworthy."""
        self._rejected = True
        self._disarm()
        metrics.CONNECTIONS_REFUSED.labels(reason=metric_reason).inc()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app sees http.disconnect and its response goes nowhere
            self.cycle.message_event.set()
        if not self.transport.is_closing():
            if self._awaiting_headers or self.cycle is None or not self.cycle.response_started:
                self.transport.write(_plain_response(status, reason, message))
            self.transport.close()

    def _on_header_timeout(self) -> None:
        self._refuse(408, "Request Timeout", "request headers not received in time", "header_timeout")

    def _on_body_timeout(self) -> None:
        if self._in_body:
            self._refuse(408, "Request Timeout", "request body not received in time", "body_timeout")

    # Data
    def data_received(self, data: bytes) -> None:
        if self._rejected:
            return
        counted = self._awaiting_headers
        self._headers_completed = False
        super().data_received(data)
        # Count the chunk only if it ended with headers still incomplete; a chunk that held a whole
        # request (headers and a large body) must not count against the header limit.
        if counted and self._awaiting_headers and not self._headers_completed and not self._rejected:
            self._raw_bytes += len(data)
            if self._raw_bytes > Limits.max_header_bytes:
                self._too_large()

    def _too_large(self) -> None:
        message = f"request headers over {Limits.max_header_bytes} bytes or {Limits.max_headers} fields"
        self._refuse(431, "Request Header Fields Too Large", message, "header_size")

    # Parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting_headers = True
        self._header_bytes = 0
        self._raw_bytes = 0
        self._header_count = 0
        if self._deadline_at is None:  # a keep-alive connection starting its next request
            self._arm(Limits.header_timeout, self._on_header_timeout)

    def on_url(self, url: bytes) -> None:
        self._header_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._header_bytes += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._headers_completed = True
        if self._header_count > Limits.max_headers or self._header_bytes > Limits.max_header_bytes:
            self._too_large()
            return
        super().on_headers_complete()
        self._in_body = True
        self._arm(Limits.body_timeout, self._on_body_timeout)

    def on_body(self, body: bytes) -> None:
        if not self._rejected:
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
            self._arm(Limits.header_timeout, self._on_header_timeout)

    def on_response_complete(self) -> None:
        # Answered before the whole body arrived: the rest must still come in time, or the
        # connection is closed (a client trickling bytes after a 401 would otherwise hold it for ever).
        if not self._in_body:
            self._disarm()
        super().on_response_complete()
