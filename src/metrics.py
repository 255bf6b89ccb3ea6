"""Every Prometheus metric the service exports, defined in one place.

With several worker processes, prometheus_client's multiprocess mode is on (PROMETHEUS_MULTIPROC_DIR
is set by the production command before any worker starts) and /metrics sums all live workers.
Each gauge says how it combines across workers.
"""

from __future__ import annotations

import os
import struct
import threading
from bisect import bisect_left
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import prometheus_client
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess, values
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.registry import Collector


class _Pid:
    """This process's id, remembered: prometheus_client asks for it on every metric write (a system
    call per write, many per prediction) only to notice a fork, which os.register_at_fork tells us."""

    value = os.getpid()

    @classmethod
    def refresh(cls) -> None:
        """Called in a forked child, so its writes go to its own file."""
        cls.value = os.getpid()


os.register_at_fork(after_in_child=_Pid.refresh)

_DOUBLES_INTO = struct.Struct("<dd").pack_into
_FILE_LOCK = threading.Lock()  # one for every value, as prometheus_client's multiprocess values have
_FILES: dict[str, MmapedDict] = {}
_FILE_VALUES: list[FileValue] = []
_files_pid = _Pid.value  # the process whose files _FILES holds


class FileValue:
    """A metric's value in this process's multiprocess file, as prometheus_client's own multiprocess
    value keeps it (the same files, keys and layout), written in fewer steps: its place in the file
    is found once, and a write is one assignment of 16 bytes (value and timestamp) there. A forked
    child reopens every value in files of its own."""

    _multiprocess = True

    def __init__(
        self,
        typ: str,
        metric_name: str,
        name: str,
        labelnames: list[str],
        labelvalues: list[str],
        help_text: str,
        multiprocess_mode: str = "",
        **_: Any,
    ) -> None:
        self._params = typ, metric_name, name, labelnames, labelvalues, help_text, multiprocess_mode
        with _FILE_LOCK:
            self._open()
            _FILE_VALUES.append(self)

    def _open(self) -> None:
        global _files_pid
        if _files_pid != _Pid.value:  # a forked child: its parent's files are not its own
            for values_file in _FILES.values():
                values_file.close()  # type: ignore[no-untyped-call]
            _FILES.clear()
            _files_pid = _Pid.value
        typ, metric_name, name, labelnames, labelvalues, help_text, mode = self._params
        prefix = f"{typ}_{mode}" if typ == "gauge" else typ
        if prefix not in _FILES:
            path = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]) / f"{prefix}_{_Pid.value}.db"
            _FILES[prefix] = MmapedDict(str(path))  # type: ignore[no-untyped-call]
        self._file = _FILES[prefix]
        key = mmap_key(metric_name, name, labelnames, labelvalues, help_text)
        self._value, self._timestamp = self._file.read_value(key)  # type: ignore[no-untyped-call]
        self._position: int = self._file._positions[key]
        self._pid = _Pid.value

    def _follow_fork(self) -> None:
        """In a forked child (this value's pid is not the process's): every value reopens in its own files."""
        for value in _FILE_VALUES:
            value._open()

    def inc(self, amount: float) -> None:
        with _FILE_LOCK:
            if self._pid != _Pid.value:
                self._follow_fork()
            self._value += amount
            self._timestamp = 0.0
            _DOUBLES_INTO(self._file._m, self._position, self._value, 0.0)

    @staticmethod
    def add_all(steps: Iterable[Step]) -> None:
        """Several values' increments under one acquisition of the lock (see `add`)."""
        with _FILE_LOCK:
            for value, amount in steps:
                if value._pid != _Pid.value:
                    value._follow_fork()
                value._value += amount
                value._timestamp = 0.0
                _DOUBLES_INTO(value._file._m, value._position, value._value, 0.0)

    def set(self, value: float, timestamp: float | None = None) -> None:
        with _FILE_LOCK:
            if self._pid != _Pid.value:
                self._follow_fork()
            self._value = value
            self._timestamp = timestamp or 0.0
            _DOUBLES_INTO(self._file._m, self._position, self._value, self._timestamp)

    def get(self) -> float:
        with _FILE_LOCK:
            value: float = self._value
            return value

    def set_exemplar(self, exemplar: object) -> None:
        return  # as prometheus_client's multiprocess values: no exemplars

    def get_exemplar(self) -> None:
        return None


