"""ModelTrainer: builds the TF-IDF + logistic-regression Pipeline, tunes, trains, evaluates, saves."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline

from src.config import get_settings
from src.model.datasets import Dataset, vader_polarity_words
from src.model.evaluation import Evaluation, evaluate_predictions
from src.model.reference import reference_profile
from src.model.text_features import TOKEN_PATTERN, NegationTfidfVectorizer, SentimentCueVectorizer
from src.store.registry import ModelRegistry

logger = logging.getLogger(__name__)

# Chosen by leave-one-source-out and the behaviour suite, not by an in-domain split, which favours a
# weaker regularisation that also learns each corpus's topic words (docs/training.md has the figures).
DEFAULT_C = 3.5

# With narrow negation, only the first words after a cue are marked (the study's choice).
NARROW_NEGATION_WORDS = 3

# The grid searched by tune(): regularisation strength and n-gram range, the two choices that matter.
DEFAULT_GRID: dict[str, list[Any]] = {
    "C": [1.0, 4.0, 16.0],
    "ngram_range": [(1, 1), (1, 2)],
}


@dataclass(frozen=True)
class TuningResult:
    """The outcome of cross-validated tuning: the winner and the mean score of every candidate."""

    best_params: dict[str, Any]
    best_score: float
    scores: list[tuple[dict[str, Any], float]]
    folds: int
    rows: int


class ModelTrainer:
    """Trains a sentiment classifier: a TF-IDF vectorizer followed by LogisticRegression.

    Hyper-parameters are constructor arguments; `tune()` picks them by cross-validation. With
    `negation` the vectorizer marks negated words (`not bad` -> `not neg_bad`); with `emoticons`
    its tokens include emoticons such as `:)`. The fitted Pipeline is `pipeline_` and its labels
    `classes_`, set by `train()`.
    """

    def __init__(
        self,
        *,
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int | float = 2,
        max_df: int | float = 0.9,
        sublinear_tf: bool = True,
        strip_accents: str | None = "unicode",
        negation: bool = True,
        emoticons: bool = True,
        lexicon_tokens: bool = True,
        contrast: bool = True,
        narrow_negation: bool = True,
        raw_cues: bool = True,
        C: float = DEFAULT_C,
        max_iter: int = 1000,
        random_state: int = 42,
        model_dir: str | Path | None = None,
    ) -> None:
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_df = max_df
        self.sublinear_tf = sublinear_tf
        self.strip_accents = strip_accents
        self.negation = negation
        self.emoticons = emoticons
        self.lexicon_tokens = lexicon_tokens
        self.contrast = contrast
        self.narrow_negation = narrow_negation
        self.raw_cues = raw_cues
        self.C = C
        self.max_iter = max_iter
        self.random_state = random_state
        self.model_dir = model_dir

    @property
    def params(self) -> dict[str, Any]:
        """The hyper-parameters, as recorded in a model's metadata."""
        return {
            "ngram_range": list(self.ngram_range),
            "min_df": self.min_df,
            "max_df": self.max_df,
            "sublinear_tf": self.sublinear_tf,
            "strip_accents": self.strip_accents,
            "negation": self.negation,
            "emoticons": self.emoticons,
            "lexicon_tokens": self.lexicon_tokens,
            "contrast": self.contrast,
            "narrow_negation": self.narrow_negation,
            "raw_cues": self.raw_cues,
            "C": self.C,
            "max_iter": self.max_iter,
            "random_state": self.random_state,
        }

    @property
    def uses_cues(self) -> bool:
        """Whether the vectorizer adds sentiment cues (SentimentCueVectorizer) beyond negation marking."""
        return self.lexicon_tokens or self.contrast or self.raw_cues or (self.negation and self.narrow_negation)

    def build_pipeline(self) -> Pipeline:
        """A new, unfitted Pipeline with this trainer's hyper-parameters.

        With any sentiment cue on, the vectorizer is SentimentCueVectorizer, carrying the VADER
        lexicon's words (read from the vaderSentiment package now, stored in the model); with
        negation marking alone, NegationTfidfVectorizer, as models before the cues were trained.
        """
        options: dict[str, Any] = {
            "ngram_range": self.ngram_range,
            "min_df": self.min_df,
            "max_df": self.max_df,
            "sublinear_tf": self.sublinear_tf,
            "strip_accents": self.strip_accents,
            "token_pattern": TOKEN_PATTERN if self.emoticons else r"(?u)\b\w\w+\b",
        }
        vectorizer: TfidfVectorizer
        if self.uses_cues:
            positive, negative = vader_polarity_words() if self.lexicon_tokens else ([], [])
            vectorizer = SentimentCueVectorizer(
                **options,
                negation=self.negation,
                negation_ends_at_and=self.narrow_negation,
                negation_max_words=NARROW_NEGATION_WORDS if self.narrow_negation else None,
                contrast=self.contrast,
                positive_words="\n".join(positive),
                negative_words="\n".join(negative),
                raw_cues=self.raw_cues,
            )
        else:
            vectorizer = (NegationTfidfVectorizer if self.negation else TfidfVectorizer)(**options)
        classifier = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.random_state)
        return Pipeline([("tfidf", vectorizer), ("clf", classifier)])

    def tune(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        grid: Mapping[str, Sequence[Any]] | None = None,
        folds: int = 3,
        n_jobs: int | None = None,
        sample_weight: Sequence[float] | None = None,
    ) -> TuningResult:
        """Choose hyper-parameters by stratified k-fold cross-validation (macro-F1) and adopt the best.

        `sample_weight` weighs the rows when fitting each candidate (scoring counts rows equally).
        """
        grid = grid or DEFAULT_GRID
        routes = {"C": "clf__C", "ngram_range": "tfidf__ngram_range", "min_df": "tfidf__min_df"}
        unknown = set(grid) - set(routes)
        if unknown:
            raise ValueError(f"cannot tune {', '.join(sorted(unknown))}; tunable: {', '.join(routes)}")
        search = GridSearchCV(
            self.build_pipeline(),
            {routes[name]: list(values) for name, values in grid.items()},
            scoring="f1_macro",
            cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.random_state),
            n_jobs=n_jobs,
            refit=False,
        )
        search.fit(list(texts), list(labels), **_fit_params(sample_weight))
        by_route = {route: name for name, route in routes.items()}
        scores = [
            ({by_route[k]: v for k, v in candidate.items()}, float(score))
            for candidate, score in zip(
                search.cv_results_["params"], search.cv_results_["mean_test_score"], strict=True
            )
        ]
        best = {by_route[k]: v for k, v in search.best_params_.items()}
        for name, value in best.items():
            setattr(self, name, value)
        logger.info("tuning chose %s (macro-F1 %.4f)", best, search.best_score_)
        return TuningResult(best, float(search.best_score_), scores, folds, len(texts))

    def clone(self) -> ModelTrainer:
        """An untrained trainer with the same hyper-parameters."""
        return type(self)(**_constructor_params(self.params), model_dir=self.model_dir)

    def train(
        self, X_train: Sequence[str], y_train: Sequence[str], *, sample_weight: Sequence[float] | None = None
    ) -> Self:
        """Fit a new Pipeline on texts and their labels (rows weighed by `sample_weight`); returns self."""
        if len(set(y_train)) < 2:
            raise ValueError("training needs at least two distinct labels")
        pipeline = self.build_pipeline()
        pipeline.fit(list(X_train), list(y_train), **_fit_params(sample_weight))
        self.pipeline_ = pipeline
        self.classes_ = [str(label) for label in pipeline.classes_]
        return self

    def _fitted(self) -> Pipeline:
        try:
            return self.pipeline_
        except AttributeError:
            raise NotFittedError("this ModelTrainer is not trained yet; call train() first") from None

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The predicted label of each text."""
        return [str(label) for label in self._fitted().predict(list(texts))]

    def evaluate(
        self, X_test: Sequence[str], y_test: Sequence[str], sources: Sequence[str] | None = None
    ) -> Evaluation:
        """Accuracy, macro-F1, per-class scores, confusion matrix and per-source scores on test data."""
        return evaluate_predictions(list(y_test), self.predict(X_test), self.classes_, sources)

    def save_model(
        self,
        model_dir: str | Path | None = None,
        *,
        dataset: Dataset | None = None,
        evaluation: Evaluation | None = None,
        extra: Mapping[str, Any] | None = None,
        keep: int | None = None,
        name: str | None = None,
        reference: Sequence[str] | None = None,
    ) -> str:
        """Publish the trained Pipeline as model `name`'s new CURRENT version; returns the version.

        With `reference`, texts held out from training (the test split), the version's metadata gets
        its reference profile for drift (src/drift/profile.py), measured on them.

        `model_dir` is the store's root (MODEL_DIR by default) and `name` the model (DEFAULT_MODEL_NAME
        by default), so the version lands in MODEL_DIR/<name>/<version>. With `keep`, only the newest
        `keep` versions (and CURRENT) stay in that model's store.
        """
        metadata = self.publication_metadata(dataset=dataset, evaluation=evaluation, extra=extra, reference=reference)
        store = _registry(model_dir or self.model_dir).store(name)
        return store.publish(self._fitted(), metadata, keep=keep)

    def publication_metadata(
        self,
        *,
        dataset: Dataset | None = None,
        evaluation: Evaluation | None = None,
        extra: Mapping[str, Any] | None = None,
        reference: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """What a published version records of this training: classes, parameters, data, evaluation,
        `extra`, and the reference profile for drift measured on `reference` (held-out texts)."""
        metadata: dict[str, Any] = {
            "classes": self.classes_ if hasattr(self, "classes_") else [],
            "params": self.params,
            "vocabulary_size": len(self._fitted().named_steps["tfidf"].vocabulary_),
            "dataset": {"id": dataset.dataset_id, "sha256": dataset.sha256, "rows": len(dataset)} if dataset else None,
            "evaluation": evaluation.to_dict() if evaluation else None,
            **(extra or {}),
        }
        if reference:
            profile = reference_profile(self._fitted(), reference, "held-out test split", seed=self.random_state)
            metadata["reference_profile"] = profile.to_dict()
        return metadata

    @classmethod
    def load_model(
        cls, model_dir: str | Path | None = None, version: str | None = None, *, name: str | None = None
    ) -> ModelTrainer:
        """A trainer holding a verified model from the store (CURRENT unless a version is named)."""
        stored = _registry(model_dir).resolve(name).load(version)
        trainer = cls(**_constructor_params(stored.metadata.get("params", {})), model_dir=model_dir)
        trainer.pipeline_ = stored.pipeline
        trainer.classes_ = [str(label) for label in stored.pipeline.classes_]
        return trainer


def _fit_params(sample_weight: Sequence[float] | None) -> dict[str, Any]:
    return {} if sample_weight is None else {"clf__sample_weight": list(sample_weight)}


def _constructor_params(saved: Mapping[str, Any]) -> dict[str, Any]:
    params = dict(saved)
    # A model whose metadata names no negation marking or emoticon tokens was trained without them.
    params.setdefault("negation", False)
    params.setdefault("emoticons", False)
    if "ngram_range" in params:
        params["ngram_range"] = tuple(params["ngram_range"])
    return params


def _registry(model_dir: str | Path | None) -> ModelRegistry:
    return ModelRegistry.from_settings(get_settings(), model_dir)
