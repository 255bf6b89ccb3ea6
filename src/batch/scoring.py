"""One chunk of a table's text column scored as /predict scores it: the text rules, then the Predictor.

A value that cannot be scored (missing, null, not text, not UTF-8, blank, too long) gets the rule it
breaks in its `error` and no label; the rest of the chunk is scored as a batch. A model that raises
on a batch is asked text by text, so only the texts it fails on are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from src.config import Settings
from src.errors import InvalidInputError, ModelStoreError
from src.serving.predictor import Prediction, Predictor
from src.serving.text_rules import TextLimits, check_text
from src.store.registry import ModelRegistry


@dataclass(frozen=True)
class Unreadable:
    """A row the reader could not read (a JSON Lines line that is not a JSON object, or has no text
    field): why."""

    reason: str


@dataclass(frozen=True)
class ModelChoice:
    """Which stored model scores: the store root, the model's name, the version (CURRENT's, fixed once)."""

    model_dir: Path
    name: str
    version: str


def resolve(settings: Settings, model_dir: Path, name: str | None, version: str | None) -> ModelChoice:
    """The version to score with, fixed before any row is read: the one named, or CURRENT now.

    ModelStoreError (one line) when the model or the version does not exist."""
    registry = ModelRegistry.from_settings(settings, model_dir)
    name = name or settings.default_model_name
    if name not in registry.names():
        known = ", ".join(registry.names()) or "none"
        raise ModelStoreError(f"no model named {name!r} in {model_dir} (models: {known})")
    store = registry.resolve(name)
    chosen = version or store.current_version()
    if chosen is None:
        raise ModelStoreError(f"model {name} has no CURRENT version in {model_dir}")
    if chosen not in store.versions():
        raise ModelStoreError(f"model {name} has no version {chosen!r} in {model_dir}")
    return ModelChoice(model_dir, name, chosen)


def load_predictor(settings: Settings, choice: ModelChoice) -> Predictor:
    """The chosen version, verified and loaded as a server loads it (sha256, trusted types, limits)."""
    registry = ModelRegistry.from_settings(settings, choice.model_dir)
    return Predictor(registry.resolve(choice.name).load(choice.version))


@dataclass
class ScoredChunk:
    """A chunk's results in row order: a label or None, one value per output column (NaN where refused),
    and the rule a refused row breaks."""

    labels: list[str | None]
    values: npt.NDArray[np.float64]
    errors: list[str | None]

    @property
    def refused(self) -> int:
        """How many rows of the chunk were not scored."""
        return sum(error is not None for error in self.errors)


def output_names(predictor: Predictor) -> list[str]:
    """The columns a prediction fills: probability_<class> for each class, or score_<label> for each score."""
    if predictor.has_probabilities:
        return [f"probability_{label}" for label in predictor.classes]
    return [f"score_{label}" for label in predictor.score_labels]


def _text(value: object, limits: TextLimits) -> str:
    """The value as a text the rules accept, or InvalidInputError naming the rule it breaks."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidInputError(f"text is not UTF-8 (byte {error.start})") from None
    if isinstance(value, str):
        check_text(value, limits, ())
        return value
    if isinstance(value, Unreadable):
        raise InvalidInputError(value.reason)
    if value is None:
        raise InvalidInputError("text is empty (null)")
    raise InvalidInputError(f"text must be a string, not {type(value).__name__}")


class ChunkScorer:
    """Scores chunks with one loaded version; made once per process (a worker, an executor)."""

    def __init__(self, predictor: Predictor, limits: TextLimits) -> None:
        self.predictor = predictor
        self.limits = limits
        self.names = output_names(predictor)

    def score(self, values: Sequence[object]) -> ScoredChunk:
        """Every value of a chunk of the text column, in order."""
        count = len(values)
        errors: list[str | None] = [None] * count
        texts: list[str] = []
        rows: list[int] = []
        for row, value in enumerate(values):
            try:
                texts.append(_text(value, self.limits))
            except InvalidInputError as error:
                errors[row] = error.message
            else:
                rows.append(row)
        labels: list[str | None] = [None] * count
        table = np.full((count, len(self.names)), np.nan)
        for row, prediction in zip(rows, self._predict(texts, rows, errors), strict=True):
            if prediction is None:
                continue
            labels[row] = prediction.label
            outputs = prediction.probabilities if prediction.probabilities is not None else prediction.scores
            table[row] = list(outputs.values()) if outputs else np.nan
        return ScoredChunk(labels, table, errors)

    def _predict(self, texts: list[str], rows: list[int], errors: list[str | None]) -> list[Prediction | None]:
        try:
            return list(self.predictor.predict_batch(texts))
        except Exception:
            pass
        predictions: list[Prediction | None] = []
        for row, text in zip(rows, texts, strict=True):
            try:
                predictions.append(self.predictor.predict(text))
            except Exception as error:
                errors[row] = f"the model failed on this text: {type(error).__name__}: {str(error)[:200]}"
                predictions.append(None)
        return predictions


def limits_of(settings: Settings) -> TextLimits:
    """The serving text limits (MAX_TEXT_LENGTH; a chunk is not a request, so no batch limit)."""
    return TextLimits(settings.max_text_length, max_batch_size=1)