if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Must be set before any metric below is created: each value takes its class from here.
    values.ValueClass = FileValue


class Counter(prometheus_client.Counter):
    """prometheus_client's Counter; a series (a child, or a metric without labels) adds in one step."""

    def inc(self, amount: float = 1, exemplar: dict[str, str] | None = None) -> None:
        if amount >= 0 and exemplar is None and (self._labelvalues or not self._labelnames):
            self._value.inc(amount)
        else:  # its checks and errors, as prometheus_client has them
            super().inc(amount, exemplar)


class Gauge(prometheus_client.Gauge):
    """prometheus_client's Gauge; a series moves in one step."""

    def inc(self, amount: float = 1) -> None:
        if self._labelvalues or not self._labelnames:
            self._value.inc(amount)
        else:
            super().inc(amount)

    def dec(self, amount: float = 1) -> None:
        self.inc(-amount)


class Histogram(prometheus_client.Histogram):
    """prometheus_client's Histogram; a series finds its bucket by bisection, not by a scan of them all."""

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        if exemplar is None and amount == amount and (self._labelvalues or not self._labelnames):  # not NaN
            self._sum.inc(amount)
            self._buckets[bisect_left(self._upper_bounds, amount)].inc(1)  # the first bound >= amount
        else:
            super().observe(amount, exemplar)


Step = tuple[Any, float]  # a series' value (FileValue, or prometheus_client's own) and what to add to it


def counted(series: Counter | Gauge, amount: float = 1.0) -> Step:
    """A counter's or gauge's series (a child, or a metric without labels) moved by `amount`, for `add`."""
    return series._value, amount


def observed(series: Histogram, amount: float) -> tuple[Step, ...]:
    """A histogram series' observation of `amount` (its sum and its bucket), for `add`."""
    if amount != amount:  # NaN: in the sum and in no bucket, as prometheus_client counts it
        return ((series._sum, amount),)
    return (series._sum, amount), (series._buckets[bisect_left(series._upper_bounds, amount)], 1.0)


def add(steps: Iterable[Step]) -> None:
    """A request's metric writes in one step: in multiprocess mode one lock acquisition and a 16-byte
    store per series, where each write on its own takes the lock."""
    if values.ValueClass is FileValue:
        FileValue.add_all(steps)
    else:
        for value, amount in steps:
            value.inc(amount)


# Sub-millisecond to seconds: the fast path answers in ~0.1 ms, an overloaded pod in seconds.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

