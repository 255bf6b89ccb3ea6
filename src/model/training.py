"""Training as a library call: load the data, train, evaluate, gate against CURRENT and publish.

`train_model(registry, name, TrainingOptions(...))` is what `ml-service train` (src/cli/train.py)
runs once it has parsed its arguments, as `import_model` (src/model/importer.py) is for `ml-service
models import`. Every default of a training run is written once, here, in `TrainingOptions`; the
command line shows them. The reports (evaluation, behaviour suite, leave-one-source-out, the quality
gate's verdict) go to `report` as they are ready, and come back in the `TrainingOutcome`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from src.config import default_of
from src.errors import DatasetError, ModelNotFoundError, ModelStoreError
from src.model import quality_gate
from src.model.behaviour import run_on_pipeline
from src.model.cross_source import leave_one_source_out
from src.model.datasets import Dataset, load_bundled, load_file
from src.model.feedback import load_feedback
from src.model.feedback_effect import FeedbackEffect, feedback_effect
from src.model.publication import Candidate, gate_and_publish
from src.model.trainer import DEFAULT_C, ModelTrainer
from src.store.registry import ModelRegistry
from src.store.store import ModelStore

logger = logging.getLogger(__name__)

# A lexicon's one-word documents teach the polarity of words the corpora rarely use; at a tenth of a
# text source's weight they inform without drowning the sentences (docs/training.md has the figures).
LEXICON_WEIGHT = 0.1
# Corrections may be at most this share of the training rows: a flood of them cannot outweigh the data.
FEEDBACK_MAX_SHARE = 0.05


@dataclass(frozen=True)
class TrainingOptions:
    """One training run: the data, the model's features and fit, and how it is published."""

    # The data: a CSV or JSONL file (None: the bundled corpora) and its columns.
    data: Path | None = None
    text_column: str = "text"
    label_column: str = "label"
    source_column: str | None = None
    feedback: Path | None = None  # a PREDICTION_LOG_DIR whose corrections to add (training rows only)
    feedback_keys: frozenset[str] = frozenset()  # whose corrections count (`anonymous`: no keys)
    feedback_max_share: float = FEEDBACK_MAX_SHARE
    sample: int | None = None  # a stratified sample of this many rows
    test_size: float = 0.2
    # The model.
    tune: bool = False  # pick C and the n-gram range by cross-validation (else C and ngram_max)
    C: float = DEFAULT_C
    ngram_max: int = 2
    folds: int = 3
    cv_sample: int = 20_000
    random_state: int = 42
    balance: bool = True  # every (source, label) cell gets the same total weight
    lexicon_weight: float = LEXICON_WEIGHT
    negation: bool = True
    lexicon_tokens: bool = True
    contrast: bool = True
    narrow_negation: bool = True
    raw_cues: bool = True
    cross_source: bool = True  # leave-one-source-out evaluation
    # Publishing.
    if_missing: bool = False  # nothing to do when the store has a CURRENT
    dry_run: bool = False
    force: bool = False  # publish even when the quality gate finds the model worse than CURRENT
    keep_versions: int | None = None  # None: MODEL_KEEP_VERSIONS


@dataclass
class TrainingOutcome:
    """What a run did: the version it published (None: nothing), and its reports."""

    name: str
    version: str | None = None
    skipped: bool = False  # --if-missing found a CURRENT
    reports: list[str] = field(default_factory=list)


@contextmanager
def _step(description: str) -> Iterator[None]:
    logger.info("%s ...", description)
    started = time.perf_counter()
    yield
    logger.info("%s: done in %.1f s", description, time.perf_counter() - started)


def _load(options: TrainingOptions) -> Dataset:
    if options.data is None:
        return load_bundled()
    return load_file(
        options.data,
        text_column=options.text_column,
        label_column=options.label_column,
        source_column=options.source_column,
    )


def _weigher(options: TrainingOptions) -> Callable[[Dataset], list[float] | None]:
    if not options.balance:
        return lambda _: None
    return lambda data: data.balanced_weights(options.lexicon_weight)


def _with_feedback(
    dataset: Dataset, options: TrainingOptions, name: str, report: Callable[[str], None]
) -> tuple[Dataset, Dataset, dict[str, object]]:
    """The data with the asked-for keys' corrections (training rows only, at most their share), the
    corrections kept, and what the version's metadata records of them."""
    assert options.feedback is not None
    if not options.feedback_keys:
        raise DatasetError(
            "--feedback needs --feedback-keys: the ids of the API keys whose corrections to train on "
            "(`anonymous` for a server without keys)"
        )
    if not 0 < options.feedback_max_share < 1:
        raise DatasetError(f"--feedback-max-share must be between 0 and 1, not {options.feedback_max_share}")
    corrections, counts = load_feedback(options.feedback, name, set(dataset.labels), set(options.feedback_keys))
    report(counts.format_report())
    # A share of the training rows: those left once the test split is held out of the rest.
    training_rows = len(dataset) - round(len(dataset) * options.test_size)
    share = options.feedback_max_share
    most = max(1, int(share * training_rows / (1 - share)))
    if len(corrections) > most:
        logger.info("%d corrections, more than --feedback-max-share allows: %d sampled", len(corrections), most)
        corrections = corrections.sample(most, options.random_state)
    record = {
        "folder": str(options.feedback),
        "keys": sorted(options.feedback_keys),
        **asdict(counts),
        "trained_on": len(corrections),
        "max_share": share,
    }
    return dataset.plus(corrections, training_only=True), corrections, record


