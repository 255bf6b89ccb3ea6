"""`ml-service models`: the model store from the command line.

ml-service models list                      # every model, its versions and their figures
ml-service models import support model.skops # publish your own fitted Pipeline (src/cli/isolated_import.py)
ml-service models promote sentiment VERSION # verify VERSION, then make it CURRENT
ml-service models rollback sentiment        # CURRENT back to the version before it
ml-service models prune sentiment --keep 3  # delete all but the newest 3 (never CURRENT)
ml-service models migrate                   # move the old single-model layout to MODEL_DIR/<default>/
ml-service models rollout start sentiment VERSION --canary 10   # or --shadow 100
ml-service models rollout status|promote|abort sentiment

`python -m src.model.store_cli` is the same command. Running servers follow CURRENT on their next poll
(MODEL_POLL_SECONDS), or at once on POST /model/reload. Exit status (src/exit_codes.py): 0 done, 2
refused (a one-line reason on standard error, nothing changed), 3 an import refused by the quality gate.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from src import exit_codes
from src.cli.isolated_import import import_in_child
from src.config import get_settings
from src.errors import ModelStoreError
from src.store import rollout as rollouts
from src.store.registry import ModelRegistry
from src.store.store import ModelStore

TRUST_PICKLE_HELP = (
    "load a joblib or pickle file (or an MLflow model saved with pickle or cloudpickle). Unpickling runs "
    "whatever code the file holds: use it only for a file whose author you trust. It is loaded in a "
    "separate process with memory and time limits and stored as skops, so servers never unpickle it"
)
IMPORT_DESCRIPTION = (
    "Publish a fitted scikit-learn text Pipeline (a skops file; a joblib or pickle file with --trust-pickle; "
    "an MLflow model directory) as model NAME's new CURRENT version, after the checks in src/model/importer.py. "
    "It prints the version. Exit status: 0 published, 2 refused (a one-line reason on standard error, nothing "
    "published), 3 refused by the quality gate. The import runs in a child process capped at IMPORT_MEMORY_BYTES "
    "of memory and IMPORT_SECONDS of time."
)


def _figure(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


def _version_line(store: ModelStore, version: str, current: str | None) -> str:
    try:
        metadata = store.read_metadata(version)
    except ModelStoreError as error:
        return f"  {version}  unreadable: {error.message}"
    evaluation = metadata.get("evaluation") or {}
    behaviour = metadata.get("behaviour") or {}
    marker = "*" if version == current else " "
    return (
        f"{marker} {version}  created {metadata.get('created_at', '-'):<25}"
        f"  accuracy {_figure(evaluation.get('accuracy'))}"
        f"  macro-F1 {_figure(evaluation.get('macro_f1'))}  behaviour {_figure(behaviour.get('pass_rate'))}"
        f"  classes {','.join(map(str, metadata.get('classes', []))) or '-'}"
    )


def list_models(registry: ModelRegistry) -> list[str]:
    """The report `list` prints: each model, where it lives, and its versions (* marks CURRENT)."""
    lines = []
    for name in registry.names():
        store = registry.resolve(name)
        current = store.current_version()
        layout = " (old single-model layout; see `migrate`)" if store.root == registry.root else ""
        lines.append(f"{name}: {store.root}{layout}, CURRENT {current or '-'}")
        lines.extend(_version_line(store, version, current) for version in store.versions())
    return lines or [f"no models in {registry.root}"]


def promote(registry: ModelRegistry, name: str, version: str) -> str:
    """Verify a version (hash, scikit-learn version, trusted types), then make it CURRENT."""
    store = registry.resolve(name)
    store.load(version)
    store.activate(version)
    return f"{name}: CURRENT is now {version}"


def rollback(registry: ModelRegistry, name: str) -> str:
    """Point CURRENT at the newest version older than it, verified first."""
    store = registry.resolve(name)
    current = store.current_version()
    if current is None:
        raise ModelStoreError(f"model {name} has no CURRENT version to roll back from")
    older = [version for version in store.versions() if version < current]
    if not older:
        raise ModelStoreError(f"model {name} has no version older than {current}")
    return promote(registry, name, older[-1])


def _rollout(registry: ModelRegistry, args: argparse.Namespace) -> list[str]:
    store = registry.store(args.name)
    if args.action == "start":
        mode, percent = ("shadow", args.shadow) if args.shadow is not None else ("canary", args.canary)
        started = rollouts.start(store, args.version, mode, percent)
        return [
            f"{args.name}: rollout {started.id} of {started.candidate} ({mode}, {percent:g}%) beside {started.baseline}"
        ]
    if args.action == "promote":
        promoted = rollouts.promote(store)
        return [f"{args.name}: CURRENT is now {promoted.candidate} (rollout {promoted.id} promoted)"]
    if args.action == "abort":
        try:
            aborted = rollouts.abort(store, "aborted by hand")
        except rollouts.RolloutClearedError as cleared:
            return [f"{args.name}: {cleared.message}"]
        return [f"{args.name}: rollout {aborted.id} of {aborted.candidate} {aborted.state}"]
    try:
        rollout = rollouts.read_rollout(store)
    except ModelStoreError as error:
        raise ModelStoreError(
            f"{error.message}; every server answers with CURRENT alone, and `rollout abort {args.name}` clears it"
        ) from None
    if rollout is None:
        return [f"{args.name}: no rollout"]
    return [json.dumps(rollout.to_dict(), indent=2)]


def _add_import(commands: Any) -> None:
    importing = commands.add_parser(
        "import",
        help="publish your own fitted scikit-learn text Pipeline (skops, joblib/pickle, MLflow) as NAME's CURRENT",
        description=IMPORT_DESCRIPTION,
    )
    importing.add_argument("name", help="the model to publish, served at /models/NAME/...")
    importing.add_argument("path", type=Path, help="a .skops file, a joblib/pickle file, or an MLflow model directory")
    importing.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    importing.add_argument(
        "--sample",
        type=Path,
        help="CSV of texts to check parity on (column --text-column; optional expected_<class> columns: the "
        "outputs the model gave where it was made). Default: a built-in mixed set of 600 texts",
    )
    importing.add_argument("--test", type=Path, help="labelled CSV/JSONL: evaluate and compare with CURRENT (the gate)")
    importing.add_argument("--text-column", default="text", help="the text column of --sample and --test (text)")
    importing.add_argument("--label-column", default="label", help="the label column of --test (label)")
    importing.add_argument("--force", action="store_true", help="publish even if the quality gate finds it worse")


def build_parser(prog: str = "ml-service models") -> argparse.ArgumentParser:
    """The command line of the store tool."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n", 1)[0].strip('"`'))
    parser.add_argument("--model-dir", type=Path, help="model store root (default: $MODEL_DIR, else ./models)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every model, its versions and their evaluation figures")
    _add_import(commands)
    promote_parser = commands.add_parser("promote", help="verify a version, then make it CURRENT")
    promote_parser.add_argument("name")
    promote_parser.add_argument("version")
    rollback_parser = commands.add_parser("rollback", help="make the version before CURRENT current again")
    rollback_parser.add_argument("name")
    prune_parser = commands.add_parser("prune", help="delete old versions (never CURRENT)")
    prune_parser.add_argument("name")
    prune_parser.add_argument("--keep", type=int, default=None, help="versions to keep (default: $MODEL_KEEP_VERSIONS)")
    commands.add_parser("migrate", help="move the old single-model layout into MODEL_DIR/<default model>/")
    rollout_parser = commands.add_parser(
        "rollout", help="try a version beside CURRENT: in its shadow or on a share of traffic, guarded"
    )
    actions = rollout_parser.add_subparsers(dest="action", required=True)
    starting = actions.add_parser("start", help="start a rollout of VERSION (replaces a finished one)")
    starting.add_argument("name")
    starting.add_argument("version")
    share = starting.add_mutually_exclusive_group(required=True)
    share.add_argument("--shadow", type=float, metavar="PERCENT", help="also score this share of requests, unseen")
    share.add_argument("--canary", type=float, metavar="PERCENT", help="answer this share of clients with it")
    for action, summary in (
        ("status", "the rollout as the store holds it"),
        ("promote", "make the candidate CURRENT, verified first"),
        ("abort", "stop the rollout; CURRENT stays"),
    ):
        actions.add_parser(action, help=summary).add_argument("name")
    return parser


