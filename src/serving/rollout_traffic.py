"""A running rollout inside one worker: who the candidate answers, what it is compared on, its guards.

- Canary: a request is answered by the candidate when its client's key (the ROLLOUT_KEY_HEADER
  header) falls in the rollout's share; the same key always gets the same version for a rollout.
  A request without a key is split on its own, at random (one address is often a proxy for many
  clients, so splitting by address would give a proxy's clients all or none). Those texts are scored
  by CURRENT too, after the answer is sent, to measure agreement. A text the candidate fails to
  score is answered by CURRENT.
- Shadow: CURRENT answers every request; the rollout's share of requests is also scored by the
  candidate after the answer is sent, so clients never wait for it.

Comparison scoring (CURRENT re-scoring a canary's texts, the candidate scoring a shadowed request's)
runs in one thread per worker behind a bounded queue, never on the event loop; when the queue is
full the comparison is skipped and counted. The latency guard compares the two models on the same
texts: the candidate's time and CURRENT's time on exactly the texts both scored, so a client that
sends long texts to one and short texts to the other moves nothing; it judges the median of the
requests' ratios, once ROLLOUT_MIN_REQUESTS texts were compared, so one stall does not trip it.

Each worker judges the candidate on what it saw itself, once it has scored ROLLOUT_MIN_REQUESTS
texts: error rate, latency ratio to CURRENT, label disagreement with CURRENT. A guard that trips
stops the candidate in this worker at once, and aborts the rollout in the store (the first writer
wins), which every other worker and pod follows at its next poll.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import random
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from src import metrics
from src.config import Settings, default_of
from src.serving.predictor import Prediction, Predictor
from src.store.rollout import Rollout

PAIR_RATIOS = 1000  # the requests whose latency ratios the guard's median is taken over

logger = logging.getLogger(__name__)

# In canary mode, the share of the candidate's texts also scored by CURRENT to measure agreement.
CANARY_COMPARISON_SHARE = 1.0
# Comparisons waiting for the worker's comparison thread; past it they are skipped and counted.
COMPARISON_QUEUE = 64


@dataclass(frozen=True)
class Guards:
    """The thresholds a candidate must stay within (settings ROLLOUT_*)."""

    min_requests: int = default_of("rollout_min_requests")
    max_error_rate: float = default_of("rollout_max_error_rate")
    max_latency_ratio: float = default_of("rollout_max_latency_ratio")
    max_disagreement: float = default_of("rollout_max_disagreement")
    max_seconds_per_text: float = default_of("rollout_max_seconds_per_text")  # one request slower trips at once

    @classmethod
    def from_settings(cls, settings: Settings) -> Guards:
        """ROLLOUT_MIN_REQUESTS, ROLLOUT_MAX_ERROR_RATE, ROLLOUT_MAX_LATENCY_RATIO, ROLLOUT_MAX_DISAGREEMENT and
        ROLLOUT_MAX_SECONDS_PER_TEXT."""
        return cls(
            settings.rollout_min_requests,
            settings.rollout_max_error_rate,
            settings.rollout_max_latency_ratio,
            settings.rollout_max_disagreement,
            settings.rollout_max_seconds_per_text,
        )


@dataclass
class Figures:
    """What this worker saw of the candidate and of CURRENT during the rollout."""

    candidate_texts: int = 0
    candidate_errors: int = 0
    # The candidate's time over CURRENT's on the same texts, request by request (the newest
    # PAIR_RATIOS; the sums are in the metrics, for the rollout's figures over every worker): the guard
    # judges their median, so one stall of either model (a page fault, a pause of the comparison
    # thread) among requests of microseconds does not read as a slow model.
    pair_ratios: deque[float] = field(default_factory=lambda: deque(maxlen=PAIR_RATIOS))
    slowest_per_text: float = 0.0  # the candidate's slowest request, in seconds per text
    compared: int = 0
    agreed: int = 0
    absolute_difference: float = 0.0

    def error_rate(self) -> float:
        attempts = self.candidate_texts + self.candidate_errors
        return self.candidate_errors / attempts if attempts else 0.0

    def latency_ratio(self) -> float | None:
        """The candidate's time over CURRENT's on the texts both scored: the median over the requests."""
        if not self.pair_ratios:
            return None
        return statistics.median(self.pair_ratios)

    def disagreement(self) -> float | None:
        return 1.0 - self.agreed / self.compared if self.compared else None


def _difference(a: Prediction, b: Prediction) -> float:
    """Mean |difference| of two predictions' probabilities (or scores), class by class."""
    left, right = a.probabilities or a.scores or {}, b.probabilities or b.scores or {}
    shared = left.keys() & right.keys()
    return sum(abs(left[k] - right[k]) for k in shared) / len(shared) if shared else 0.0


