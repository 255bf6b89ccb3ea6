"""`ml-service train`: train a sentiment model, print its evaluation report, gate it and publish it.

ml-service train                      # the bundled data
ml-service train --data reviews.csv   # your own CSV or JSONL (text + label)
ml-service train --if-missing         # only when the store has no model yet
ml-service train --name spam --data spam.csv   # another model, served beside the default

`python -m src.model.train_script` is the same command. Exit status (src/exit_codes.py): 0 published
(or nothing to do), 2 bad input, 3 refused by the quality gate.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from src import exit_codes
from src.config import get_settings
from src.errors import DatasetError, ModelNotFoundError, ModelStoreError
from src.model import quality_gate
from src.model.behaviour import run_on_pipeline
from src.model.cross_source import leave_one_source_out
from src.model.datasets import Dataset, load_bundled, load_file
from src.model.feedback import load_feedback
from src.model.feedback_effect import FeedbackEffect, feedback_effect
from src.model.publication import Candidate, QualityGateRefusedError, gate_and_publish
from src.model.trainer import DEFAULT_C, ModelTrainer
from src.store.registry import ModelRegistry, check_model_name
from src.store.store import ModelStore

logger = logging.getLogger("src.cli.train")

# A lexicon's one-word documents teach polarity of words the corpora rarely use. With the shared
# lexicon tokens (lexpos/lexneg) those documents would teach the shared weight almost alone at a
# higher weight; at 0.1 of a text source they inform without drowning the sentences (the model card
# in docs/training.md has the figures).
LEXICON_WEIGHT = 0.1
# Corrections may be at most this share of the training rows: a flood of them cannot outweigh the data.
FEEDBACK_MAX_SHARE = 0.05


def _at_least_one(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def _key_ids(value: str) -> set[str]:
    ids = {part.strip() for part in value.split(",") if part.strip()}
    if not ids:
        raise argparse.ArgumentTypeError("name at least one key id")
    return ids


def _model_name(value: str) -> str:
    try:
        return check_model_name(value)
    except ModelNotFoundError as error:
        raise argparse.ArgumentTypeError(error.message) from None


def build_parser(prog: str = "ml-service train") -> argparse.ArgumentParser:
    """The command line of the training script."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train the TF-IDF + logistic-regression sentiment model, evaluate it on a held-out "
        "split, and publish it to the model store as the new CURRENT version.",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--data", type=Path, help="CSV (with header) or JSONL file; default: the bundled corpora")
    data.add_argument("--text-column", default="text", help="column holding the text (default: text)")
    data.add_argument("--label-column", default="label", help="column holding the label (default: label)")
    data.add_argument("--source-column", help="optional column naming each row's source, for per-source scores")
    data.add_argument(
        "--feedback",
        type=Path,
        metavar="DIR",
        help="also train on the corrections in this PREDICTION_LOG_DIR (source `feedback`, never held out); "
        "needs --feedback-keys",
    )
    data.add_argument(
        "--feedback-keys",
        type=_key_ids,
        metavar="IDS",
        help="comma-separated ids of the API keys whose corrections to train on (`anonymous`: a server "
        "without keys); corrections from any other key are left out and counted",
    )
    data.add_argument(
        "--feedback-max-share",
        type=float,
        default=FEEDBACK_MAX_SHARE,
        help=f"most corrections as a share of the training rows; more are sampled down (default: {FEEDBACK_MAX_SHARE})",
    )
    data.add_argument("--sample", type=int, help="train and test on a stratified sample of this many rows")
    data.add_argument("--test-size", type=float, default=0.2, help="share held out for evaluation (default: 0.2)")
    model = parser.add_argument_group("model")
    model.add_argument(
        "--tune",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="pick C and the n-gram range by cross-validation on the training split (default: no; use --C and "
        "--ngram-max, whose defaults were chosen by leave-one-source-out on the bundled data)",
    )
    model.add_argument(
        "--C", type=float, default=DEFAULT_C, help=f"inverse regularisation strength (default: {DEFAULT_C})"
    )
    model.add_argument("--ngram-max", type=int, default=2, help="longest word n-gram when not tuning")
    model.add_argument("--folds", type=int, default=3, help="cross-validation folds (default: 3)")
    model.add_argument(
        "--cv-sample", type=int, default=20_000, help="rows of the training split used to tune (default: 20000)"
    )
    model.add_argument("--random-state", type=int, default=42, help="seed of every random choice (default: 42)")
    model.add_argument(
        "--no-balance",
        action="store_true",
        help="weigh every row the same (default: every (source, label) cell gets the same total weight)",
    )
    model.add_argument(
        "--lexicon-weight",
        type=float,
        default=LEXICON_WEIGHT,
        help=f"weight of a lexicon source's cells relative to a text source's (default: {LEXICON_WEIGHT})",
    )
    model.add_argument("--no-negation", action="store_true", help="do not mark negated words (`not bad` -> neg_bad)")
    model.add_argument(
        "--no-lexicon-tokens",
        action="store_true",
        help="do not add a shared lexpos/lexneg token per VADER lexicon word in a text",
    )
    model.add_argument(
        "--no-contrast",
        action="store_true",
        help="do not repeat the clause after 'but' (it usually carries the verdict)",
    )
    model.add_argument(
        "--wide-negation",
        action="store_true",
        help="a negation's scope runs to the next punctuation mark, every word marked (as before the cues; "
        "by default it also ends at 'and' and marks its first 3 words)",
    )
    model.add_argument("--no-raw-cues", action="store_true", help="do not add the xxexcl ('!!') and xxcaps tokens")
    model.add_argument(
        "--no-cross-source",
        action="store_true",
        help="skip leave-one-source-out evaluation (one extra training per source)",
    )
    store = parser.add_argument_group("store")
    store.add_argument("--model-dir", type=Path, help="model store root (default: $MODEL_DIR, else ./models)")
    store.add_argument(
        "--name",
        type=_model_name,
        help="the model to publish, served at /models/NAME/... (default: $DEFAULT_MODEL_NAME, else sentiment)",
    )
    store.add_argument("--if-missing", action="store_true", help="do nothing if the store already has a model")
    store.add_argument("--dry-run", action="store_true", help="train and evaluate, but publish nothing")
    store.add_argument(
        "--force", action="store_true", help="publish even if the quality gate finds the model worse than CURRENT"
    )
    store.add_argument(
        "--keep-versions",
        type=_at_least_one,
        help="versions to keep after publishing, CURRENT always among them (default: $MODEL_KEEP_VERSIONS, else 5)",
    )
    return parser


