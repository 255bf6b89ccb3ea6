"""OpenTelemetry traces: off by default, on with the standard OTEL_* environment variables.

Tracing is on in a worker when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
set (and OTEL_SDK_DISABLED is not true). The OpenTelemetry SDK then reads the rest itself: the
service name and resource attributes (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), the sampler
(OTEL_TRACES_SAMPLER and its argument; parent-based always-on by default), the exporter (OTLP over
HTTP/protobuf, its endpoint, headers and timeout) and the batch processor's bounds (OTEL_BSP_*).

Spans are queued for a background batch processor: a request only appends its spans to a bounded
queue, so a collector that is down or slow never slows or fails one. A span that finds the queue
full is dropped and counted (`mlservice_trace_spans_dropped_total{reason="queue_full"}`), as are the
spans of a batch the collector did not take (`reason="export_failed"`).

With tracing off, `TRACER` is None and every helper here returns at once: the hot path pays one
attribute check.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from src import API_VERSION, metrics

logger = logging.getLogger(__name__)

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
TRACER: trace.Tracer | None = None  # None: tracing is off in this process
_provider: TracerProvider | None = None
_NO_SPAN = contextlib.nullcontext()

# Attribute names: OpenTelemetry's semantic conventions where they have one, `ml.` where they do not.
MODEL_NAME = "ml.model.name"
MODEL_VERSION = "ml.model.version"
BATCH_SIZE = "ml.batch.size"
ROLLOUT_ARM = "ml.rollout.arm"
REQUEST_ID = "ml.request.id"
PROTOCOL = "ml.protocol"


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces: an OTLP endpoint, and the SDK not disabled."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


class _CountingExporter(SpanExporter):
    """The SDK's OTLP exporter, counting the spans of every batch it could not deliver."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.exporter.export(spans)
        if result is SpanExportResult.SUCCESS:
            metrics.TRACE_SPANS_EXPORTED.inc(len(spans))
        else:
            metrics.TRACE_SPANS_DROPPED.labels("export_failed").inc(len(spans))
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class _BoundedBatchProcessor(BatchSpanProcessor):
    """The SDK's batch processor, counting the spans it drops when its queue is full (the SDK logs a
    warning per dropped span instead, a log line per request while the collector is away)."""

    def on_end(self, span: ReadableSpan) -> None:
        processor = self._batch_processor
        if len(processor._queue) >= processor._max_queue_size:
            metrics.TRACE_SPANS_DROPPED.labels("queue_full").inc()
            return
        super().on_end(span)


def configure(environ: Mapping[str, str] = os.environ) -> bool:
    """Turn tracing on in this process when the environment asks for it; whether it is on.

    Settings the SDK refuses (OTEL_BSP_MAX_QUEUE_SIZE below the batch size, an unknown sampler, ...)
    leave tracing off with one error line: a trace setting never stops the service."""
    global TRACER, _provider
    if TRACER is not None or not wanted(environ):
        return TRACER is not None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    try:
        resource = Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME") or "ml-service",
                                    "service.version": API_VERSION})  # fmt: skip
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(_BoundedBatchProcessor(_CountingExporter(OTLPSpanExporter())))
    except Exception as error:  # the SDK's own checks of the OTEL_* settings
        logger.error("traces off: the OpenTelemetry settings are refused: %s", error)
        return False
    _provider, TRACER = provider, provider.get_tracer("ml-service", API_VERSION)
    logger.info("traces on: OTLP to %s", next(environ[name] for name in ENDPOINT_VARIABLES if environ.get(name)))
    return True


def shutdown() -> None:
    """Export what is queued (bounded by the exporter's timeout) and turn tracing off."""
    global TRACER, _provider
    if _provider is not None:
        _provider.shutdown()
    TRACER, _provider = None, None


def extract(carrier: Mapping[str, str]) -> Context:
    """The caller's trace context (W3C traceparent and tracestate) from headers or gRPC metadata."""
    return propagate.extract(carrier)


def inject(span: trace.Span) -> dict[str, str]:
    """The headers (or metadata) that carry this span's trace context back to the caller."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


@contextlib.contextmanager
def server_span(name: str, parent: Context, attributes: Mapping[str, Any]) -> Iterator[trace.Span]:
    """A request's server span, child of the caller's span, current while the request runs."""
    assert TRACER is not None
    with TRACER.start_as_current_span(name, context=parent, kind=trace.SpanKind.SERVER, attributes=attributes) as span:
        yield span


def failed(span: trace.Span) -> None:
    """Mark a span as failed (a 5xx answer, a gRPC error other than a client's)."""
    span.set_status(trace.StatusCode.ERROR)


def child(name: str) -> contextlib.AbstractContextManager[Any]:
    """A child span of the current one (parse, score, prediction log); nothing when tracing is off or
    the request is not sampled (its children would not be recorded either: a sampler's decision holds
    for the whole trace, and skipping them saves most of an unsampled request's cost)."""
    if TRACER is None or not trace.get_current_span().is_recording():
        return _NO_SPAN
    return TRACER.start_as_current_span(name)


def recording() -> bool:
    """Whether the current request is traced and sampled (worth building attributes for)."""
    return TRACER is not None and trace.get_current_span().is_recording()


def annotate(attributes: Mapping[str, Any]) -> None:
    """Attributes on the current span (the request's model and version, its batch size, ...)."""
    if TRACER is not None:
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attributes(attributes)


def current_trace_id() -> str | None:
    """The current span's trace id in hex (for the access log), or None."""
    if TRACER is None:
        return None
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def attach(span: trace.Span) -> object:
    """Make `span` current in this thread or task (a gRPC call's work on the event loop); `detach` undoes it."""
    return otel_context.attach(trace.set_span_in_context(span))


def detach(token: object) -> None:
    """Undo `attach`."""
    otel_context.detach(token)  # type: ignore[arg-type]
