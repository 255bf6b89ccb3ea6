"""Token patterns judged by their structure: a `token_pattern` is taken only if tokenising a text with
it (`findall`, as scikit-learn does) takes time linear in the text, whatever the text.

Python's `re` backtracks, holds the GIL and cannot be interrupted, so a pattern that backtracks
catastrophically stalls a worker with no way back but a kill. A stopwatch cannot decide this (it
refuses good patterns on a busy machine and misses bad ones on inputs it did not try), so the
decision is made on the parsed pattern, the same for every caller and every load:

- no backreferences or conditionals (matching with them is NP-hard in general);
- the body of a repetition that can run long (`+`, `*`, `{m,n}` with n > 1) is one piece that
  cannot be matched in two ways: no repetition, alternation or empty match inside it;
- whatever follows such a repetition, to the end of the pattern, cannot fail: it can match nothing
  (an optional part), or it is `\\b` right after a run of `\\w`. Then a match attempt that enters
  a repetition always succeeds without backtracking into it, and an attempt that fails does so
  within a bounded number of steps, so `findall` over n characters does O(n) work. (`\\w+x` is
  refused: on a long word with no `x`, every start scans to its end, n squared steps.);
- no long repetition inside a lookaround (it scans without consuming, at every start);
- the choices a failing attempt can try (alternatives, optional parts) are bounded in number, and
  so are counted repetitions (`{m,n}` with m or n up to MAX_REPEAT_COUNT).

Patterns that break a rule may still be harmless; they are refused all the same, with the rule.
"""

from __future__ import annotations

import re
from re import _constants as sre
from re import _parser as sre_parse
from typing import Any

MAX_PATTERN_LENGTH = 1_000
MAX_REPEAT_COUNT = 64
MAX_CHOICES = 4_096

