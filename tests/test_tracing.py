"""Traces off by default, on with the standard OTEL_* variables; never a cost or a failure for a request."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from prometheus_client import REGISTRY

from src import tracing


def _dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("mlservice_trace_spans_dropped_total", {"reason": reason}) or 0.0


@pytest.fixture(autouse=True)
def off_afterwards() -> Iterator[None]:
    yield
    tracing.shutdown()


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
    ],
)
def test_traces_are_wanted_only_with_an_endpoint(environ: dict[str, str], on: bool) -> None:
    assert tracing.wanted(environ) is on


def test_off_the_helpers_do_nothing() -> None:
    assert tracing.TRACER is None
    with tracing.child("score") as span:
        assert span is None
    tracing.annotate({tracing.MODEL_NAME: "sentiment"})
    assert tracing.current_trace_id() is None


def test_settings_the_sdk_refuses_leave_traces_off_with_one_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "10")  # below the batch size (512): the SDK raises
    with caplog.at_level(logging.ERROR, logger="src.tracing"):
        assert tracing.configure({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}) is False
    assert tracing.TRACER is None
    assert [record.message.split(":")[0] for record in caplog.records] == ["traces off"]


def test_on_a_request_gets_a_span_with_its_children(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")  # nobody listens: the export at shutdown fails fast
    assert tracing.configure({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    parent = tracing.extract({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    with tracing.server_span("POST /predict", parent, {}) as span:
        with tracing.child("score") as child:
            assert child.parent.span_id == span.get_span_context().span_id
        assert tracing.current_trace_id() == "0af7651916cd43dd8448eb211c80319c"
        carried = tracing.inject(span)
    assert carried["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")


class _Blocked(SpanExporter):
    """A collector that never answers until released."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(10)
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.release.set()


def test_a_full_queue_drops_spans_and_counts_them_without_blocking() -> None:
    exporter = _Blocked()
    processor = tracing._BoundedBatchProcessor(
        tracing._CountingExporter(exporter), max_queue_size=4, max_export_batch_size=1, schedule_delay_millis=1
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("test")
    before_full, before_failed = _dropped("queue_full"), _dropped("export_failed")
    for _ in range(50):
        with tracer.start_as_current_span("request"):
            pass
    # At most the queue (4) and the batch being exported (1) are held; the rest were dropped at once.
    assert _dropped("queue_full") - before_full >= 45
    exporter.release.set()
    provider.shutdown()
    assert _dropped("export_failed") - before_failed >= 1  # what the collector did not take is counted too
