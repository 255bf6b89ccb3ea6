"""Traces against the production server (2 workers) and a local OTLP/HTTP receiver that decodes the
protobuf export requests: a /predict, a V2 REST infer and a gRPC ModelInfer, each sent with a
`traceparent`, become spans of that trace whose parent is the caller's span, with the model's name and
version and `parse` / `score` children; each answer carries the trace context back. With the receiver
stopped, requests still succeed at their latency, and the spans the collector missed are counted.
"""

from __future__ import annotations

import secrets
import statistics
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tests.e2e.servers import (
    Server,
    free_port,
    metric_value,
    production_command,
    production_env,
    request,
    running_server,
)

pytestmark = pytest.mark.e2e
TEXT = "A wonderful, moving film."


class Receiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1: keeps every span it is sent, by trace id (hex)."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                export = ExportTraceServiceRequest.FromString(body)
                with receiver.lock:
                    for resource_spans in export.resource_spans:
                        for scope_spans in resource_spans.scope_spans:
                            receiver.spans += [(resource_spans.resource, span) for span in scope_spans.spans]
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def trace(self, trace_id: str) -> list[Any]:
        with self.lock:
            return [span for _, span in self.spans if span.trace_id.hex() == trace_id]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def traced(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, Receiver]]:
    tmp_path = tmp_path_factory.mktemp("traces")
    receiver = Receiver()
    port = free_port()
    env = production_env(
        model_dir,
        port,
        tmp_path,
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_SERVICE_NAME="ml-service-under-test",
        OTEL_BSP_SCHEDULE_DELAY="100",  # ms: export soon, for the test
        OTEL_BSP_MAX_QUEUE_SIZE="256",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE="64",
        OTEL_EXPORTER_OTLP_TIMEOUT="1",  # s: a stopped receiver fails an export quickly
        ACCESS_LOG="true",
    )
    try:
        with running_server(production_command(), port, env, tmp_path, ready_path="/health/ready") as server:
            yield server, f"127.0.0.1:{env['GRPC_PORT']}", receiver
    finally:
        receiver.stop()


def _traceparent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def _check_trace(receiver: Receiver, trace_id: str, caller_span: str, answered: str, name: str) -> None:
    """The trace holds the request's server span (child of the caller's) and its parse and score spans."""
    spans = _wait_for(receiver, trace_id, {name, "parse", "score"})
    (server,) = [span for span in spans if span.name == name]
    assert server.parent_span_id.hex() == caller_span
    assert server.kind == server.SPAN_KIND_SERVER
    attributes = {a.key: a.value.string_value or a.value.int_value for a in server.attributes}
    assert attributes["ml.model.name"] == "sentiment"
    assert attributes["ml.model.version"]
    assert attributes["ml.batch.size"] == 1
    assert attributes["ml.request.id"]
    for child in (span for span in spans if span.name in ("parse", "score")):
        assert child.parent_span_id == server.span_id, child.name
    version, trace, span, flags = answered.split("-")
    assert (version, trace, flags) == ("00", trace_id, "01")  # the answer continues the caller's trace
    assert span == server.span_id.hex()


def _wait_for(receiver: Receiver, trace_id: str, names: set[str], timeout: float = 15.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        spans = receiver.trace(trace_id)
        if names <= {span.name for span in spans}:
            return spans
        time.sleep(0.1)
    raise AssertionError(
        f"spans {names} of trace {trace_id} never arrived: {[s.name for s in receiver.trace(trace_id)]}"
    )


def test_predict_continues_the_callers_trace(traced: tuple[Server, str, Receiver]) -> None:
    server, _, receiver = traced
    header, trace_id, span_id = _traceparent()
    answer = request(server.url("/predict"), body={"text": TEXT}, headers={"traceparent": header})
    assert answer.status == 200
    _check_trace(receiver, trace_id, span_id, answer.headers["traceparent"], "POST /predict")
    resources = [resource for resource, span in receiver.spans if span.trace_id.hex() == trace_id]
    names = {a.value.string_value for a in resources[0].attributes if a.key == "service.name"}
    assert names == {"ml-service-under-test"}  # OTEL_SERVICE_NAME
    assert trace_id in server.log()  # the access log line carries the trace id


def test_v2_rest_infer_continues_the_callers_trace(traced: tuple[Server, str, Receiver]) -> None:
    server, _, receiver = traced
    header, trace_id, span_id = _traceparent()
    body = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [TEXT]}]}
    answer = request(server.url("/v2/models/sentiment/infer"), body=body, headers={"traceparent": header})
    assert answer.status == 200
    _check_trace(receiver, trace_id, span_id, answer.headers["traceparent"], "POST /v2/models/{name}/infer")


def test_grpc_model_infer_continues_the_callers_trace(traced: tuple[Server, str, Receiver]) -> None:
    _, address, receiver = traced
    header, trace_id, span_id = _traceparent()
    message = service_pb2.ModelInferRequest(model_name="sentiment")
    message.inputs.add(name="text", datatype="BYTES", shape=[1]).contents.bytes_contents.append(TEXT.encode())
    with grpc.insecure_channel(address) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        _, call = stub.ModelInfer.with_call(message, metadata=(("traceparent", header),), timeout=10)
    answered = dict(call.initial_metadata())["traceparent"]
    _check_trace(receiver, trace_id, span_id, answered, "inference.GRPCInferenceService/ModelInfer")


def test_a_request_without_a_traceparent_starts_a_trace(traced: tuple[Server, str, Receiver]) -> None:
    server, _, receiver = traced
    answer = request(server.url("/predict"), body={"text": TEXT})
    trace_id = answer.headers["traceparent"].split("-")[1]
    spans = _wait_for(receiver, trace_id, {"POST /predict"})
    (root,) = [span for span in spans if span.name == "POST /predict"]
    assert root.parent_span_id == b""


def _median_latency(server: Server, count: int = 60) -> float:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        assert request(server.url("/predict"), body={"text": TEXT}).status == 200
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def test_with_the_collector_away_requests_succeed_at_their_latency_and_lost_spans_are_counted(
    traced: tuple[Server, str, Receiver],
) -> None:
    server, _, receiver = traced
    up = _median_latency(server)
    receiver.stop()  # the collector is away from here on
    down = _median_latency(server)
    for _ in range(400):  # more spans than the queue holds, while the exporter fails
        assert request(server.url("/predict"), body={"text": TEXT}).status == 200
    # Loopback requests take about a millisecond; the exporter works on its own thread, so the
    # median stays where it was (a bound far from noise: a request waiting on the collector would
    # take the exporter's 1 s timeout).
    assert down < max(3 * up, up + 0.02), (up, down)

    def dropped() -> float:
        exposition = request(server.url("/metrics")).body.decode()
        failed = metric_value(exposition, 'mlservice_trace_spans_dropped_total{reason="export_failed"}')
        full = metric_value(exposition, 'mlservice_trace_spans_dropped_total{reason="queue_full"}')
        return failed + full

    deadline = time.monotonic() + 20
    while dropped() == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert dropped() > 0
