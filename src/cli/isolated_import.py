"""`ml-service models import`, run apart: a fitted scikit-learn text Pipeline published as a model's
new CURRENT after the checks in src/model/importer.py.

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
from typing import NoReturn

from src import exit_codes
from src.config import Settings, get_settings
from src.errors import ModelStoreError
from src.model.importer import ImportOptions, ImportRefusedError, import_model
from src.model.publication import QualityGateRefusedError
from src.store.model_sources import limit_resources
from src.store.registry import ModelRegistry, check_model_name


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
    except QualityGateRefusedError as error:
        return exit_codes.GATE_REFUSED, "", f"error: {error}\n"
    except ImportRefusedError as error:
        return exit_codes.REFUSED, "", f"error: {error}; nothing published\n"
    except ModelStoreError as error:
        return exit_codes.REFUSED, "", f"error: {error.message}; nothing published\n"
    except MemoryError:
        return (
            exit_codes.REFUSED,
            "",
            "error: the import ran out of memory (IMPORT_MEMORY_BYTES); nothing published\n",
        )
    except RecursionError:
        return exit_codes.REFUSED, "", "error: the model is nested too deeply to read; nothing published\n"
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
        status, err = exit_codes.REFUSED, f"error: the import failed: {type(error).__name__}: {error}"[:500]
        err += "; nothing published\n"
    finally:
        try:
            os.write(report, json.dumps([status, out, err]).encode())
        finally:
            os._exit(status)


def import_in_child(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Run the import in a forked child under the memory and CPU caps (IMPORT_MEMORY_BYTES,
    IMPORT_SECONDS) and a wall-clock bound; print what it reports; its exit status.

    A fork, not a new interpreter: the child starts with everything imported (a fresh Python took
    about 3 s to import scikit-learn again), and the caps apply to it alone."""
    settings = settings or get_settings()
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
        return exit_codes.REFUSED
    sys.stdout.write(out)
    sys.stdout.flush()
    sys.stderr.write(err)
    return int(status)
