"""Token patterns that tokenise in bounded time: a `token_pattern` with nested quantifiers can take
seconds on a short text, so each is tried on growing pathological inputs before it is served."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

# A token pattern must tokenise each probe below within this budget, at every length tried.
PATTERN_BUDGET_SECONDS = 0.02
_PROBE_LENGTHS = (8, 12, 16, 20, 24, 32, 64, 256, 1024, 4096)
_PROBES: tuple[Callable[[int], str], ...] = (
    lambda n: "a" * n + "!",
    lambda n: "ab " * (n // 3) + "!",
    lambda n: " " * n + "a",
    lambda n: "1" * n + "x",
    lambda n: "a_" * (n // 2) + "-",
    lambda n: "\u00e9" * n + ".",
)


class UnsupportedModelError(Exception):
    """The model is configured in a way the service does not serve."""


def check_token_pattern(pattern: str) -> None:
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise UnsupportedModelError(f"token_pattern does not compile ({error})") from None
    if compiled.groups > 1:
        raise UnsupportedModelError("token_pattern has more than one capturing group")
    # Try growing pathological inputs; catastrophic backtracking shows as a sudden slowdown on a
    # short one, so the trial stops there instead of hanging the process on a long one.
    for probe in _PROBES:
        for length in _PROBE_LENGTHS:
            text = probe(length)
            started = time.perf_counter()
            compiled.findall(text)
            elapsed = time.perf_counter() - started
            if elapsed > PATTERN_BUDGET_SECONDS:
                raise UnsupportedModelError(
                    f"token_pattern {pattern!r} took {elapsed * 1000:.0f} ms on {len(text)} characters "
                    "(catastrophic backtracking)"
                )
