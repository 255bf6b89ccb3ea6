"""The serving-side model: a verified stored model, scored by its compiled form when it has one."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from src.engine.compiled import CompiledScorer, UnsupportedPipelineError
from src.engine.observations import score_of, word_counts
from src.errors import NotExplainableError
from src.serving.explanation import Explanation, explain
from src.serving.memory import deep_size
from src.store.store import StoredModel

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Prediction:
    """One text's result: the label, and either every class's probability or the model's decision
    scores (a model without probabilities, such as LinearSVC), and what the model saw. Read, never
    changed (not frozen: one is made per text served, and a frozen dataclass costs five times as much)."""

    label: str
    probabilities: dict[str, float] | None
    tokens: int
    unknown_tokens: int
    scores: dict[str, float] | None = None

    @property
    def confidence(self) -> float | None:
        """The winning class's probability (None for a model without probabilities)."""
        return None if self.probabilities is None else self.probabilities[self.label]

    @property
    def oov_rate(self) -> float:
        """Share of the text's words missing from the model's vocabulary (0 for a text without words)."""
        return self.unknown_tokens / self.tokens if self.tokens else 0.0

    def score(self, classes: list[str]) -> float:
        """The score drift watches (src/engine/observations.py's score_of), given the model's classes."""
        if self.probabilities is not None:
            return self.probabilities[self.label]
        values = list(self.scores.values()) if self.scores else [0.0]
        return score_of(classes.index(self.label), None, values)


def _score_labels(classes: list[str], width: int) -> list[str]:
    return classes[1:] if width == 1 and len(classes) == 2 else classes


class Predictor:
    """Predicts with one model version; immutable, so a reload swaps in a whole new Predictor.

    Its output is `probabilities` when the model has them (`predict_proba`), otherwise `scores`: the
    decision function, one score for a binary model (for its second class), one per class otherwise.
    """

    def __init__(self, stored: StoredModel) -> None:
        self.version = stored.version
        self.metadata: dict[str, Any] = stored.metadata
        self.pipeline = stored.pipeline
        self.classes: list[str] = [str(label) for label in stored.pipeline.classes_]
        self.scorer: CompiledScorer | None
        self.reason: str | None = None
        try:
            self.scorer = CompiledScorer(stored.pipeline)
        except UnsupportedPipelineError as reason:
            logger.warning("model %s: serving through scikit-learn, not compiled: %s", self.version, reason)
            self.scorer = None
            self.reason = str(reason)
        if self.scorer is not None:
            self.has_probabilities = self.scorer.has_probabilities
            self.score_labels = list(self.scorer.head.score_labels)
        else:
            self.has_probabilities = hasattr(self.pipeline, "predict_proba")
            width = len(self.classes) if self.has_probabilities else _decision_width(self.pipeline, len(self.classes))
            self.score_labels = _score_labels(self.classes, width)
        # What serving it holds: the Pipeline and the compiled scorer (arrays shared between them counted once).
        self.memory_bytes = deep_size(self.pipeline, self.scorer)

    @property
    def engine(self) -> str:
        """`compiled` when the fast exact scorer serves, `pipeline` when scikit-learn does."""
        return "compiled" if self.scorer is not None else "pipeline"

    @property
    def output(self) -> str:
        """`probabilities` or `scores`: what this model's predictions carry besides the label."""
        return "probabilities" if self.has_probabilities else "scores"

    def _result(
        self, winner: int, probabilities: Sequence[float] | None, scores: Sequence[float], tokens: int, unknown: int
    ) -> Prediction:
        # Python floats already (the compiled scorer's, or a row's tolist()), one per class or score label
        label = self.classes[winner]
        if probabilities is not None:
            return Prediction(label, dict(zip(self.classes, probabilities, strict=True)), tokens, unknown)
        return Prediction(label, None, tokens, unknown, dict(zip(self.score_labels, scores, strict=True)))

    def predict(self, text: str) -> Prediction:
        """Classify one text."""
        return self.predict_batch([text])[0]

    def predict_batch(self, texts: Sequence[str]) -> list[Prediction]:
        """Classify many texts, results in the same order."""
        scorer = self.scorer
        if scorer is not None:
            result = self._result
            return [
                result(s.winner, s.probabilities, s.scores, s.tokens, s.unknown_tokens)
                for s in map(scorer.score, texts)
            ]
        batch = list(texts)
        labels = [str(label) for label in self.pipeline.predict(batch)]
        winners = [self.classes.index(label) for label in labels]
        if self.has_probabilities:
            rows = self.pipeline.predict_proba(batch)
            return [
                self._result(w, row.tolist(), [], *self._word_counts(text))
                for w, text, row in zip(winners, batch, rows, strict=True)
            ]
        scores = np.asarray(self.pipeline.decision_function(batch), dtype=np.float64).reshape(len(batch), -1)
        return [
            self._result(w, None, row.tolist(), *self._word_counts(text))
            for w, text, row in zip(winners, batch, scores, strict=True)
        ]

    def predict_explained(self, text: str, top: int = 10, *, name: str = "") -> tuple[Prediction, Explanation]:
        """Classify one text and give the `top` terms' exact shares of the decision (compiled models only)."""
        scorer = self.scorer
        if scorer is None:
            raise NotExplainableError(name or "?", self.version, self.reason or "")
        _, explanation = explain(scorer, text, top)
        # The answer is the plain one, bit for bit: one text, one answer, explained or not.
        return self.predict(text), explanation

    def _word_counts(self, text: str) -> tuple[int, int]:
        # Only on the fallback path, so building the analyzer per call costs nothing that matters.
        return word_counts(self.pipeline, text)


def _decision_width(pipeline: Any, n_classes: int) -> int:
    coef = getattr(pipeline.steps[-1][1], "coef_", None)
    if coef is not None:
        return int(np.asarray(coef).shape[0])
    return 1 if n_classes == 2 else n_classes