def _feedback_effect(trainer: ModelTrainer, store: ModelStore, corrections: Dataset) -> FeedbackEffect | None:
    try:
        stored = store.load()
    except (ModelNotFoundError, ModelStoreError):
        return None
    return feedback_effect(trainer.pipeline_, stored.pipeline, stored.version, corrections.texts, corrections.labels)


def _trainer(options: TrainingOptions) -> ModelTrainer:
    return ModelTrainer(
        C=options.C,
        ngram_range=(1, options.ngram_max),
        negation=options.negation,
        lexicon_tokens=options.lexicon_tokens,
        contrast=options.contrast,
        narrow_negation=options.narrow_negation,
        raw_cues=options.raw_cues,
        random_state=options.random_state,
    )


def train_model(
    registry: ModelRegistry,
    name: str,
    options: TrainingOptions,
    *,
    report: Callable[[str], None] | None = None,
    keep_default: int = default_of("model_keep_versions"),
) -> TrainingOutcome:
    """Train, evaluate, gate and publish model `name` in `registry` as `options` say.

    DatasetError for data it cannot train on, QualityGateRefusedError (src/model/publication.py) for
    a model worse than CURRENT, ModelStoreError for a store it cannot publish to; nothing is
    published then. `keep_default` is the versions kept when the options name none."""
    outcome = TrainingOutcome(name)

    def tell(text: str) -> None:
        outcome.reports.append(text)
        if report is not None:
            report(text)

    store = registry.resolve(name)  # what servers serve now: the gate's comparison and if_missing
    if options.if_missing and store.current_version() is not None:
        logger.info("model %s is published in %s (%s); nothing to train", name, store.root, store.current_version())
        outcome.skipped = True
        return outcome
    if not 0 < options.test_size < 1:
        raise DatasetError(f"--test-size must be between 0 and 1, not {options.test_size}")

    with _step("loading data"):
        dataset = _load(options)
        if options.sample:
            dataset = dataset.sample(options.sample, options.random_state)
        feedback_record: dict[str, object] | None = None
        corrections = None
        if options.feedback is not None:
            dataset, corrections, feedback_record = _with_feedback(dataset, options, name, tell)
        try:
            train, test = dataset.split(options.test_size, options.random_state)
        except ValueError as error:
            raise DatasetError(f"cannot hold out a test split that keeps every label: {error}") from None
    logger.info("%d rows: %d to train, %d to test", len(dataset), len(train), len(test))
    weigh = _weigher(options)

    trainer = _trainer(options)
    tuning = None
    if options.tune:
        tune_on = train.sample(options.cv_sample, options.random_state)
        with _step(f"tuning by {options.folds}-fold cross-validation on {len(tune_on)} rows"):
            tuning = trainer.tune(
                tune_on.texts, tune_on.labels, folds=options.folds, n_jobs=os.cpu_count(), sample_weight=weigh(tune_on)
            )
        tell(
            "\n".join(
                [
                    *(f"  cv macro-F1 {score:.4f}  {params}" for params, score in tuning.scores),
                    f"chosen: {tuning.best_params}",
                ]
            )
        )
    with _step(f"training on {len(train)} rows"):
        trainer.train(train.texts, train.labels, sample_weight=weigh(train))
    with _step("evaluating"):
        evaluation = trainer.evaluate(test.texts, test.labels, test.sources)
        behaviour = run_on_pipeline(trainer.pipeline_)
    tell(evaluation.format_report())
    tell(behaviour.format_report() if behaviour else "behaviour suite: skipped (it is for negative/positive models)")
    cross_source = None
    if options.cross_source:
        with _step("leave-one-source-out evaluation"):
            cross_source = leave_one_source_out(trainer, dataset, weigh, n_jobs=os.cpu_count())
        tell(cross_source.format_report() if cross_source else "leave-one-source-out: skipped (one source)")

    if corrections is not None and feedback_record is not None and len(corrections):
        effect = _feedback_effect(trainer, store, corrections)
        tell(effect.format_report() if effect else "feedback effect: no CURRENT to compare with")
        feedback_record["effect"] = effect.to_dict() if effect else None
    figures = quality_gate.ModelFigures(evaluation.macro_f1, behaviour.pass_rate if behaviour else None)
    with _step("quality gate: comparing with CURRENT on the same test rows"):
        verdict = quality_gate.check(figures, trainer.classes_, test, store, force=options.force)
    tell(verdict.format_report())
    if options.dry_run:
        logger.info("dry run: nothing published")
        return outcome
    tuning_record = None
    if tuning is not None:
        tuning_record = {"best": tuning.best_params, "cv_macro_f1": tuning.best_score, "folds": tuning.folds}
    extra = {
        "tuning": tuning_record,
        "test_size": options.test_size,
        "weighting": {"scheme": "balanced (source, label) cells", "lexicon_weight": options.lexicon_weight}
        if options.balance
        else None,
        "behaviour": behaviour.to_dict() if behaviour else None,
        "cross_source": cross_source.to_dict() if cross_source else None,
        "feedback": feedback_record,
    }
    metadata = trainer.publication_metadata(dataset=dataset, evaluation=evaluation, extra=extra, reference=test.texts)
    candidate = Candidate.of(trainer.pipeline_, registry.max_model_bytes)
    keep = options.keep_versions or keep_default
    outcome.version = gate_and_publish(registry.store(name), candidate, metadata, verdict, keep=keep)
    return outcome