@contextmanager
def _step(description: str) -> Iterator[None]:
    logger.info("%s ...", description)
    started = time.perf_counter()
    yield
    logger.info("%s: done in %.1f s", description, time.perf_counter() - started)


def _load(args: argparse.Namespace) -> Dataset:
    if args.data is None:
        return load_bundled()
    return load_file(
        args.data, text_column=args.text_column, label_column=args.label_column, source_column=args.source_column
    )


def _weigher(args: argparse.Namespace) -> Callable[[Dataset], list[float] | None]:
    if args.no_balance:
        return lambda _: None
    return lambda data: data.balanced_weights(args.lexicon_weight)


def _with_feedback(dataset: Dataset, args: argparse.Namespace, name: str) -> tuple[Dataset, Dataset, dict[str, object]]:
    """The data with the asked-for keys' corrections (training rows only, at most their share), the
    corrections kept, and what the version's metadata records of them."""
    if not args.feedback_keys:
        raise DatasetError(
            "--feedback needs --feedback-keys: the ids of the API keys whose corrections to train on "
            "(`anonymous` for a server without keys)"
        )
    if not 0 < args.feedback_max_share < 1:
        raise DatasetError(f"--feedback-max-share must be between 0 and 1, not {args.feedback_max_share}")
    corrections, counts = load_feedback(args.feedback, name, set(dataset.labels), args.feedback_keys)
    print(counts.format_report())
    # A share of the training rows: those left once the test split is held out of the rest.
    training_rows = len(dataset) - round(len(dataset) * args.test_size)
    most = max(1, int(args.feedback_max_share * training_rows / (1 - args.feedback_max_share)))
    if len(corrections) > most:
        logger.info("%d corrections, more than --feedback-max-share allows: %d sampled", len(corrections), most)
        corrections = corrections.sample(most, args.random_state)
    record = {
        "folder": str(args.feedback),
        "keys": sorted(args.feedback_keys),
        **asdict(counts),
        "trained_on": len(corrections),
        "max_share": args.feedback_max_share,
    }
    return dataset.plus(corrections, training_only=True), corrections, record


def _feedback_effect(trainer: ModelTrainer, store: ModelStore, corrections: Dataset) -> FeedbackEffect | None:
    try:
        stored = store.load()
    except (ModelNotFoundError, ModelStoreError):
        return None
    return feedback_effect(trainer.pipeline_, stored.pipeline, stored.version, corrections.texts, corrections.labels)


