"""`ml-service serve`: the production server (src/server/supervisor.py). It takes no options: every
setting is an environment variable."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from src import exit_codes
from src.cli import COMMANDS


def main(argv: Sequence[str] = (), *, prog: str = "ml-service serve") -> int:
    """Serve until SIGTERM; `--help` describes it; any other argument is refused (exit 2)."""
    rest = list(argv)
    if rest in (["-h"], ["--help"]):
        print(  # noqa: T201 - a command's help
            f"usage: {prog}\n\n{COMMANDS['serve']}.\nIt takes no options: every setting is an environment variable "
            "(HOST, PORT, WORKERS, MODEL_DIR, API_KEYS, ...; the README's Settings lists them all)."
        )
        return exit_codes.OK
    if rest:
        print(  # noqa: T201 - a command's error
            f"{prog}: unexpected arguments {' '.join(rest)}; settings are environment variables, e.g. PORT=9000 {prog}",
            file=sys.stderr,
        )
        return exit_codes.REFUSED
    from src.server.supervisor import main as serve

    return serve()
