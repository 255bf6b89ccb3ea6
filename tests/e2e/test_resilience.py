"""Faults provoked for real against the production server: overload, model updates, SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from src.model.datasets import Dataset
from src.model.trainer import ModelTrainer
from src.store.registry import ModelRegistry
from src.store.serialization import dump_pipeline
from src.store.store import METADATA_FILE, MODEL_FILE, ModelStore
from tests.e2e.servers import (
    free_port,
    metric_value,
    production_command,
    production_env,
    request,
    running_server,
    stop,
    wait_until,
)
from tests.k8s.tools import resource
from tests.store.forge import write_version

pytestmark = pytest.mark.e2e

LONG_TEXT = "a long and winding review of a film that was good in parts and dull in others " * 20


def _statuses(exposition: str, route: str) -> Counter[str]:
    found: Counter[str] = Counter()
    for line in exposition.splitlines():
        if line.startswith("mlservice_http_requests_total{") and f'route="{route}"' in line:
            status = line.split('status="')[1].split('"')[0]
            found[status] += int(float(line.rsplit(" ", 1)[1]))
    return found


def test_burst_past_the_bound_gets_only_200_and_503_and_recovers(model_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    env = production_env(model_dir, port, tmp_path, MAX_PENDING_REQUESTS="8")
    readiness = resource("Deployment", "ml-service")["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    with running_server(production_command(), port, env, tmp_path) as server:
        probes: list[tuple[float, float]] = []  # (seconds since the burst began, probe duration)
        done = threading.Event()
        began = time.perf_counter()

        def probe() -> None:
            while not done.is_set():
                started = time.perf_counter()
                assert request(server.url("/health/ready"), timeout=10).status == 200
                probes.append((started - began, time.perf_counter() - started))
                time.sleep(0.1)

        prober = threading.Thread(target=probe)
        prober.start()
        script = Path(__file__).resolve().parents[2] / "bench" / "wrk.lua"
        burst = subprocess.run(
            # wrk's own 2 s timeout counts a slow answer as a socket error; on this shared 2-core
            # machine a queued long text can take that long, and answered is what this test is about.
            ["wrk", "-t2", "-c256", "-d7s", "--timeout", "15s", "-s", str(script), server.url("/predict")],
            env={**os.environ, "BODY": json.dumps({"text": LONG_TEXT})},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        done.set()
        prober.join(10)
        result = json.loads(burst.stdout.strip().splitlines()[-1])
        statuses = _statuses(request(server.url("/metrics")).body.decode(), "/predict")
        assert set(statuses) == {"200", "503"}, statuses
        assert statuses["503"] > 0
        assert statuses["200"] > 0
        assert result["socket_errors"] == 0, result
        probe_times = [duration for _, duration in probes]
        # The first second, while wrk opens its 256 connections, a new connection waits up to about
        # 2.5-3 s for its first byte (measured on this code and on fb304f7 alike; 3.0 s once on
        # 2026-11-29): within what takes a pod out of the Service (failureThreshold probes past
        # timeoutSeconds), never longer. The burst runs 7 s, so probes after the stall are seen.
        patience = readiness["timeoutSeconds"] * readiness["failureThreshold"]
        assert max(probe_times) < patience, f"a health probe took {max(probe_times):.2f} s under load"
        steady = [duration for at, duration in probes if at > 4.5]
        assert steady, probes
        assert max(steady) < 1.0, f"once the burst runs, a health probe took {max(steady):.2f} s"
        recovered = [request(server.url("/predict"), body={"text": "fine"}).status for _ in range(30)]
        assert recovered == [200] * 30
        print(  # noqa: T201 - the counts the hardening issue asks for
            f"\nburst: {result['requests']} requests, {statuses['200']} answered 200, {statuses['503']} shed with 503; "
            f"slowest health probe {max(probe_times) * 1000:.0f} ms; wrk p99 {result['p99_us'] / 1000:.1f} ms"
        )


class Load:
    """Sequential /predict requests from a few threads, recording every outcome and model version."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.stop = threading.Event()
        self.results: list[tuple[float, int, str | None]] = []
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                reply = request(self.url, body={"text": "a moving, lovely film"}, timeout=10)
            except OSError as error:
                with self.lock:
                    self.failures.append(repr(error))
                continue
            version = reply.json().get("model_version") if reply.status == 200 else None
            with self.lock:
                self.results.append((time.monotonic(), reply.status, version))

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(15)


def _bad_copy(store: ModelStore, good: str, name: str) -> Path:
    target = store.root / f".tmp-{name}"
    shutil.copytree(store.root / good, target)
    return target


def _publish_bad(store: ModelStore, folder: Path) -> str:
    final = store.root / folder.name.removeprefix(".tmp-")
    folder.rename(final)
    store.activate(final.name)
    return final.name


