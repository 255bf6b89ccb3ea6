"""Parity: the engine that will serve a model reproduces the model's own outputs, text for text.

Before an imported model is published, its Pipeline's `predict_proba` (or `decision_function` for a
model without probabilities) and `predict` on sample texts are compared with what the serving
engine computes from the stored copy: the compiled scorer where the model compiles, else the
Pipeline loaded back from the skops file. The built-in sample mixes everyday and review-like
sentences with the awkward kinds of input a server meets (empty after tokenising, accents, emoji,
all caps, markup, very long, repeated words), made deterministically so every import checks the
same texts.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from src.engine.compiled import CompiledScorer, UnsupportedPipelineError

TOLERANCE = 1e-9

_SUBJECTS = (
    "the film",
    "this phone",
    "the hotel",
    "our waiter",
    "the battery",
    "the plot",
    "customer service",
    "the update",
    "my order",
    "the concert",
    "this laptop",
    "the food",
    "the app",
    "the delivery",
    "the second season",
    "the ending",
    "the screen",
    "this book",
    "the staff",
    "the price",
)
_OPINIONS = (
    "was wonderful",
    "was terrible",
    "is not bad",
    "is not good",
    "ruined the evening",
    "overheats all the time",
    "exceeded every expectation",
    "broke after two days",
    "was okay i guess",
    "made me smile",
    "is a waste of money",
    "works perfectly",
    "never arrived",
    "was absolutely brilliant",
    "could have been better",
    "was fine",
    "is hardly worth it",
    "did not disappoint",
    "left me cold",
    "is the best i have had",
)
_TAILS = (
    "",
    ".",
    "!",
    "!!",
    "?",
    " :)",
    " :(",
    " 👍",
    " 😡",
    " but the rest was great.",
    " but it crashed twice.",
    " and i would go back.",
    " and never again.",
    ", honestly.",
    " lol",
    " #fail",
    " http://example.com/x",
)
_AWKWARD = (
    "!!! ??? ...",
    "a",
    "I",
    "ok",
    "Café crème, naïve façade, ÉCOLE Ünïcödé",
    "日本語のテキスト 映画 良い",
    "emoji 😀😀 great 👍",
    "THE MOVIE WAS GREAT",
    "NOT GOOD. NOT GOOD AT ALL.",
    "not not not good good bad",
    "zzqxv unseenword anotherunseen",
    "\x00null\x00byte good",
    "tab\tseparated\nnew line\r\nmovie",
    "<b>bold</b> <i>markup</i> &amp; entities",
    "Not bad at all :) but I won't go back, never again :-( <3",
    "It isn\u2019t good. No problems; nothing wrong, hardly any issues!",
    "1234567890 3.14 -7 1e10",
    "\ufb01ne \ufb02awless \u216b \u2460 \uff37\uff29\uff24\uff25",  # ligatures, numerals, full width
    "good " * 400,
    "terrible, " * 300,
)


def builtin_texts(count: int = 600, seed: int = 20261129) -> list[str]:
    """`count` mixed texts (at least 500 by default), the same on every call with the same arguments."""
    rng = random.Random(seed)
    texts = list(_AWKWARD)
    words = [w for phrase in (*_SUBJECTS, *_OPINIONS) for w in phrase.split()]
    while len(texts) < count:
        kind = rng.random()
        if kind < 0.6:
            text = f"{rng.choice(_SUBJECTS)} {rng.choice(_OPINIONS)}{rng.choice(_TAILS)}"
            text = text.capitalize() if rng.random() < 0.5 else text
        elif kind < 0.8:
            text = " ".join(
                f"{rng.choice(_SUBJECTS)} {rng.choice(_OPINIONS)}{rng.choice(_TAILS)}" for _ in range(rng.randint(2, 8))
            )
        else:
            text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 60)))
        texts.append(text.upper() if rng.random() < 0.05 else text)
    return texts[:count]


_PROBE_TERMS = 2_000
_PROBE_EXTREMES = (1, 3, 10)
_PROBE_FIXED = ("qzxv wkpj yyqz", "x", "0", "!!", "a " * 2_000, "\u0301" * 50)


def probe_texts(pipeline: Any, seed: int = 20261202) -> list[str]:
    """Texts meant to trip a model that raises on some inputs: only unknown words, a lone character,
    and, from a sample of the model's own vocabulary, the terms that push each output furthest up
    and down, alone and together (an isotonic calibration with out_of_bounds='raise' fails on a score
    beyond the range it was fitted on; these texts reach for those scores)."""
    texts = list(_PROBE_FIXED)
    first = pipeline.steps[0][1] if isinstance(pipeline, Pipeline) and pipeline.steps else None
    vocabulary = getattr(first, "vocabulary_", None)
    if not isinstance(vocabulary, dict) or not vocabulary:
        return texts
    rng = random.Random(seed)
    chosen = set(rng.sample(range(len(vocabulary)), min(_PROBE_TERMS, len(vocabulary))))
    terms = [term for term, index in vocabulary.items() if index in chosen and isinstance(term, str)]
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            method = pipeline.decision_function if hasattr(pipeline, "decision_function") else pipeline.predict_proba
            values = np.asarray(method(terms), dtype=np.float64).reshape(len(terms), -1)
    except Exception:  # it raises on one of them: every term is a probe, and parity names the one
        return texts + terms
    for column in values.T:
        order = np.argsort(column, kind="stable")
        for count in _PROBE_EXTREMES:
            texts.append(" ".join(terms[i] for i in order[-count:]))
            texts.append(" ".join(terms[i] for i in order[:count]))
    return texts


@dataclass(frozen=True)
class ParityReport:
    """How closely the serving engine reproduced the model: over how many texts, on which output."""

    engine: str
    output: str
    texts: int
    max_abs_difference: float
    labels_equal: bool
    tolerance: float = TOLERANCE

    @property
    def passed(self) -> bool:
        return self.labels_equal and self.max_abs_difference <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


class ModelRaisedError(Exception):
    """The model's own predict raised on a sample text."""


