"""The serving core of one worker, built from the settings outside any protocol: the models and their
store watch, the data plane, API keys, the prediction log and feedback, reload broadcasts.

One `ServingRuntime` is handed to the HTTP app and to the gRPC server, which only adapt their
protocol to it; `start` loads and verifies every model once (a missing or bad model leaves the worker
up and that model not ready, the reason on /health), then follows the store for new models and
versions; `stop` ends the watch and flushes the prediction log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from src import metrics, tracing
from src.config import Settings
from src.serving.dataplane import DataPlane
from src.serving.drift_metrics import DriftCollector
from src.serving.drift_window import DriftSettings
from src.serving.feedback_desk import FeedbackDesk
from src.serving.prediction_log import PredictionLog
from src.serving.reload_broadcast import CONTROL_DIR_ENV, ReloadBroadcast
from src.serving.rollout_traffic import Guards
from src.serving.served_models import ServedModels, parse_required
from src.serving.text_rules import TextLimits
from src.store.registry import ModelRegistry
from src.tenants.access import Access
from src.tenants.shared_state import SharedState


class ServingRuntime:
    """Everything a protocol adapter answers from, for one worker."""

    def __init__(self, settings: Settings, control_dir: Path | None = None) -> None:
        self.settings = settings
        self.shared_state = SharedState.from_settings(settings)
        self.access = Access.from_settings(settings, control_dir, self.shared_state)
        roots = [settings.model_dir, *([settings.bundled_model_dir] if settings.bundled_model_dir else [])]
        self.models = ServedModels(
            [ModelRegistry.from_settings(settings, root) for root in roots],
            default_name=settings.default_model_name,
            required=parse_required(settings.required_models),
            max_models=settings.max_models,
            guards=Guards.from_settings(settings),
            drift=DriftSettings.from_settings(settings),
            lazy=settings.model_load == "lazy",
            budget=settings.model_memory_budget,
            load_wait=settings.model_load_wait_seconds,
        )
        self.reloads = ReloadBroadcast.from_environment(self.models)
        self.prediction_log = PredictionLog.from_settings(settings)
        self.feedback = FeedbackDesk.from_settings(settings, self.prediction_log, control_dir, self.shared_state)
        self.data_plane = DataPlane(
            self.models, TextLimits.from_settings(settings), self.prediction_log, self.feedback.tokens
        )
        self.drift_collector = DriftCollector(self.models)
        self.rollout_key_header = settings.rollout_key_header.lower()
        self._watcher: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ServingRuntime:
        """The runtime of a worker of this server: its control folder (shared by the server's workers,
        set by the supervisor) from the environment, if any."""
        control = os.environ.get(CONTROL_DIR_ENV)
        return cls(settings, Path(control) if control else None)

    async def start(self) -> None:
        """Turn traces on if the environment asks, open the prediction log, load and verify every model,
        listen for reloads, watch the store."""
        tracing.configure()
        metrics.labelled(metrics.REQUESTS_IN_FLIGHT_LIMIT, "http").set(self.settings.max_pending_requests)
        if self.prediction_log is not None:
            self.prediction_log.start()
        await asyncio.to_thread(self.models.load_all)
        self.reloads.listen()
        if self.settings.model_poll_seconds > 0:
            self._watcher = asyncio.create_task(self.models.watch(self.settings.model_poll_seconds))

    async def stop(self) -> None:
        """Stop watching the store; write out the prediction log and the queued trace spans."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self.prediction_log is not None:
            await asyncio.to_thread(self.prediction_log.stop)
        await asyncio.to_thread(tracing.shutdown)
        if self.shared_state is not None:
            await self.shared_state.close()
