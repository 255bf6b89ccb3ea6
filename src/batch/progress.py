"""What a batch run shows while it works: a bar on a terminal, a plain line now and then otherwise,
and a summary at the end, all on standard error (standard output may be the table itself)."""

from __future__ import annotations

import time
from typing import IO

BAR_WIDTH = 30
TERMINAL_EVERY = 0.2  # seconds between redraws of the bar
PLAIN_EVERY = 10.0  # seconds between plain lines


def _clock() -> float:
    return time.monotonic()


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def summary_line(rows: int, refused: int, seconds: float, where: str) -> str:
    """The line that ends every run, local or on Spark."""
    rate = rows / seconds if seconds > 0 else 0.0
    counted = f", {refused:,} refused (see the error column)" if refused else ", none refused"
    return f"{rows:,} rows{counted} in {seconds:.1f} s ({rate:,.0f} rows/s) to {where}"


class Progress:
    """Rows done, rows per second and time left (when the share read is known)."""

    def __init__(self, stream: IO[str], *, enabled: bool = True) -> None:
        self.stream = stream
        self.enabled = enabled
        self.terminal = stream.isatty()
        self.started = _clock()
        self.shown = self.started
        self.rows = 0
        self.refused = 0

    def advance(self, rows: int, refused: int, fraction: float | None) -> None:
        """`rows` more rows written (`refused` of them with an error); `fraction` of the input read."""
        self.rows += rows
        self.refused += refused
        now = _clock()
        if not self.enabled or now - self.shown < (TERMINAL_EVERY if self.terminal else PLAIN_EVERY):
            return
        self.shown = now
        self.stream.write(self.line(now, fraction))
        self.stream.flush()

    def line(self, now: float, fraction: float | None) -> str:
        """The bar (for a terminal, redrawn in place) or one plain line."""
        elapsed = max(now - self.started, 1e-9)
        rate = self.rows / elapsed
        left = ""
        if fraction:
            left = f", {_duration(elapsed * (1 - fraction) / fraction)} left"
        counts = f"{self.rows:,} rows, {rate:,.0f} rows/s{left}"
        if not self.terminal:
            return f"scored {counts}\n"
        filled = int(BAR_WIDTH * (fraction or 0))
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        return f"\r[{bar}] {counts}   "

    def summary(self, where: str) -> str:
        """The last line: rows, refused rows, seconds and where the table went."""
        return summary_line(self.rows, self.refused, _clock() - self.started, where)

    def finish(self, where: str) -> None:
        """End the bar's line, then print the summary."""
        if self.enabled and self.terminal and self.rows:
            self.stream.write("\n")
        self.stream.write(self.summary(where) + "\n")
        self.stream.flush()
