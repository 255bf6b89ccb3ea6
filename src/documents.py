"""One bounded reader for every JSON and YAML document the service believes, from a file or a client,
and the one compact JSON writer of its answers and records (`encode_json`).

Request bodies, metadata.json, ROLLOUT, key files, MLmodel files, reload answers and drift windows
all pass through `read_json` or `read_yaml`, which hold the same rules:

- size: the caller's bound, checked before anything is parsed (`read_file` stops one byte past it);
- UTF-8 only: `json.loads` would also take UTF-16 and UTF-32 bytes, and YAML a BOM-marked UTF-16;
- depth: at most `max_depth` nested arrays and objects, and never a RecursionError;
- YAML without aliases: a 424-byte file must not expand to gigabytes (a billion laughs);
- numbers: integers within 64 bits and floats finite (no NaN or Infinity, no `1e999` turned infinite),
  unless a file of our own is allowed non-finite floats (`finite=False`).

Each refusal is one `DocumentError`, whose message begins with what the document is; the caller maps
it to its own error (a 400, a model not served, a key file refused at start) without a traceback.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import orjson
import yaml

DEFAULT_MAX_DEPTH = 64
_INT_LIMIT = 2**63  # integers a JSON reader in any language holds exactly
# made once: json.dumps builds an encoder per call for these options
_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def encode_json(content: Any) -> bytes:
    """Compact JSON in UTF-8 (orjson), a non-finite float written as null; what orjson refuses (a lone
    surrogate, which JSON's "\\ud800" decodes to; an integer past 64 bits) is written by the standard
    library, escaped, with the same nulls."""
    try:
        return orjson.dumps(content)
    except orjson.JSONEncodeError:
        return _ENCODE(_nulls_for_non_finite(content)).encode()


def _nulls_for_non_finite(content: Any) -> Any:
    if isinstance(content, float):
        return content if math.isfinite(content) else None
    if isinstance(content, dict):
        return {key: _nulls_for_non_finite(value) for key, value in content.items()}
    if isinstance(content, list | tuple):
        return [_nulls_for_non_finite(value) for value in content]
    return content


class DocumentError(ValueError):
    """A document refused: `message` is one line, starting with what the document is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def read_file(path: Path, max_bytes: int, what: str) -> bytes:
    """A file's bytes, reading no more than one byte past `max_bytes`; DocumentError when it is over or unreadable."""
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise DocumentError(f"{what} cannot be read ({error.strerror or type(error).__name__})") from None
    if len(data) > max_bytes:
        raise DocumentError(f"{what} is over {max_bytes} bytes")
    return data


def _text(data: bytes | str, max_bytes: int, what: str) -> str:
    if len(data) > max_bytes:
        raise DocumentError(f"{what} is over {max_bytes} bytes")
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DocumentError(f"{what} is not UTF-8 text (byte {error.start})") from None


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _bounded_int(digits: str) -> int:
    if len(digits) > 20:  # past 64 bits whatever the digits: refused before int() does quadratic work
        raise ValueError(f"the integer {digits[:20]}... is out of range")
    value = int(digits)
    if not -_INT_LIMIT <= value < _INT_LIMIT:
        raise ValueError(f"the integer {value} is out of range")
    return value


def _finite_float(digits: str) -> float:
    value = float(digits)
    if not math.isfinite(value):
        raise ValueError(f"the number {digits[:20]} is out of range")
    return value


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int)
_LENIENT_DECODER = json.JSONDecoder(parse_int=_bounded_int)


def read_json(
    data: bytes | str,
    what: str,
    *,
    max_bytes: int,
    max_depth: int = DEFAULT_MAX_DEPTH,
    finite: bool = True,
) -> Any:
    """A JSON document within the bounds (see the module's docstring); DocumentError naming `what` otherwise."""
    text = _text(data, max_bytes, what)
    try:
        document = (_DECODER if finite else _LENIENT_DECODER).decode(text)
    except RecursionError:
        raise DocumentError(f"{what} is nested over {max_depth} levels deep") from None
    except ValueError as error:
        raise DocumentError(f"{what} is not valid JSON ({_first_line(error)})") from None
    # Cheap first: a document with fewer brackets than the bound cannot be nested past it.
    if text.count("[") + text.count("{") > max_depth and _depth(document) > max_depth:
        raise DocumentError(f"{what} is nested over {max_depth} levels deep")
    return document


def _depth(document: Any) -> int:
    """How deeply arrays and objects nest in a parsed document (iterative: no recursion to exhaust)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


class _BoundedYamlLoader(yaml.SafeLoader):
    """YAML's safe subset without aliases and with bounded nesting."""

    max_depth = DEFAULT_MAX_DEPTH

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _YamlRefusedError(f"uses a YAML alias (*name) at line {event.start_mark.line + 1}")
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                raise _YamlRefusedError(f"is nested over {self.max_depth} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _YamlRefusedError(Exception):
    """Raised inside the loader; read_yaml turns it into a DocumentError naming the document."""


def read_yaml(data: bytes | str, what: str, *, max_bytes: int, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """A YAML document within the bounds (no aliases, UTF-8, nesting, size); DocumentError naming `what` otherwise."""
    text = _text(data, max_bytes, what)
    loader = type("_Loader", (_BoundedYamlLoader,), {"max_depth": max_depth})
    try:
        document = yaml.load(text, Loader=loader)
    except _YamlRefusedError as refused:
        raise DocumentError(f"{what} {refused}") from None
    except RecursionError:
        raise DocumentError(f"{what} is nested over {max_depth} levels deep") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or _first_line(error)
        raise DocumentError(f"{what} is not valid YAML{line} ({problem})") from None
    except ValueError:  # a scalar the constructor cannot make (an integer of 5,000 digits)
        raise DocumentError(f"{what} holds a value out of range") from None
    _check_numbers(document, what)
    return document


def _check_numbers(document: Any, what: str) -> None:
    """YAML's numbers in the same ranges as JSON's (its ints are unbounded, `.inf` and `.nan` are floats),
    a refusal naming where the number is (`keys[0].rate`)."""
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            stack.extend((key, where) for key in value)
            stack.extend((child, f"{where}.{key}" if where else str(key)) for key, child in value.items())
        elif isinstance(value, list):
            stack.extend((child, f"{where}[{index}]") for index, child in enumerate(value))
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int) and not -_INT_LIMIT <= value < _INT_LIMIT:
            raise DocumentError(f"{what} holds an integer out of range{_at(where)}")
        elif isinstance(value, float) and not math.isfinite(value):
            raise DocumentError(f"{what} holds a number that is not finite{_at(where)}")


def _at(where: str) -> str:
    return f" at {where[:100]}" if where else ""


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__
