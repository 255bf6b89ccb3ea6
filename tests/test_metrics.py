"""The metrics module's multiprocess set-up: one file per process, also after a fork."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.e2e.servers import ROOT

FORKING = """
import os, sys
from src import metrics
metrics.REQUESTS_SHED.inc()
child = os.fork()
if child == 0:
    metrics.REQUESTS_SHED.inc(5)
    os._exit(0)
os.waitpid(child, 0)
metrics.REQUESTS_SHED.inc()
print(os.getpid(), child)
"""


def test_each_process_writes_its_own_file_after_a_fork(tmp_path: Path) -> None:
    """The remembered pid (prometheus_client asked the kernel on every write) must follow a fork."""
    run = subprocess.run(
        [sys.executable, "-c", FORKING],
        cwd=ROOT,
        env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    parent, child = run.stdout.split()
    assert {path.name for path in tmp_path.glob("counter_*.db")} == {f"counter_{parent}.db", f"counter_{child}.db"}
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))  # type: ignore[no-untyped-call]
    assert registry.get_sample_value("mlservice_requests_shed_total") == 7


WRITES = """
import sys
from prometheus_client import values
from src import metrics
from src.metrics import Counter, Gauge, Histogram
if sys.argv[1] == "prometheus":  # prometheus_client's own multiprocess value and metrics, for comparison
    values.ValueClass = values.MultiProcessValue()
    from prometheus_client import Counter, Gauge, Histogram
requests = Counter("requests", "r", ["route"], registry=None)
latency = Histogram("latency", "l", ["route"], registry=None)
in_flight = Gauge("in_flight", "f", ["transport"], registry=None, multiprocess_mode="livesum")
ready = Gauge("ready", "m", ["model"], registry=None, multiprocess_mode="liveall")
assert type(requests.labels("a")._value).__name__ == ("FileValue" if sys.argv[1] == "ours" else "MmapedValue")
requests.labels("/predict").inc()
for i in range(3000):  # past the file's first 64 KiB: the file grows while values hold their place
    requests.labels(f"/route/{i}").inc(i)
requests.labels("/predict").inc(2)
latency.labels("/predict").observe(0.003)
latency.labels("/predict").observe(7)
for amount in (0.005, 0.0001, 0.0, -1.0, 5.0, float("inf"), float("nan"), 1e-9):  # bounds, edges, NaN
    latency.labels("/edges").observe(amount)
shed = Counter("shed", "s", registry=None)
shed.inc()
shed.inc(0.5)
for wrong in (lambda: requests.inc(), lambda: requests.labels("x").inc(-1), lambda: latency.observe(1),
              lambda: in_flight.inc(), lambda: in_flight.dec()):
    try:
        wrong()
    except ValueError as error:
        print(type(error).__name__, error)
    else:
        raise SystemExit("refused by prometheus_client, accepted here")
in_flight.labels("http").inc(3)
in_flight.labels("http").dec()
ready.labels("m").set(1)
grouped = Counter("grouped", "g", ["route"], registry=None)
grouped_latency = Histogram("grouped_latency", "l", registry=None)
if sys.argv[1] == "ours":  # a request's writes in one step
    metrics.add([
        metrics.counted(grouped.labels("a")), metrics.counted(grouped.labels("a"), 2),
        metrics.counted(in_flight.labels("grpc"), -1.0), *metrics.observed(grouped_latency, 0.003),
        *metrics.observed(grouped_latency, float("nan")), *metrics.observed(grouped_latency, 9.0),
    ])
else:
    grouped.labels("a").inc(); grouped.labels("a").inc(2); in_flight.labels("grpc").dec()
    for amount in (0.003, float("nan"), 9.0):
        grouped_latency.observe(amount)
"""


refusals: dict[str, bytes] = {}


def _samples(folder: Path, value_class: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float | str]:
    folder.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder), "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, "-c", WRITES, value_class], cwd=ROOT, env=env, timeout=60, check=True, capture_output=True
    )
    refusals[value_class] = run.stdout
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))  # type: ignore[no-untyped-call]
    return {
        # liveall gauges carry the writer's pid, which differs between the two runs
        (sample.name, tuple(sorted({**sample.labels, **({"pid": "-"} if "pid" in sample.labels else {})}.items()))): (
            sample.value if sample.value == sample.value else "NaN"  # NaN equal to NaN, for the comparison
        )
        for family in registry.collect()
        for sample in family.samples
    }


def test_the_files_hold_what_prometheus_clients_own_values_would(tmp_path: Path) -> None:
    """Our value class and our one-step metrics against prometheus_client's own, sample for sample."""
    ours, theirs = _samples(tmp_path / "ours", "ours"), _samples(tmp_path / "theirs", "prometheus")
    assert ours == theirs
    assert refusals["ours"] == refusals["prometheus"]
    assert refusals["ours"].count(b"ValueError") == 5
    assert ours[("latency_bucket", (("le", "0.005"), ("route", "/edges")))] == 5  # 0.005 itself falls in le=0.005
    assert ours[("latency_bucket", (("le", "+Inf"), ("route", "/edges")))] == 7  # NaN is counted in no bucket
    assert ours[("shed_total", ())] == 1.5
    assert ours[("requests_total", (("route", "/predict"),))] == 3
    assert ours[("requests_total", (("route", "/route/2999"),))] == 2999
    assert ours[("in_flight", (("transport", "http"),))] == 2
    assert ours[("latency_count", (("route", "/predict"),))] == 2
    assert ours[("grouped_total", (("route", "a"),))] == 3
    assert ours[("in_flight", (("transport", "grpc"),))] == -1
    assert ours[("grouped_latency_count", ())] == 2  # NaN in the sum, in no bucket
    assert ours[("grouped_latency_bucket", (("le", "0.005"),))] == 1


def test_writes_in_one_step_without_multiprocess_files() -> None:
    """Outside multiprocess mode (one process, the tests' own), `add` moves prometheus_client's values."""
    from src import metrics

    counter = metrics.Counter("one_step", "c", ["route"], registry=None)
    histogram = metrics.Histogram("one_step_latency", "l", registry=None, buckets=(0.1, 1.0))
    metrics.add([metrics.counted(counter.labels("a"), 2), *metrics.observed(histogram, 0.5)])
    assert counter.labels("a")._value.get() == 2
    assert histogram._sum.get() == 0.5
    assert [bucket.get() for bucket in histogram._buckets] == [0, 1, 0]
