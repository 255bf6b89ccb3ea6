"""`python -m src.model.store_cli`: the model store's command line (src/store/cli.py), plus `import`.

python -m src.model.store_cli import NAME PATH [--trust-pickle] [--sample CSV] [--test CSV]
                                  [--text-column C] [--label-column L] [--force]

`import` publishes a fitted scikit-learn text Pipeline (a skops file; a joblib or pickle file with
--trust-pickle; an MLflow model directory) as model NAME's new CURRENT version, after the checks
in src/model/importer.py. It prints the version. Exit status: 0 published, 2 refused (a one-line
reason on standard error, nothing published), 3 refused by the quality gate.

The whole import runs in a forked child process capped at IMPORT_MEMORY_BYTES of memory and
IMPORT_SECONDS of time (CPU, and 1.5 times that of wall clock): a model file is the user's, and one built to expand or
to spin is stopped with one line, the store untouched, rather than taking the machine's memory.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import select
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from src.config import Settings, get_settings
from src.errors import ModelStoreError
from src.model.importer import ImportOptions, ImportRefusedError, import_model
from src.store import cli as store_cli
from src.store.model_sources import limit_resources
from src.store.registry import ModelRegistry, check_model_name

TRUST_PICKLE_HELP = (
    "load a joblib or pickle file (or an MLflow model saved with pickle or cloudpickle). Unpickling runs "
    "whatever code the file holds: use it only for a file whose author you trust. It is loaded in a "
    "separate process with memory and time limits and stored as skops, so servers never unpickle it"
)


def build_parser(prog: str = "python -m src.model.store_cli") -> argparse.ArgumentParser:
    """The store's command line with `import` added."""
    parser = store_cli.build_parser(prog)
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    importing = commands.add_parser(
        "import",
        help="publish your own fitted scikit-learn text Pipeline (skops, joblib/pickle, MLflow) as NAME's CURRENT",
        description=__doc__.split("\n\n")[2].replace("\n", " "),
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
    return parser


def run_import(args: argparse.Namespace) -> list[str]:
    settings = get_settings()
    registry = ModelRegistry.from_settings(settings, args.model_dir)
    check_model_name(args.name)
    options = ImportOptions(
        trust_pickle=args.trust_pickle,
        sample=args.sample,
        test=args.test,
        text_column=args.text_column,
        label_column=args.label_column,
        force=args.force,
        keep=settings.model_keep_versions,
    )
    version, metadata = import_model(registry, args.name, args.path, options)
    parity = metadata["parity"]
    return [
        version,
        f"imported {args.path.name} ({metadata['imported_from']['format']}) as model {args.name} version {version}: "
        f"engine {parity['engine']}, {parity['output']} reproduced on {parity['texts']} texts to "
        f"{parity['max_abs_difference']:.1e}",
    ]


def _import(args: argparse.Namespace) -> tuple[int, str, str]:
    """Carry out one import: its exit status, standard output and standard error (one-line errors)."""
    try:
        version, summary = run_import(args)
    except ImportRefusedError as error:
        return error.exit_status, "", f"error: {error}; nothing published\n"
    except ModelStoreError as error:
        return store_cli.EXIT_REFUSED, "", f"error: {error.message}; nothing published\n"
    except MemoryError:
        return (
            store_cli.EXIT_REFUSED,
            "",
            "error: the import ran out of memory (IMPORT_MEMORY_BYTES); nothing published\n",
        )
    except RecursionError:
        return store_cli.EXIT_REFUSED, "", "error: the model is nested too deeply to read; nothing published\n"
    return 0, f"{version}\n", f"{summary}\n"


def _child(args: argparse.Namespace, memory: int, seconds: int, report: int) -> NoReturn:
    """The forked child: cap itself, import, write (status, stdout, stderr) as JSON to `report`, exit."""
    status, out, err = 70, "", ""
    try:
        limit_resources(memory, seconds)
        captured = io.StringIO()  # what the import's code logs (a warning) joins its standard error
        with contextlib.redirect_stderr(captured):
            status, out, err = _import(args)
        err = captured.getvalue() + err
    except BaseException as error:  # an error nobody foresaw: its last line, never a traceback
        status, err = store_cli.EXIT_REFUSED, f"error: the import failed: {type(error).__name__}: {error}"[:500]
        err += "; nothing published\n"
    finally:
        try:
            os.write(report, json.dumps([status, out, err]).encode())
        finally:
            os._exit(status)


def _import_in_child(args: argparse.Namespace, settings: Settings) -> int:
    """Run the import in a forked child under the memory and CPU caps (IMPORT_MEMORY_BYTES,
    IMPORT_SECONDS) and a wall-clock bound; print what it reports; its exit status.

    A fork, not a new interpreter: the child starts with everything imported (a fresh Python took
    about 3 s to import scikit-learn again), and the caps apply to it alone."""
    memory, seconds = settings.import_memory_bytes, settings.import_seconds
    wall = seconds * 1.5 + 10  # CPU time is capped at `seconds`; waiting on files a little longer
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _child(args, memory, seconds, write_end)
    os.close(write_end)
    received, deadline = b"", time.monotonic() + wall
    try:
        while (left := deadline - time.monotonic()) > 0 and select.select([read_end], [], [], left)[0]:
            chunk = os.read(read_end, 1 << 16)
            if not chunk:
                break
            received += chunk
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(read_end)
    _, wait_status = os.waitpid(pid, 0)
    try:
        status, out, err = json.loads(received)
    except ValueError:
        if time.monotonic() >= deadline:
            print(
                f"error: the import took over {wall:.0f} s (IMPORT_SECONDS); stopped, nothing published",
                file=sys.stderr,
            )
        else:
            stopped = (
                os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else os.waitstatus_to_exitcode(wait_status)
            )
            print(
                f"error: the import was stopped ({stopped}): over {memory} bytes of memory (IMPORT_MEMORY_BYTES) "
                f"or {seconds} s of CPU (IMPORT_SECONDS); nothing published",
                file=sys.stderr,
            )
        return store_cli.EXIT_REFUSED
    sys.stdout.write(out)
    sys.stdout.flush()
    sys.stderr.write(err)
    return int(status)


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m src.model.store_cli") -> int:
    """Entry point: the version on standard output; one-line errors; 2 refused, 3 refused by the gate."""
    args = build_parser(prog).parse_args(argv)
    if args.command != "import":
        return store_cli.main(argv, prog=prog)
    return _import_in_child(args, get_settings())


if __name__ == "__main__":
    sys.exit(main())
