"""The drift gauges at /metrics, computed when scraped from every served model's shared window."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from src.serving.served_models import ServedModels


class DriftCollector(Collector):
    """The drift gauges, computed from the shared windows when /metrics is scraped."""

    def __init__(self, models: ServedModels) -> None:
        self.models = models

    def collect(self) -> Iterator[Metric]:
        """One series per served model with a reference profile (and per signal)."""
        statistic = GaugeMetricFamily(
            "mlservice_drift_statistic",
            "Drift of a signal over the recent window against the served version's reference profile: PSI for "
            "length, oov and score, chi-squared for label.",
            labels=["model", "version", "signal"],
        )
        threshold = GaugeMetricFamily(
            "mlservice_drift_threshold",
            "The statistic over which the signal is drifting.",
            labels=["model", "version", "signal"],
        )
        texts = GaugeMetricFamily(
            "mlservice_drift_window_texts",
            "Texts in the drift window (over every worker).",
            labels=["model", "version"],
        )
        drifting = GaugeMetricFamily(
            "mlservice_drift_drifting",
            "1 when a signal drifts and the window holds DRIFT_MIN_TEXTS texts, else 0.",
            labels=["model", "version"],
        )
        for name, state in list(self.models.models.items()):
            window = state.drift
            if window is None:
                continue
            report = window.report()
            for signal, verdict in report.signals.items():
                statistic.add_metric([name, window.version, signal], verdict.statistic)
                threshold.add_metric([name, window.version, signal], verdict.threshold)
            texts.add_metric([name, window.version], report.texts)
            drifting.add_metric([name, window.version], float(report.drifting))
        yield from (statistic, threshold, texts, drifting)
