"""What a model sees and answers for each text, as the serving side measures it: the reference side
of drift (src/drift/profile.py) is measured with these same functions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sklearn.pipeline import Pipeline

from src.engine.compiled import CompiledScorer, UnsupportedPipelineError
from src.engine.parity import model_outputs


@dataclass(frozen=True, slots=True)
class Observation:
    """One text: its words and unknown words (the model's tokenizer), the predicted label, its score."""

    tokens: int
    unknown_tokens: int
    label: str
    score: float

    @property
    def oov_rate(self) -> float:
        """Share of the words missing from the vocabulary (0 for a text without words)."""
        return self.unknown_tokens / self.tokens if self.tokens else 0.0


def score_of(winner: int, probabilities: Sequence[float] | None, scores: Sequence[float]) -> float:
    """The score drift watches: the winning class's probability, else its decision score (the single
    score of a binary model without probabilities, signed)."""
    if probabilities is not None:
        return float(probabilities[winner])
    return float(scores[0] if len(scores) == 1 else scores[winner])


def word_counts(pipeline: Any, text: str) -> tuple[int, int]:
    """A text's words and unknown words by the pipeline's first step's analyzer, when it has one
    (the Pipeline engine's count; the compiled engine counts while it weighs)."""
    vectorizer = pipeline.steps[0][1]
    if not hasattr(vectorizer, "build_analyzer") or not hasattr(vectorizer, "vocabulary_"):
        return 0, 0
    terms = vectorizer.build_analyzer()(text)
    return len(terms), sum(term not in vectorizer.vocabulary_ for term in terms)


def observe(pipeline: Pipeline, texts: Sequence[str]) -> list[Observation]:
    """One Observation per text, by the engine that would serve the pipeline."""
    classes = [str(label) for label in pipeline.classes_]
    try:
        scorer = CompiledScorer(pipeline)
    except UnsupportedPipelineError:
        output, matrix, labels = model_outputs(pipeline, texts)
        observations = []
        for text, row, label in zip(texts, matrix, labels, strict=True):
            winner = classes.index(label)
            values = row.tolist()
            probabilities = values if output == "probabilities" else None
            observations.append(
                Observation(*word_counts(pipeline, text), label, score_of(winner, probabilities, values))
            )
        return observations
    result = []
    for text in texts:
        scored = scorer.score(text)
        score = score_of(scored.winner, scored.probabilities, scored.scores)
        result.append(Observation(scored.tokens, scored.unknown_tokens, classes[scored.winner], score))
    return result