HTTP_REQUESTS = Counter(
    "mlservice_http_requests_total",
    "HTTP requests answered, by route, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "mlservice_http_request_duration_seconds",
    "Time from request start to the end of the response, by route.",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
REQUESTS_IN_FLIGHT = Gauge(
    "mlservice_requests_in_flight",
    "Requests being handled now, by transport (http: every route but /metrics and the health probes; grpc: every "
    "call), summed over the workers: the autoscaling signal.",
    ["transport"],
    multiprocess_mode="livesum",
)
REQUESTS_IN_FLIGHT_LIMIT = Gauge(
    "mlservice_requests_in_flight_limit",
    "Requests the workers take at once before shedding (MAX_PENDING_REQUESTS per worker and transport), summed "
    "over the live workers: in flight against this is how full the pod is.",
    ["transport"],
    multiprocess_mode="livesum",
)
MODEL_EVICTIONS = Counter(
    "mlservice_model_evictions_total",
    "Models unloaded to stay within MODEL_MEMORY_BUDGET (MODEL_LOAD=lazy), by model.",
    ["model"],
)
MODEL_BYTES_LOADED = Gauge(
    "mlservice_model_bytes_loaded",
    "Memory the worker's loaded models hold, as measured at load (one series per worker).",
    multiprocess_mode="liveall",
)
MODELS_LOADED = Gauge(
    "mlservice_models_loaded",
    "Models loaded in the worker now (one series per worker).",
    multiprocess_mode="liveall",
)
TRACE_SPANS_EXPORTED = Counter(
    "mlservice_trace_spans_exported_total", "Spans the OTLP exporter delivered to the collector (tracing on)."
)
TRACE_SPANS_DROPPED = Counter(
    "mlservice_trace_spans_dropped_total",
    "Spans dropped (tracing on), by reason: queue_full (the batch processor's bounded queue, OTEL_BSP_MAX_QUEUE_SIZE, "
    "was full: the collector is slow or away) or export_failed (the collector did not take a batch).",
    ["reason"],
)
for _reason in ("queue_full", "export_failed"):  # exported at 0, so a dashboard or alert sees the series
    TRACE_SPANS_DROPPED.labels(_reason)
KEY_REQUESTS = Counter(
    "mlservice_key_requests_total",
    "Requests that carried an API key, by key id (from the key file and settings; `unknown` for a key no "
    "one was given) and outcome (accepted, forbidden, rate_limited).",
    ["key", "outcome"],
)
SHARED_STATE_FAULTS = Counter(
    "mlservice_shared_state_faults_total",
    "Faults of the shared state (SHARED_STATE_URL: refused, reset, no reply in time, an error reply), by what was "
    "asked (rates, corrections); each pauses its use in that worker for SHARED_STATE_RETRY_SECONDS.",
    ["what"],
)
SHARED_STATE_FALLBACKS = Counter(
    "mlservice_shared_state_fallbacks_total",
    "Decisions made without the shared state while it was down, by what: rates (held per pod instead) and "
    "corrections (refused with 503 and Retry-After, the token still good).",
    ["what"],
)
for _what in ("rates", "corrections"):
    SHARED_STATE_FAULTS.labels(_what)
    SHARED_STATE_FALLBACKS.labels(_what)
REQUESTS_SHED = Counter(
    "mlservice_requests_shed_total", "Prediction requests refused with 503 because the worker was overloaded."
)
CONNECTIONS_REFUSED = Counter(
    "mlservice_connections_refused_total",
    "Connections closed by the server's limits, by reason (header_timeout, body_timeout, header_size, "
    "max_connections).",
    ["reason"],
)
WORKER_RESTARTS = Counter(
    "mlservice_worker_restarts_total",
    "Worker processes replaced by the supervisor, by reason (exited, crashed_at_startup, hung).",
    ["reason"],
)
PREDICTIONS = Counter(
    "mlservice_predictions_total", "Texts classified, by model and predicted label.", ["model", "label"]
)
CONFIDENCE = Histogram(
    "mlservice_prediction_confidence",
    "Probability of the winning class, by model.",
    ["model"],
    buckets=(0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0),
)
INPUT_TOKENS = Histogram(
    "mlservice_input_tokens",
    "Words per text, as the model's tokenizer counts them, by model.",
    ["model"],
    buckets=(0, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000),
)
INPUT_OOV_RATIO = Histogram(
    "mlservice_input_oov_ratio",
    "Share of a text's words missing from the model's vocabulary (drift signal), by model.",
    ["model"],
    buckets=(0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0),
)
MODEL_INFO = Gauge(
    "mlservice_model_info",
    "1 for each model's version being served (with its scikit-learn version and scoring engine).",
    ["model", "version", "sklearn_version", "engine"],
    multiprocess_mode="livemax",
)
MODEL_LOADS = Counter(
    "mlservice_model_loads_total",
    "Model load attempts, by model, kind (startup or reload) and outcome (success or failure).",
    ["model", "kind", "outcome"],
)
MODEL_LOAD_DURATION = Gauge(
    "mlservice_model_load_duration_seconds",
    "Duration of the model's last successful load.",
    ["model"],
    multiprocess_mode="livemostrecent",
)
MODEL_LOAD_TIMESTAMP = Gauge(
    "mlservice_model_load_timestamp_seconds",
    "Unix time of the model's last successful load.",
    ["model"],
    multiprocess_mode="livemax",
)
MODEL_READY = Gauge(
    "mlservice_model_ready",
    "1 when the process serves a verified version of the model, 0 when not (minimum over workers).",
    ["model"],
    multiprocess_mode="livemin",
)

# Rollouts: a candidate version beside CURRENT (src/serving/rollout_traffic.py). The guard figures
# follow from these counters, summed over workers: error rate = errors / requests of the candidate,
# latency ratio = (seconds / requests) of the candidate over CURRENT's, disagreement = 1 - agreed /
# compared, mean |probability difference| = absolute_difference / compared.
ROLLOUT_RUNNING = Gauge(
    "mlservice_rollout_running",
    "1 while a rollout of the model's candidate runs in the process (by mode), 0 once it ended.",
    ["model", "candidate", "mode"],
    multiprocess_mode="livemax",
)
ROLLOUT_REQUESTS = Counter(
    "mlservice_rollout_requests_total",
    "Texts scored during a rollout, by model, version and role (current or candidate).",
    ["model", "version", "role"],
)
ROLLOUT_ERRORS = Counter(
    "mlservice_rollout_errors_total", "Texts a rollout's candidate failed to score.", ["model", "version"]
)
ROLLOUT_SECONDS = Counter(
    "mlservice_rollout_scoring_seconds_total",
    "Seconds spent scoring during a rollout, by model, version and role.",
    ["model", "version", "role"],
)
ROLLOUT_PAIRED_SECONDS = Counter(
    "mlservice_rollout_paired_seconds_total",
    "Seconds each model (role current or candidate) spent on the texts both scored: the latency guard's figures.",
    ["model", "version", "role"],
)
ROLLOUT_COMPARISONS_SKIPPED = Counter(
    "mlservice_rollout_comparisons_skipped_total",
    "Comparisons not made because the worker's comparison queue was full.",
    ["model"],
)
ROLLOUT_COMPARED = Counter(
    "mlservice_rollout_compared_total", "Texts scored by both CURRENT and the candidate.", ["model", "version"]
)
ROLLOUT_AGREED = Counter(
    "mlservice_rollout_agreed_total", "Compared texts given the same label by both.", ["model", "version"]
)
ROLLOUT_ABSOLUTE_DIFFERENCE = Counter(
    "mlservice_rollout_absolute_difference_total",
    "Sum over compared texts of the mean |probability (or score) difference| between the two.",
    ["model", "version"],
)
ROLLOUT_ABORTS = Counter(
    "mlservice_rollout_aborts_total", "Rollouts this process aborted, by the guard that tripped.", ["model", "guard"]
)

INFERENCE_REQUESTS = Counter(
    "mlservice_inference_requests_total",
    "Inference requests the data plane answered or refused, by protocol (json, v2, grpc, v1, mlflow) "
    "and outcome (ok, error).",
    ["protocol", "outcome"],
)
GRPC_REQUESTS = Counter(
    "mlservice_grpc_requests_total", "gRPC calls answered, by method and status code.", ["method", "code"]
)
GRPC_LATENCY = Histogram(
    "mlservice_grpc_request_duration_seconds",
    "Time to answer a gRPC call, by method.",
    ["method"],
    buckets=LATENCY_BUCKETS,
)
PREDICTION_LOG_RECORDS = Counter(
    "mlservice_prediction_log_records_total",
    "Prediction records and feedback, by kind and outcome: written, dropped (the queue was full), failed "
    "(the sink refused or timed out) or lost (still queued when the worker stopped).",
    ["kind", "outcome"],
)
# Drift (src/serving/drift_window.py) is computed when scraped, from the window every worker shares:
# mlservice_drift_statistic, _threshold, _window_texts and _drifting, by model, version (and signal).


Metric = TypeVar("Metric", Counter, Gauge, Histogram)


@cache
def labelled(metric: Metric, *values: str) -> Metric:
    """`metric.labels(*values)`, remembered: the hot path's label sets are few and fixed."""
    return metric.labels(*values)


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def totals(metric: Counter, **labels: str) -> float:
    """A counter's value summed over every worker (in multiprocess mode) and every series matching `labels`."""
    name = f"{metric._name}_total"
    total = 0.0
    for family in _registry().collect():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def render(*computed: Collector) -> tuple[bytes, str]:
    """The exposition text of this process, or of all workers in multiprocess mode, then of the
    `computed` collectors (figures made when scraped, already server-wide)."""
    body = generate_latest(_registry())
    if computed:
        extra = CollectorRegistry(auto_describe=False)
        for collector in computed:
            extra.register(collector)
        body += generate_latest(extra)
    return body, CONTENT_TYPE_LATEST
