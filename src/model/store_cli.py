"""`python -m src.model.store_cli`: the model store's command line (src/store/cli.py), plus `import`.

python -m src.model.store_cli import NAME PATH [--trust-pickle] [--sample CSV] [--test CSV]
                                  [--text-column C] [--label-column L] [--force]

`import` publishes a fitted scikit-learn text Pipeline (a skops file; a joblib or pickle file with
--trust-pickle; an MLflow model directory) as model NAME's new CURRENT version, after the checks
in src/model/importer.py. It prints the version. Exit status: 0 published, 2 refused (a one-line
reason on standard error, nothing published), 3 refused by the quality gate.

The whole import runs in a child process capped at IMPORT_MEMORY_BYTES of memory and
IMPORT_SECONDS of time (CPU and wall clock): a model file is the user's, and one built to expand or
to spin is stopped with one line, the store untouched, rather than taking the machine's memory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from src.config import Settings, get_settings
from src.errors import ModelStoreError
from src.model.importer import ImportOptions, ImportRefusedError, import_model
from src.store import cli as store_cli
from src.store.model_sources import limit_resources
from src.store.registry import ModelRegistry, check_model_name

_IMPORT_CHILD = "ML_SERVICE_IMPORT_CHILD"

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


def _import_in_child(argv: Sequence[str], settings: Settings) -> int:
    """Run this same import in a child process under the memory and time caps; its exit status."""
    memory, seconds = settings.import_memory_bytes, settings.import_seconds
    root = str(Path(__file__).resolve().parents[2])
    env = {
        **os.environ,
        _IMPORT_CHILD: "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    try:
        finished = subprocess.run(
            [sys.executable, "-m", "src.model.store_cli", *argv],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=seconds * 1.5 + 10,  # CPU time is capped at `seconds`; waiting (I/O) a little longer
            preexec_fn=lambda: limit_resources(memory, seconds),
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        print(
            f"error: the import took over {seconds * 1.5 + 10:.0f} s (IMPORT_SECONDS); stopped, nothing published",
            file=sys.stderr,
        )
        return store_cli.EXIT_REFUSED
    sys.stdout.write(finished.stdout.decode(errors="replace"))
    sys.stdout.flush()
    lines = finished.stderr.decode(errors="replace").splitlines()
    if finished.returncode < 0:  # killed: SIGKILL or SIGXCPU at the CPU cap, or the kernel's OOM killer
        print(
            f"error: the import was stopped by signal {-finished.returncode}: over {memory} bytes of memory "
            f"(IMPORT_MEMORY_BYTES) or {seconds} s of CPU (IMPORT_SECONDS)?; nothing published",
            file=sys.stderr,
        )
        return store_cli.EXIT_REFUSED
    if finished.returncode not in (0, 2, 3):  # an error nobody foresaw: its last line, not its traceback
        last = lines[-1] if lines else f"exit status {finished.returncode}"
        print(f"error: the import failed: {last[:500]}; nothing published", file=sys.stderr)
        return store_cli.EXIT_REFUSED
    if lines:
        print("\n".join(lines), file=sys.stderr)
    return finished.returncode


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m src.model.store_cli") -> int:
    """Entry point: the version on standard output; one-line errors; 2 refused, 3 refused by the gate."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog).parse_args(argv)
    if args.command != "import":
        return store_cli.main(argv, prog=prog)
    if not os.environ.get(_IMPORT_CHILD):
        return _import_in_child(argv, get_settings())
    try:
        version, summary = run_import(args)
    except ImportRefusedError as error:
        print(f"error: {error}; nothing published", file=sys.stderr)
        return error.exit_status
    except ModelStoreError as error:
        print(f"error: {error.message}; nothing published", file=sys.stderr)
        return store_cli.EXIT_REFUSED
    except MemoryError:
        print("error: the import ran out of memory (IMPORT_MEMORY_BYTES); nothing published", file=sys.stderr)
        return store_cli.EXIT_REFUSED
    except RecursionError:
        print("error: the model is nested too deeply to read; nothing published", file=sys.stderr)
        return store_cli.EXIT_REFUSED
    print(version)
    print(summary, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