def model_outputs(pipeline: Pipeline, texts: Sequence[str]) -> tuple[str, np.ndarray, list[str]]:
    """The pipeline's own output (`probabilities` or `scores`) as a matrix, one row per text, and its
    labels; when it raises, the first text it cannot take is named."""
    output = "probabilities" if hasattr(pipeline, "predict_proba") else "scores"

    def run(batch: list[str]) -> tuple[np.ndarray, list[str]]:
        # A user's model may warn on its way to an answer (or an error): only the outcome is judged.
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            values = pipeline.predict_proba(batch) if output == "probabilities" else pipeline.decision_function(batch)
            labels = [str(label) for label in pipeline.predict(batch)]
        return np.asarray(values, dtype=np.float64).reshape(len(batch), -1), labels

    try:
        matrix, labels = run(list(texts))
    except Exception:  # the user's model may raise anything: find the text, one at a time
        for index, text in enumerate(texts):
            try:
                run([text])
            except Exception as error:
                shown = text if len(text) <= 40 else text[:40] + "..."
                raise ModelRaisedError(
                    f"the model's predict raised {type(error).__name__} on sample text {index} ({shown!r}): {error}"
                ) from None
        raise
    return output, matrix, labels


def check_parity(original: Pipeline, served: Pipeline, texts: Sequence[str]) -> ParityReport:
    """Compare the original model's outputs with the serving engine's, built from the stored copy `served`."""
    output, expected, expected_labels = model_outputs(original, texts)
    try:
        scorer = CompiledScorer(served)
    except UnsupportedPipelineError:
        _, actual, labels = model_outputs(served, texts)
        engine = "pipeline"
    else:
        engine = "compiled"
        rows, labels = [], []
        for text in texts:
            scored = scorer.score(text)  # what serving computes, the one-pass form included
            rows.append(scored.probabilities if output == "probabilities" else scored.scores)
            labels.append(scorer.classes[scored.winner])
        actual = np.asarray(rows, dtype=np.float64)
    if actual.shape != expected.shape:
        return ParityReport(engine, output, len(texts), float("inf"), labels == expected_labels)
    difference = float(np.abs(actual - expected).max()) if len(texts) else 0.0
    if not np.isfinite(difference):
        difference = float("inf")
    return ParityReport(engine, output, len(texts), difference, labels == expected_labels)
