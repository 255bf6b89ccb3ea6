"""A fitted linear classifier as rows of coefficients, and how its scores become a label and probabilities.

Every classifier here scores a text as `row . x + intercept`, one row per score, and differs only
in what follows: a sigmoid or softmax (logistic regression), one-vs-rest normalisation (SGD with
log loss), clipping (SGD with modified Huber loss), naive Bayes' log-sum-exp, calibration maps
averaged over folds, or nothing at all (LinearSVC, RidgeClassifier, SGD with hinge loss), whose
answer is then its decision scores, not probabilities. Each rule is transcribed from the
scikit-learn method it stands for, named beside it, so the parity tests can hold it to 1e-9.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from src.engine.featurizers import UnsupportedPipelineError

Probabilities = Callable[[list[float]], list[float]]


def expit(x: float) -> float:
    """The logistic function, without overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def softmax(scores: Sequence[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def _log_normalised(scores: Sequence[float]) -> list[float]:
    """exp(jll - logsumexp(jll)): naive Bayes' predict_proba."""
    top = max(scores)
    log_total = top + math.log(sum(math.exp(s - top) for s in scores))
    return [math.exp(s - log_total) for s in scores]


def _binary_or_softmax(scores: list[float]) -> list[float]:
    """LogisticRegression.predict_proba: sigmoid for two classes, softmax for more."""
    if len(scores) == 1:
        positive = expit(scores[0])
        return [1.0 - positive, positive]
    return softmax(scores)


def _one_vs_rest(scores: list[float]) -> list[float]:
    """LinearClassifierMixin._predict_proba_lr: sigmoids, normalised over the classes (uniform if all 0)."""
    if len(scores) == 1:
        positive = expit(scores[0])
        return [1.0 - positive, positive]
    probabilities = [expit(s) for s in scores]
    total = sum(probabilities)
    if total == 0.0:
        return [1.0 / len(scores)] * len(scores)
    return [p / total for p in probabilities]


def _modified_huber(scores: list[float]) -> list[float]:
    """SGDClassifier.predict_proba with loss='modified_huber': (clip(score, -1, 1) + 1) / 2, normalised."""
    clipped = [(min(max(s, -1.0), 1.0) + 1.0) / 2.0 for s in scores]
    if len(scores) == 1:
        return [1.0 - clipped[0], clipped[0]]
    total = sum(clipped)
    if total == 0.0:
        return [1.0 / len(scores)] * len(scores)
    return [p / total for p in clipped]


@dataclass(frozen=True)
class LinearHead:
    """What a linear classifier computes from a feature vector.

    `rows` and `intercepts` give the raw scores; `probabilities` turns them into class
    probabilities, or is None for a classifier without them. `label_from` says how the label is
    chosen, as the classifier's own `predict` does: from the scores (above 0 for the second class
    of a binary model, else the highest) or from the probabilities (the highest). `explained_rows`
    are the rows an explanation splits into per-term shares: the scores' own, except for a
    calibrated model, where they are the mean of its folds' rows (see `calibrated`).
    """

    classes: list[str]
    rows: list[array[float]]
    intercepts: list[float]
    probabilities: Probabilities | None
    label_from: str = "scores"
    explained_rows: list[array[float]] = field(default_factory=list)
    explained_intercepts: list[float] = field(default_factory=list)
    score_labels: list[str] = field(default_factory=list)

    def label(self, scores: list[float], probabilities: list[float] | None) -> int:
        """The index in `classes` of the predicted class."""
        if self.label_from == "probabilities" and probabilities is not None:
            return max(range(len(probabilities)), key=probabilities.__getitem__)
        if len(scores) == 1:
            return 1 if scores[0] > 0 else 0
        return max(range(len(scores)), key=scores.__getitem__)


def _rows(matrix: Any, n_features: int) -> list[array[float]]:
    coef = np.asarray(matrix, dtype=np.float64)
    if coef.ndim != 2 or coef.shape[1] != n_features:
        raise UnsupportedPipelineError(f"coefficients of shape {coef.shape} do not match {n_features} features")
    return [array("d", row) for row in coef]


def _score_labels(classes: list[str], rows: int) -> list[str]:
    return classes[1:] if rows == 1 else classes


def _head(
    classes: list[str],
    rows: list[array[float]],
    intercept: Any,
    probabilities: Probabilities | None,
    label_from: str = "scores",
) -> LinearHead:
    intercepts = [float(b) for b in np.broadcast_to(np.asarray(intercept, dtype=np.float64), (len(rows),))]
    return LinearHead(
        classes, rows, intercepts, probabilities, label_from, rows, intercepts, _score_labels(classes, len(rows))
    )


def _classes(classifier: Any) -> list[str]:
    return [str(label) for label in classifier.classes_]


def logistic(classifier: Any, n_features: int) -> LinearHead:
    """LogisticRegression: decision scores, then sigmoid (binary) or softmax (multinomial)."""
    return _head(_classes(classifier), _rows(classifier.coef_, n_features), classifier.intercept_, _binary_or_softmax)


def scores_only(classifier: Any, n_features: int) -> LinearHead:
    """LinearSVC, RidgeClassifier: decision scores and no probabilities."""
    return _head(_classes(classifier), _rows(classifier.coef_, n_features), classifier.intercept_, None)


def sgd(classifier: Any, n_features: int) -> LinearHead:
    """SGDClassifier: probabilities only for log_loss and modified_huber, as its predict_proba."""
    probabilities = {"log_loss": _one_vs_rest, "modified_huber": _modified_huber}.get(classifier.loss)
    return _head(_classes(classifier), _rows(classifier.coef_, n_features), classifier.intercept_, probabilities)


def multinomial_nb(classifier: Any, n_features: int) -> LinearHead:
    """MultinomialNB: joint log likelihood `x . log P(term|c) + log P(c)`, normalised."""
    rows = _rows(classifier.feature_log_prob_, n_features)
    return _head(_classes(classifier), rows, classifier.class_log_prior_, _log_normalised)


def complement_nb(classifier: Any, n_features: int) -> LinearHead:
    """ComplementNB: `x . feature_log_prob` without a prior (it has two classes or more), normalised."""
    rows = _rows(classifier.feature_log_prob_, n_features)
    return _head(_classes(classifier), rows, np.zeros(len(rows)), _log_normalised)


def _sigmoid_map(calibrator: Any) -> Callable[[float], float]:
    a, b = float(calibrator.a_), float(calibrator.b_)
    return lambda score: expit(-(a * score + b))  # _SigmoidCalibration.predict


def _isotonic_map(calibrator: Any) -> Callable[[float], float]:
    if calibrator.out_of_bounds != "clip":
        raise UnsupportedPipelineError("isotonic calibration must clip out-of-bounds scores")
    xs = np.asarray(calibrator.X_thresholds_, dtype=np.float64)
    ys = np.asarray(calibrator.y_thresholds_, dtype=np.float64)
    low, high = float(calibrator.X_min_), float(calibrator.X_max_)
    if len(xs) == 1:  # IsotonicRegression predicts the one value everywhere
        only = float(ys[0])
        return lambda score: only
    # IsotonicRegression.predict: clip to the fitted range, then interpolate linearly.
    return lambda score: float(np.interp(min(max(score, low), high), xs, ys))


def calibrated(classifier: Any, n_features: int, inner_head: Callable[[Any], HeadFactory | None]) -> LinearHead:
    """CalibratedClassifierCV over linear models: each fold's scores through its calibrators, then the
    mean of the folds' probabilities (CalibratedClassifierCV.predict_proba), label the most probable.

    Its explanation splits the mean of the folds' scores: exact for that score, which the calibrated
    probabilities follow closely but not term by term (each fold has its own calibration map).
    `inner_head` finds the compiler of each fold's linear model (the registry's, in model_types.py).
    """
    classes = _classes(classifier)
    folds = []
    for fold in classifier.calibrated_classifiers_:
        if fold.method not in ("sigmoid", "isotonic"):
            raise UnsupportedPipelineError(f"calibration method {fold.method!r} is not compiled")
        inner = inner_head(fold.estimator)
        if inner is None or not hasattr(fold.estimator, "decision_function"):
            raise UnsupportedPipelineError(f"calibrated {type(fold.estimator).__name__} is not a compiled linear model")
        head = inner(fold.estimator, n_features)
        if [str(c) for c in fold.classes] != classes or head.classes != classes:
            raise UnsupportedPipelineError("a calibration fold saw other classes than the model")
        maps = [(_sigmoid_map if fold.method == "sigmoid" else _isotonic_map)(c) for c in fold.calibrators]
        if len(maps) != len(head.rows):
            raise UnsupportedPipelineError("a calibration fold has a calibrator count unlike its scores")
        folds.append((head, maps))
    n_classes, n_rows = len(classes), len(folds[0][0].rows)
    if any(len(head.rows) != n_rows for head, _ in folds):
        raise UnsupportedPipelineError("the calibration folds have different numbers of scores")

    def probabilities(scores: list[float]) -> list[float]:
        mean = [0.0] * n_classes
        for k, (_, maps) in enumerate(folds):
            fold_scores = scores[k * n_rows : (k + 1) * n_rows]
            if n_classes == 2:  # _CalibratedClassifier.predict_proba
                positive = maps[0](fold_scores[0])
                proba = [1.0 - positive, positive]
            else:
                proba = [m(s) for m, s in zip(maps, fold_scores, strict=True)]
                total = sum(proba)
                proba = [p / total for p in proba] if total != 0.0 else [1.0 / n_classes] * n_classes
            proba = [1.0 if 1.0 < p <= 1.0 + 1e-5 else p for p in proba]
            mean = [m + p for m, p in zip(mean, proba, strict=True)]
        return [m / len(folds) for m in mean]

    rows = [row for head, _ in folds for row in head.rows]
    intercepts = [b for head, _ in folds for b in head.intercepts]
    mean_rows = [array("d", np.mean([np.asarray(head.rows[r]) for head, _ in folds], axis=0)) for r in range(n_rows)]
    mean_intercepts = [float(np.mean([head.intercepts[r] for head, _ in folds])) for r in range(n_rows)]
    return LinearHead(
        classes,
        rows,
        intercepts,
        probabilities,
        "probabilities",
        mean_rows,
        mean_intercepts,
        _score_labels(classes, n_rows),
    )


HeadFactory = Callable[[Any, int], LinearHead]
