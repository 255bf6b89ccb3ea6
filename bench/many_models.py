"""A store of many small models, each with labels of its own (`yes-<i>`, `no-<i>`): what a team with
a ticket-routing model per customer has. Used by tests/e2e/test_many_models.py and bench.lazy_models.

Each model is a plain scikit-learn TF-IDF + logistic-regression Pipeline fitted on generated texts
with a vocabulary of a few thousand words, published through the store as training publishes
(a few hundred KB each).
"""

from __future__ import annotations

import random
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from src.store.registry import ModelRegistry

YES_WORDS = ("alpha", "beta", "great", "yes")
NO_WORDS = ("gamma", "delta", "awful", "no")


def model_name(index: int) -> str:
    """The name of the index-th model (the 0th is the default model, `sentiment`)."""
    return "sentiment" if index == 0 else f"customer-{index:04d}"


def pipeline(index: int, vocabulary: int = 3000) -> Pipeline:
    """The index-th model: a few thousand words of its own, and two cue words per label."""
    rng = random.Random(index)
    words = [f"w{index}x{n}" for n in range(vocabulary)]
    texts, labels = [], []
    for row in range(400):
        cue = YES_WORDS if row % 2 else NO_WORDS
        texts.append(" ".join([*rng.sample(words, 12), *rng.sample(cue, 2)]))
        labels.append(f"yes-{index}" if row % 2 else f"no-{index}")
    return Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression(max_iter=200))]).fit(texts, labels)


def build(root: Path, count: int) -> dict[str, Pipeline]:
    """Publish `count` models under `root`; the pipelines by model name (to check answers against)."""
    registry = ModelRegistry(root)
    fitted = {}
    for index in range(count):
        name = model_name(index)
        fitted[name] = pipeline(index)
        classes = [str(label) for label in fitted[name].classes_]
        registry.store(name).publish(fitted[name], {"classes": classes})
    return fitted