def run(args: argparse.Namespace) -> int:
    """Train, evaluate, gate and publish as the arguments say; returns the exit status."""
    settings = get_settings()
    registry = ModelRegistry.from_settings(settings, args.model_dir)
    name = args.name or settings.default_model_name
    store = registry.resolve(name)  # what servers serve now: the gate's comparison and --if-missing
    if args.if_missing and store.current_version() is not None:
        logger.info("model %s is published in %s (%s); nothing to train", name, store.root, store.current_version())
        return exit_codes.OK
    if not 0 < args.test_size < 1:
        raise DatasetError(f"--test-size must be between 0 and 1, not {args.test_size}")

    with _step("loading data"):
        dataset = _load(args)
        if args.sample:
            dataset = dataset.sample(args.sample, args.random_state)
        feedback_record: dict[str, object] | None = None
        corrections = None
        if args.feedback is not None:
            dataset, corrections, feedback_record = _with_feedback(dataset, args, name)
        try:
            train, test = dataset.split(args.test_size, args.random_state)
        except ValueError as error:
            raise DatasetError(f"cannot hold out a test split that keeps every label: {error}") from None
    logger.info("%d rows: %d to train, %d to test", len(dataset), len(train), len(test))
    weigh = _weigher(args)

    trainer = ModelTrainer(
        C=args.C,
        ngram_range=(1, args.ngram_max),
        negation=not args.no_negation,
        lexicon_tokens=not args.no_lexicon_tokens,
        contrast=not args.no_contrast,
        narrow_negation=not args.wide_negation,
        raw_cues=not args.no_raw_cues,
        random_state=args.random_state,
    )
    tuning = None
    if args.tune:
        tune_on = train.sample(args.cv_sample, args.random_state)
        with _step(f"tuning by {args.folds}-fold cross-validation on {len(tune_on)} rows"):
            tuning = trainer.tune(
                tune_on.texts, tune_on.labels, folds=args.folds, n_jobs=os.cpu_count(), sample_weight=weigh(tune_on)
            )
        for params, score in tuning.scores:
            print(f"  cv macro-F1 {score:.4f}  {params}")
        print(f"chosen: {tuning.best_params}")
    with _step(f"training on {len(train)} rows"):
        trainer.train(train.texts, train.labels, sample_weight=weigh(train))
    with _step("evaluating"):
        evaluation = trainer.evaluate(test.texts, test.labels, test.sources)
        behaviour = run_on_pipeline(trainer.pipeline_)
    print(evaluation.format_report())
    print(behaviour.format_report() if behaviour else "behaviour suite: skipped (it is for negative/positive models)")
    cross_source = None
    if not args.no_cross_source:
        with _step("leave-one-source-out evaluation"):
            cross_source = leave_one_source_out(trainer, dataset, weigh, n_jobs=os.cpu_count())
        print(cross_source.format_report() if cross_source else "leave-one-source-out: skipped (one source)")

    if corrections is not None and feedback_record is not None and len(corrections):
        effect = _feedback_effect(trainer, store, corrections)
        print(effect.format_report() if effect else "feedback effect: no CURRENT to compare with")
        feedback_record["effect"] = effect.to_dict() if effect else None
    figures = quality_gate.ModelFigures(evaluation.macro_f1, behaviour.pass_rate if behaviour else None)
    with _step("quality gate: comparing with CURRENT on the same test rows"):
        verdict = quality_gate.check(figures, trainer.classes_, test, store, force=args.force)
    print(verdict.format_report())
    if args.dry_run:
        logger.info("dry run: nothing published")
        return exit_codes.OK
    tuning_record = None
    if tuning is not None:
        tuning_record = {"best": tuning.best_params, "cv_macro_f1": tuning.best_score, "folds": tuning.folds}
    extra = {
        "tuning": tuning_record,
        "test_size": args.test_size,
        "weighting": None
        if args.no_balance
        else {"scheme": "balanced (source, label) cells", "lexicon_weight": args.lexicon_weight},
        "behaviour": behaviour.to_dict() if behaviour else None,
        "cross_source": cross_source.to_dict() if cross_source else None,
        "feedback": feedback_record,
    }
    metadata = trainer.publication_metadata(dataset=dataset, evaluation=evaluation, extra=extra, reference=test.texts)
    candidate = Candidate.of(trainer.pipeline_, registry.max_model_bytes)
    keep = args.keep_versions or settings.model_keep_versions
    version = gate_and_publish(registry.store(name), candidate, metadata, verdict, keep=keep)
    print(f"published model {name} version {version} to {registry.root}")
    return exit_codes.OK


def main(argv: Sequence[str] | None = None, *, prog: str = "ml-service train") -> int:
    """Entry point: one-line errors and a non-zero status for bad input or a refused model."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    args = build_parser(prog).parse_args(argv)
    try:
        return run(args)
    except QualityGateRefusedError as error:
        print(f"error: {error}", file=sys.stderr)
        return exit_codes.GATE_REFUSED
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return exit_codes.REFUSED
    except ModelStoreError as error:
        print(f"error: {error.message}; nothing published", file=sys.stderr)
        return exit_codes.REFUSED
    except ValueError as error:  # scikit-learn's word for data it cannot fit, e.g. an empty vocabulary
        print(f"error: cannot train on this data: {error}", file=sys.stderr)
        return exit_codes.REFUSED
