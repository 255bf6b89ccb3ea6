"""The `ml-service` command: serve, train, and manage the model store.

    ml-service serve                          the production server (as `python -m src.serve`)
    ml-service train [--data FILE] [...]      train, evaluate, gate and publish (as `python -m src.model.train_script`)
    ml-service models list|import|promote|rollback|prune|migrate ...
                                              the model store (as `python -m src.model.store_cli`)

Settings come from the environment (MODEL_DIR, PORT, ...), as for the server. Exit status is the
subcommand's own: 0 done, 1 the server could not start, 2 bad input or a refused store change, 3 a
model refused by the quality gate.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata

COMMANDS = {
    "serve": "run the production server: one worker per CPU on $HOST:$PORT (SIGHUP reloads the models)",
    "train": "train a model on the bundled data or your CSV/JSONL, evaluate it, gate it and publish it",
    "models": "the model store: list, import, promote, rollback, prune, migrate, rollout",
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
        description="Serve scikit-learn text classifiers over HTTP (JSON and the Open Inference Protocol).",
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
        from src.server.supervisor import main as serve

        if rest:
            return _serve_help() if rest in (["-h"], ["--help"]) else _refuse_serve_arguments(rest)
        return serve()
    if parsed.command == "train":
        from src.model.train_script import main as train

        return train(rest, prog="ml-service train")
    from src.model.store_cli import main as models

    return models(rest, prog="ml-service models")


def _serve_help() -> int:
    print(  # noqa: T201 - a command's help
        "usage: ml-service serve\n\n"
        f"{COMMANDS['serve']}.\nIt takes no options: every setting is an environment variable "
        "(HOST, PORT, WORKERS, MODEL_DIR, API_KEYS, ...; the README's Settings lists them all)."
    )
    return 0


def _refuse_serve_arguments(rest: list[str]) -> int:
    print(  # noqa: T201 - a command's error
        f"ml-service serve: unexpected arguments {' '.join(rest)}; settings are environment variables, "
        "e.g. PORT=9000 ml-service serve",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
