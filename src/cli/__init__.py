"""The `ml-service` command: serve, train, and manage the model store; one package, one set of exit codes.

    ml-service serve                          the production server (src/cli/serve.py)
    ml-service train [--data FILE] [...]      train, evaluate, gate and publish (src/cli/train.py)
    ml-service models list|import|promote|rollback|prune|migrate|rollout ...
                                              the model store (src/cli/models.py)
    ml-service predict --input F --output F   score a CSV, JSON Lines or Parquet file (src/cli/predict.py)

`python -m src.serve`, `python -m src.model.train_script` and `python -m src.model.store_cli` are the
same commands under the names the project started with. Settings come from the environment (MODEL_DIR,
PORT, ...), as for the server. Exit status (src/exit_codes.py): 0 done, 1 the server could not start,
2 bad input, a refused store change or batch run (nothing changed), 3 a model refused by the quality gate.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata

# Each command's one-line summary. The commands are imported only when run: `python -m src.serve`
# imports this package first, and its supervisor must not wait for scikit-learn, which only workers use.
COMMANDS = {
    "serve": "run the production server: one worker per CPU on $HOST:$PORT (SIGHUP reloads the models)",
    "train": "train a model on the bundled data or your CSV/JSONL, evaluate it, gate it and publish it",
    "models": "the model store: list, import, promote, rollback, prune, migrate, rollout",
    "predict": "score a CSV, JSON Lines or Parquet file with a stored model, on every core or on Spark",
}


def _version() -> str:
    try:
        return metadata.version("ml-service")
    except metadata.PackageNotFoundError:  # run from a checkout without `pip install .`
        from src import API_VERSION

        return API_VERSION


def build_parser() -> argparse.ArgumentParser:
    """The top-level command line; each subcommand parses its own arguments."""
    parser = argparse.ArgumentParser(
        prog="ml-service",
        description="Serve scikit-learn text classifiers over HTTP and gRPC (JSON, the Open Inference Protocol, "
        "KServe V1, MLflow).",
        epilog="`ml-service COMMAND --help` shows a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"ml-service {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, summary in COMMANDS.items():
        commands.add_parser(name, help=summary, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns its exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parsed, rest = build_parser().parse_known_args(arguments[:1])
    rest += arguments[1:]
    if parsed.command == "serve":
        from src.cli.serve import main as serve

        return serve(rest, prog="ml-service serve")
    if parsed.command == "train":
        from src.cli.train import main as train

        return train(rest, prog="ml-service train")
    if parsed.command == "predict":
        from src.cli.predict import main as predict

        return predict(rest, prog="ml-service predict")
    from src.cli.models import main as models

    return models(rest, prog="ml-service models")
