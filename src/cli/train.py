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
import sys
from collections.abc import Sequence
from pathlib import Path

from src import exit_codes
from src.cli.arguments import at_least_one, model_name
from src.config import get_settings
from src.errors import DatasetError, ModelStoreError
from src.model.publication import QualityGateRefusedError
from src.model.training import TrainingOptions, train_model
from src.store.registry import ModelRegistry

DEFAULTS = TrainingOptions()


def _key_ids(value: str) -> set[str]:
    ids = {part.strip() for part in value.split(",") if part.strip()}
    if not ids:
        raise argparse.ArgumentTypeError("name at least one key id")
    return ids


def build_parser(prog: str = "ml-service train") -> argparse.ArgumentParser:
    """The command line of the training script."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train the TF-IDF + logistic-regression sentiment model, evaluate it on a held-out "
        "split, and publish it to the model store as the new CURRENT version.",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--data", type=Path, help="CSV (with header) or JSONL file; default: the bundled corpora")
    data.add_argument(
        "--text-column", default=DEFAULTS.text_column, help="column holding the text (default: %(default)s)"
    )
    data.add_argument(
        "--label-column", default=DEFAULTS.label_column, help="column holding the label (default: %(default)s)"
    )
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
        default=DEFAULTS.feedback_max_share,
        help="most corrections as a share of the training rows; more are sampled down (default: %(default)s)",
    )
    data.add_argument("--sample", type=int, help="train and test on a stratified sample of this many rows")
    data.add_argument(
        "--test-size",
        type=float,
        default=DEFAULTS.test_size,
        help="share held out for evaluation (default: %(default)s)",
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--tune",
        action=argparse.BooleanOptionalAction,
        default=DEFAULTS.tune,
        help="pick C and the n-gram range by cross-validation on the training split (default: no; use --C and "
        "--ngram-max, whose defaults were chosen by leave-one-source-out on the bundled data)",
    )
    model.add_argument(
        "--C", type=float, default=DEFAULTS.C, help="inverse regularisation strength (default: %(default)s)"
    )
    model.add_argument(
        "--ngram-max",
        type=int,
        default=DEFAULTS.ngram_max,
        help="longest word n-gram when not tuning (default: %(default)s)",
    )
    model.add_argument(
        "--folds", type=int, default=DEFAULTS.folds, help="cross-validation folds (default: %(default)s)"
    )
    model.add_argument(
        "--cv-sample",
        type=int,
        default=DEFAULTS.cv_sample,
        help="rows of the training split used to tune (default: %(default)s)",
    )
    model.add_argument(
        "--random-state",
        type=int,
        default=DEFAULTS.random_state,
        help="seed of every random choice (default: %(default)s)",
    )
    model.add_argument(
        "--no-balance",
        action="store_true",
        help="weigh every row the same (default: every (source, label) cell gets the same total weight)",
    )
    model.add_argument(
        "--lexicon-weight",
        type=float,
        default=DEFAULTS.lexicon_weight,
        help="weight of a lexicon source's cells relative to a text source's (default: %(default)s)",
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
        type=model_name,
        help="the model to publish, served at /models/NAME/... (default: $DEFAULT_MODEL_NAME, else sentiment)",
    )
    store.add_argument("--if-missing", action="store_true", help="do nothing if the store already has a model")
    store.add_argument("--dry-run", action="store_true", help="train and evaluate, but publish nothing")
    store.add_argument(
        "--force", action="store_true", help="publish even if the quality gate finds the model worse than CURRENT"
    )
    store.add_argument(
        "--keep-versions",
        type=at_least_one,
        help="versions to keep after publishing, CURRENT always among them (default: $MODEL_KEEP_VERSIONS, else 5)",
    )
    return parser


def options_of(args: argparse.Namespace) -> TrainingOptions:
    """The training run the command line asks for."""
    return TrainingOptions(
        data=args.data,
        text_column=args.text_column,
        label_column=args.label_column,
        source_column=args.source_column,
        feedback=args.feedback,
        feedback_keys=frozenset(args.feedback_keys or ()),
        feedback_max_share=args.feedback_max_share,
        sample=args.sample,
        test_size=args.test_size,
        tune=args.tune,
        C=args.C,
        ngram_max=args.ngram_max,
        folds=args.folds,
        cv_sample=args.cv_sample,
        random_state=args.random_state,
        balance=not args.no_balance,
        lexicon_weight=args.lexicon_weight,
        negation=not args.no_negation,
        lexicon_tokens=not args.no_lexicon_tokens,
        contrast=not args.no_contrast,
        narrow_negation=not args.wide_negation,
        raw_cues=not args.no_raw_cues,
        cross_source=not args.no_cross_source,
        if_missing=args.if_missing,
        dry_run=args.dry_run,
        force=args.force,
        keep_versions=args.keep_versions,
    )


def run(args: argparse.Namespace) -> int:
    """Train, evaluate, gate and publish as the arguments say; returns the exit status."""
    settings = get_settings()
    registry = ModelRegistry.from_settings(settings, args.model_dir)
    name = args.name or settings.default_model_name
    outcome = train_model(registry, name, options_of(args), report=print, keep_default=settings.model_keep_versions)
    if outcome.version is not None:
        print(f"published model {name} version {outcome.version} to {registry.root}")
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