def run(args: argparse.Namespace) -> list[str]:
    """Carry out one command; the lines to print."""
    settings = get_settings()
    registry = ModelRegistry.from_settings(settings, args.model_dir)
    if args.command == "list":
        return list_models(registry)
    if args.command == "promote":
        return [promote(registry, args.name, args.version)]
    if args.command == "rollback":
        return [rollback(registry, args.name)]
    if args.command == "prune":
        keep = args.keep or settings.model_keep_versions
        removed = registry.resolve(args.name).prune(keep)
        return [f"{args.name}: removed {len(removed)} versions" + (f": {', '.join(removed)}" if removed else "")]
    if args.command == "rollout":
        return _rollout(registry, args)
    moved = registry.migrate()
    return [f"moved {len(moved)} versions into {registry.store().root}"]


def main(argv: Sequence[str] | None = None, *, prog: str = "ml-service models") -> int:
    """Entry point: one-line errors; 2 for anything refused, 3 an import the quality gate refused."""
    args = build_parser(prog).parse_args(argv)
    if args.command == "import":
        return import_in_child(args)
    try:
        lines = run(args)
    except (ModelStoreError, ValueError) as error:
        print(f"error: {getattr(error, 'message', error)}", file=sys.stderr)
        return exit_codes.REFUSED
    print("\n".join(lines))
    return exit_codes.OK
