"""The progress a batch run shows: a bar redrawn in place on a terminal, a plain line now and then otherwise."""

from __future__ import annotations

import io

import pytest

from src.batch import progress as progress_module
from src.batch.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_with_rows_rate_and_time_left(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(progress_module, "_clock", lambda: now[0])
    stream = Terminal()
    progress = Progress(stream)
    now[0] = 110.0
    progress.advance(50_000, 3, 0.25)
    assert stream.getvalue() == "\r[#######.......................] 50,000 rows, 5,000 rows/s, 0:30 left   "
    progress.finish("out.parquet")
    assert stream.getvalue().endswith(
        "\n50,000 rows, 3 refused (see the error column) in 10.0 s (5,000 rows/s) to out.parquet\n"
    )


def test_a_pipe_gets_a_plain_line_every_ten_seconds_and_the_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(progress_module, "_clock", lambda: now[0])
    stream = io.StringIO()
    progress = Progress(stream)
    now[0] = 5.0
    progress.advance(1_000, 0, None)
    assert stream.getvalue() == ""
    now[0] = 10.0
    progress.advance(1_000, 0, None)
    assert stream.getvalue() == "scored 2,000 rows, 200 rows/s\n"
    progress.finish("-")
    assert stream.getvalue().splitlines()[-1] == "2,000 rows, none refused in 10.0 s (200 rows/s) to -"


def test_quiet_shows_the_summary_only(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(progress_module, "_clock", lambda: now[0])
    stream = Terminal()
    progress = Progress(stream, enabled=False)
    now[0] = 60.0
    progress.advance(10, 0, 0.5)
    progress.finish("x.csv")
    assert stream.getvalue() == "10 rows, none refused in 60.0 s (0 rows/s) to x.csv\n"
