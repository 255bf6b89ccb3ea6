"""The drift gauges: computed from the served model's window when scraped."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from src.serving.drift_metrics import DriftCollector
from src.serving.predictor import Prediction
from src.serving.served_models import ServedModels
from src.store.registry import ModelRegistry


def _texts(count: int, words: int) -> list[Prediction]:
    return [Prediction("positive", {"negative": 0.2, "positive": 0.8}, words, 1) for _ in range(count)]


def test_the_gauges_are_computed_from_the_window(model_dir: Path) -> None:
    models = ServedModels([ModelRegistry(model_dir)], default_name="sentiment", max_models=2)
    models.load_all()
    window = models.default.drift
    assert window is not None, models.default.no_drift_reason
    window.record(_texts(300, 2))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DriftCollector(models))
    exposition = generate_latest(registry).decode()
    version = window.version
    assert f'mlservice_drift_window_texts{{model="sentiment",version="{version}"}} 300.0' in exposition
    assert f'mlservice_drift_drifting{{model="sentiment",version="{version}"}} 1.0' in exposition
    for signal in ("length", "oov", "score", "label"):
        assert f'mlservice_drift_statistic{{model="sentiment",signal="{signal}",version="{version}"}}' in exposition