class RolloutTraffic:
    """One model's running rollout in this worker, with the candidate loaded and verified."""

    def __init__(
        self,
        model: str,
        rollout: Rollout,
        candidate: Predictor,
        guards: Guards,
        on_trip: Callable[[RolloutTraffic, str, str], None],
    ) -> None:
        self.model = model
        self.rollout = rollout
        self.candidate = candidate
        self.guards = guards
        self.figures = Figures()
        self.stopped = False
        self._on_trip = on_trip
        self._salt = rollout.id.encode()
        self._lock = threading.Lock()  # the figures change on the event loop and in the comparison thread
        self._comparisons: queue.Queue[tuple[Callable[..., None], tuple[object, ...]] | None] = queue.Queue(
            COMPARISON_QUEUE
        )
        self._comparer: threading.Thread | None = None
        metrics.ROLLOUT_RUNNING.labels(model, candidate.version, rollout.mode).set(1)

    def stop(self) -> None:
        """Stop using the candidate in this worker (a guard tripped, or the rollout ended)."""
        if not self.stopped:
            self.stopped = True
            metrics.ROLLOUT_RUNNING.labels(self.model, self.candidate.version, self.rollout.mode).set(0)
            if self._comparer is not None:
                with contextlib.suppress(queue.Full):  # when full, the thread sees `stopped` at its next item
                    self._comparisons.put_nowait(None)

    def submit(self, work: Callable[..., None], *args: object) -> bool:
        """Run a comparison in this rollout's comparison thread, off the event loop; False (counted) when
        its queue is full."""
        if self.stopped:
            return False
        if self._comparer is None:
            self._comparer = threading.Thread(target=self._compare_forever, name=f"rollout-{self.model}", daemon=True)
            self._comparer.start()
        try:
            self._comparisons.put_nowait((work, args))
        except queue.Full:
            metrics.ROLLOUT_COMPARISONS_SKIPPED.labels(self.model).inc()
            return False
        return True

    def _compare_forever(self) -> None:
        """Run comparisons until the rollout stops and nothing is left (what is left then is skipped)."""
        while True:
            try:
                item = self._comparisons.get(timeout=1.0)
            except queue.Empty:
                if self.stopped:
                    return
                continue
            try:
                if item is not None and not self.stopped:
                    work, args = item
                    try:
                        work(*args)
                    except Exception:  # a comparison must never take the thread down
                        logger.exception("model %s: a rollout comparison failed", self.model)
            finally:
                self._comparisons.task_done()

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until every comparison submitted so far is done; whether they were within `timeout`."""
        deadline = time.monotonic() + timeout
        while self._comparisons.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        return True

    def _bucket(self, key: str) -> float:
        digest = hashlib.blake2b(key.encode(errors="replace"), key=self._salt, digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64 * 100.0

    def answers(self, client: str) -> bool:
        """Canary: whether the candidate answers the client the key names (sticky for the rollout's life),
        or, for a request without a key (""), this request alone (at random)."""
        if self.stopped or self.rollout.mode != "canary":
            return False
        share = self._bucket(client) if client else random.random() * 100.0
        return share < self.rollout.percent

    def shadows(self) -> bool:
        """Shadow: whether the candidate also scores this request, off the response path."""
        return not self.stopped and self.rollout.mode == "shadow" and random.random() * 100.0 < self.rollout.percent

    def record_current(self, version: str, texts: int, seconds: float) -> None:
        """CURRENT scored `texts` texts in `seconds` during the rollout."""
        if self.stopped:
            return
        metrics.ROLLOUT_REQUESTS.labels(self.model, version, "current").inc(texts)
        metrics.ROLLOUT_SECONDS.labels(self.model, version, "current").inc(seconds)

    def record_candidate(self, texts: int, seconds: float) -> None:
        """The candidate scored `texts` texts in `seconds`."""
        version = self.candidate.version
        self.figures.candidate_texts += texts
        self.figures.slowest_per_text = max(self.figures.slowest_per_text, seconds / max(texts, 1))
        if seconds / max(texts, 1) > self.guards.max_seconds_per_text:
            self._judge()
        metrics.ROLLOUT_REQUESTS.labels(self.model, version, "candidate").inc(texts)
        metrics.ROLLOUT_SECONDS.labels(self.model, version, "candidate").inc(seconds)

    def record_error(self, texts: int, error: BaseException) -> None:
        """The candidate failed to score `texts` texts; judged at once."""
        version = self.candidate.version
        self.figures.candidate_errors += texts
        metrics.ROLLOUT_ERRORS.labels(self.model, version).inc(texts)
        logger.warning("model %s: candidate %s failed to score: %r", self.model, version, error)
        self._judge()

    def score_candidate(self, texts: Sequence[str]) -> list[Prediction] | None:
        """The candidate's predictions, timed and counted; None (an error counted) if it fails."""
        started = time.perf_counter()
        try:
            predictions = self.candidate.predict_batch(texts)
        except Exception as error:  # a candidate must never fail a request: CURRENT answers instead
            self.record_error(len(texts), error)
            return None
        self.record_candidate(len(texts), time.perf_counter() - started)
        return predictions

    def shadow(self, texts: Sequence[str], current: Sequence[Prediction], current_seconds: float) -> None:
        """Shadow, after CURRENT's answer was sent: the candidate scores the same texts, compared."""
        if self.stopped:
            return
        started = time.perf_counter()
        candidate = self.score_candidate(texts)
        if candidate is not None:
            self.compare(current, candidate, (time.perf_counter() - started, current_seconds))

    def check(
        self, current: Predictor, texts: Sequence[str], candidate: Sequence[Prediction], candidate_seconds: float
    ) -> None:
        """Canary, after the candidate's answer was sent: CURRENT scores the same texts, compared."""
        if self.stopped or random.random() >= CANARY_COMPARISON_SHARE:
            return
        started = time.perf_counter()
        ours = current.predict_batch(texts)
        seconds = time.perf_counter() - started
        self.record_current(current.version, len(texts), seconds)
        self.compare(ours, candidate, (candidate_seconds, seconds))

    def compare(
        self,
        current: Sequence[Prediction],
        candidate: Sequence[Prediction],
        seconds: tuple[float, float] | None = None,
    ) -> None:
        """Record agreement between CURRENT's and the candidate's predictions of the same texts, and the
        two models' time on them (`seconds`: the candidate's, CURRENT's), then judge."""
        if self.stopped:
            return
        agreed = sum(a.label == b.label for a, b in zip(current, candidate, strict=True))
        difference = sum(_difference(a, b) for a, b in zip(current, candidate, strict=True))
        version = self.candidate.version
        with self._lock:
            self.figures.compared += len(current)
            self.figures.agreed += agreed
            self.figures.absolute_difference += difference
            if seconds is not None and seconds[1] > 0:
                self.figures.pair_ratios.append(seconds[0] / seconds[1])
        if seconds is not None:
            metrics.ROLLOUT_PAIRED_SECONDS.labels(self.model, version, "candidate").inc(seconds[0])
            metrics.ROLLOUT_PAIRED_SECONDS.labels(self.model, self.rollout.baseline, "current").inc(seconds[1])
        metrics.ROLLOUT_COMPARED.labels(self.model, version).inc(len(current))
        metrics.ROLLOUT_AGREED.labels(self.model, version).inc(agreed)
        metrics.ROLLOUT_ABSOLUTE_DIFFERENCE.labels(self.model, version).inc(difference)
        self._judge()

    def verdict(self) -> tuple[str, str] | None:
        """(guard, reason) when the candidate is out of bounds, once it has scored enough texts."""
        figures, guards = self.figures, self.guards
        if figures.slowest_per_text > guards.max_seconds_per_text:
            return "scoring_time", (
                f"candidate took {figures.slowest_per_text:.2f} s per text on one request, over "
                f"{guards.max_seconds_per_text} s"
            )
        if figures.candidate_texts + figures.candidate_errors < guards.min_requests:
            return None
        if figures.error_rate() > guards.max_error_rate:
            return "error_rate", (
                f"candidate error rate {figures.error_rate():.3f} over {guards.max_error_rate} "
                f"({figures.candidate_errors} of {figures.candidate_texts + figures.candidate_errors} texts)"
            )
        ratio = figures.latency_ratio()
        if ratio is not None and figures.compared >= guards.min_requests and ratio > guards.max_latency_ratio:
            return "latency_ratio", f"candidate latency {ratio:.2f}x CURRENT's, over {guards.max_latency_ratio}x"
        disagreement = figures.disagreement()
        if (
            disagreement is not None
            and figures.compared >= guards.min_requests
            and disagreement > guards.max_disagreement
        ):
            return "disagreement", (
                f"candidate disagrees with CURRENT on {disagreement:.1%} of {figures.compared} texts, "
                f"over {guards.max_disagreement:.0%}"
            )
        return None

    def _judge(self) -> None:
        with self._lock:
            tripped = self.verdict()
            if tripped is None or self.stopped:
                return
            self.stop()
        guard, reason = tripped
        metrics.ROLLOUT_ABORTS.labels(self.model, guard).inc()
        logger.error("model %s: rollout of %s aborted: %s", self.model, self.candidate.version, reason)
        self._on_trip(self, guard, reason)