def test_hot_reload_under_load_and_rejected_models(sample: Dataset, tmp_path: Path) -> None:
    root = tmp_path / "store"
    small = sample.sample(1500, random_state=3)
    trainer = ModelTrainer().train(small.texts, small.labels)
    old = trainer.save_model(root)
    store = ModelRegistry(root).store()
    port = free_port()
    env = production_env(root, port, tmp_path, MODEL_POLL_SECONDS="0.5")
    with running_server(production_command(), port, env, tmp_path) as server, Load(server.url("/predict")) as load:
        time.sleep(1)
        published_at = time.monotonic()
        new = trainer.save_model(root)
        wait_until(lambda: load.results and load.results[-1][2] == new, 20, "responses from the new version")
        switched_at = min(t for t, _, v in load.results if v == new)
        time.sleep(1)
        assert all(v == new for t, _, v in load.results if t > switched_at + 1.5)  # both workers switched

        corrupt = _bad_copy(store, new, "corrupt")
        data = bytearray((corrupt / MODEL_FILE).read_bytes())
        data[100] ^= 0xFF
        (corrupt / MODEL_FILE).write_bytes(bytes(data))
        wrong_sha = _bad_copy(store, new, "wrong-sha")
        meta = json.loads((wrong_sha / METADATA_FILE).read_text())
        (wrong_sha / METADATA_FILE).write_text(json.dumps({**meta, "sha256": "0" * 64}))
        old_sklearn = _bad_copy(store, new, "old-sklearn")
        (old_sklearn / METADATA_FILE).write_text(json.dumps({**meta, "sklearn_version": "1.3.2"}))
        untrusted = Pipeline(
            [("tfidf", TfidfVectorizer()), ("scale", StandardScaler(with_mean=False)), ("clf", LogisticRegression())]
        )
        tiny = small.sample(200, random_state=1)
        untrusted.fit(tiny.texts, tiny.labels)
        write_version(tmp_path / "other", "untrusted", dump_pipeline(untrusted))  # publish() would refuse it
        shutil.move(str(tmp_path / "other" / "untrusted"), str(store.root / ".tmp-untrusted"))
        failures = 'mlservice_model_loads_total{kind="reload",model="sentiment",outcome="failure"}'
        for rejected_so_far, folder in enumerate((corrupt, wrong_sha, old_sklearn, store.root / ".tmp-untrusted")):
            _publish_bad(store, folder)
            expected = 2 * (rejected_so_far + 1)  # both workers try it and refuse it
            wait_until(
                lambda expected=expected: (
                    metric_value(request(server.url("/metrics")).body.decode(), failures) == expected
                ),
                15,
                f"{expected} rejected reloads",
            )
            assert request(server.url("/health/ready")).status == 200
        finished_at = time.monotonic()
        exposition = request(server.url("/metrics")).body.decode()
    assert load.failures == []
    assert {status for _, status, _ in load.results} == {200}
    versions = [v for _, _, v in sorted(load.results)]
    assert versions[0] == old
    assert versions[-1] == new
    assert all(v == new for t, _, v in load.results if t > switched_at + 1.5)
    rejected = metric_value(exposition, failures)
    assert rejected == 8  # four bad versions, each refused by both workers
    log = server.log()
    for reason in ("does not match the sha256", "scikit-learn 1.3.2", "untrusted types", "kept version"):
        assert reason in log, reason
    print(  # noqa: T201
        f"\nhot reload: {len(load.results)} requests under load, 0 failed; new version served "
        f"{switched_at - published_at:.2f} s after publishing (poll 0.5 s); 4 bad versions rejected "
        f"({rejected:.0f} rejections over 2 workers) in {finished_at - switched_at:.0f} s, readiness 200 throughout"
    )


def test_sigterm_under_load_completes_accepted_requests(model_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    env = production_env(model_dir, port, tmp_path, GRACEFUL_TIMEOUT_SECONDS="5")
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    stop_sending = threading.Event()

    def send() -> None:
        while not stop_sending.is_set():
            try:
                reply = request(f"http://127.0.0.1:{port}/predict", body={"text": LONG_TEXT}, timeout=10)
                kind = str(reply.status)
            except urllib.error.URLError as error:
                kind = type(error.reason).__name__
            except OSError as error:
                kind = type(error).__name__
            with lock:
                outcomes[kind] += 1

    with running_server(production_command(), port, env, tmp_path) as server:
        senders = [threading.Thread(target=send) for _ in range(8)]
        for sender in senders:
            sender.start()
        time.sleep(1.5)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(30)
        exited_after = time.monotonic() - signalled
        time.sleep(0.5)
        stop_sending.set()
        for sender in senders:
            sender.join(15)
    assert stop(server.process) in (0, -signal.SIGTERM)
    assert exited_after < 5 + 5
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(tmp_path / "metrics"))  # type: ignore[no-untyped-call]
    served = _statuses(generate_latest(registry).decode(), "/predict")
    assert set(served) == {"200"}, served  # nothing the server started failed
    assert outcomes["200"] == served["200"]  # and every answer reached its client
    assert outcomes["ConnectionRefusedError"] > 0  # new connections were refused after the signal
    # The rest never reached the app: connections still in the kernel's accept queue when the
    # listening sockets closed are reset (in Kubernetes the preStop delay keeps new ones away).
    connection_errors = {"ConnectionRefusedError", "ConnectionResetError", "BrokenPipeError", "ConnectionAbortedError"}
    assert set(outcomes) <= {"200"} | connection_errors, outcomes
    print(f"\nSIGTERM under load: {dict(outcomes)}; exited {exited_after:.2f} s after the signal")  # noqa: T201