_REPEATS = {sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", sre.MAX_REPEAT)}
_LOOKAROUNDS = {sre.ASSERT, sre.ASSERT_NOT}
_WORD_CLASS = [(sre.IN, [(sre.CATEGORY, sre.CATEGORY_WORD)])]


class UnsupportedModelError(Exception):
    """The model is configured in a way the service does not serve."""


def _refuse(pattern: str, rule: str) -> UnsupportedModelError:
    return UnsupportedModelError(f"token_pattern {pattern!r} can backtrack without bound: {rule}")


def _items(node: Any) -> list[tuple[Any, Any]]:
    return list(node.data) if isinstance(node, sre_parse.SubPattern) else list(node)


def _is_long_repeat(op: Any, args: Any) -> bool:
    return op in _REPEATS and args[1] > 1


def _children(op: Any, args: Any) -> list[Any]:
    """The sub-patterns an item holds."""
    if op in _REPEATS:
        return [args[2]]
    if op == sre.SUBPATTERN:
        return [args[3]]
    if op == sre.BRANCH:
        return list(args[1])
    if op in _LOOKAROUNDS:
        return [args[1]]
    if op == getattr(sre, "ATOMIC_GROUP", None):
        return [args]
    return []


def _contains(sequence: Any, wanted: set[Any], *, long_repeats: bool = False) -> bool:
    """Whether any item inside `sequence` (at any depth) is one of `wanted`, or a long repetition."""
    for op, args in _items(sequence):
        if op in wanted or (long_repeats and _is_long_repeat(op, args)):
            return True
        if any(_contains(child, wanted, long_repeats=long_repeats) for child in _children(op, args)):
            return True
    return False


def _cannot_fail(item: tuple[Any, Any], before: tuple[Any, Any] | None) -> bool:
    """Whether an item always matches where it stands (`before` is the item right before it)."""
    op, args = item
    if op in _REPEATS:
        return bool(args[0] == 0)
    if op == sre.SUBPATTERN:
        return _all_cannot_fail(_items(args[3]), before)
    if op == sre.BRANCH:
        return any(_all_cannot_fail(_items(alternative), before) for alternative in args[1])
    if op == sre.AT and args == sre.AT_BOUNDARY and before is not None:
        # \b right after a greedy run of \w: the run ended at a non-word character or the end.
        before_op, before_args = before
        return bool(before_op == sre.MAX_REPEAT and before_args[1] > 1 and _items(before_args[2]) == _WORD_CLASS)
    return False


def _all_cannot_fail(items: list[tuple[Any, Any]], before: tuple[Any, Any] | None) -> bool:
    for item in items:
        if not _cannot_fail(item, before):
            return False
        before = item
    return True


def _check_sequence(pattern: str, items: list[tuple[Any, Any]], tail_cannot_fail: bool) -> int:
    """Check a sequence whose continuation (after its last item) cannot fail when `tail_cannot_fail`;
    the number of choices a failing attempt can try in it."""
    choices = 1
    for index, (op, args) in enumerate(items):
        rest_cannot_fail = tail_cannot_fail and _all_cannot_fail(items[index + 1 :], (op, args))
        if op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
            raise _refuse(pattern, "backreferences and conditionals are not taken")
        if op in _REPEATS:
            low, high, body = args
            if (high != sre.MAXREPEAT and high > MAX_REPEAT_COUNT) or low > MAX_REPEAT_COUNT:
                raise _refuse(pattern, f"a counted repetition is over {MAX_REPEAT_COUNT}")
            if high > 1:
                if _contains(body, {sre.BRANCH, *_REPEATS}):
                    raise _refuse(pattern, "a repetition holds another repetition or alternatives (nested quantifiers)")
                if body.getwidth()[0] == 0:
                    raise _refuse(pattern, "a repetition's body can match nothing")
                if not rest_cannot_fail:
                    raise _refuse(
                        pattern,
                        "a repetition is followed by something that can fail, so a long run is scanned again "
                        "from every start (only optional parts, or \\b after \\w+, may follow one)",
                    )
            else:
                choices *= 1 + _check_sequence(pattern, _items(body), rest_cannot_fail)
        elif op == sre.SUBPATTERN:
            choices *= _check_sequence(pattern, _items(args[3]), rest_cannot_fail)
        elif op == sre.BRANCH:
            choices *= sum(_check_sequence(pattern, _items(alt), rest_cannot_fail) for alt in args[1])
        elif op in _LOOKAROUNDS:
            if _contains(args[1], set(), long_repeats=True):
                raise _refuse(pattern, "a lookaround holds a repetition, which scans again from every start")
            choices *= _check_sequence(pattern, _items(args[1]), True)
        elif op == getattr(sre, "ATOMIC_GROUP", None):
            choices *= _check_sequence(pattern, _items(args), rest_cannot_fail)
        if choices > MAX_CHOICES:
            raise _refuse(pattern, f"over {MAX_CHOICES} alternatives and optional parts to try")
    return choices


def check_token_pattern(pattern: str) -> None:
    """Raise UnsupportedModelError unless `pattern` compiles, has at most one capturing group, and
    tokenises in linear time by its structure (the module's rules)."""
    if not isinstance(pattern, str):
        raise UnsupportedModelError("token_pattern must be a string")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise UnsupportedModelError(f"token_pattern has {len(pattern)} characters, over {MAX_PATTERN_LENGTH}")
    try:
        compiled = re.compile(pattern)
        parsed = sre_parse.parse(pattern, compiled.flags & ~re.UNICODE | re.UNICODE)
    except (re.error, RecursionError, OverflowError) as error:
        raise UnsupportedModelError(f"token_pattern does not compile ({error})") from None
    if compiled.groups > 1:
        raise UnsupportedModelError("token_pattern has more than one capturing group")
    try:
        _check_sequence(pattern, _items(parsed), True)
    except RecursionError:
        raise UnsupportedModelError("token_pattern is nested too deeply") from None
