"""What a loaded model holds in memory: its objects' sizes, walked once each (NumPy and SciPy arrays
by their buffers, dictionaries, strings and objects' attributes), measured when it is loaded."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

_LEAVES = (str, bytes, int, float, bool, complex, type(None))
_LEAF_TYPES = frozenset(_LEAVES)
MAX_OBJECTS = 2_000_000  # a bound on the walk; a text model's vocabulary is far below it


def deep_size(*roots: Any) -> int:
    """Bytes held by `roots` and everything they reach, each object counted once (shared arrays too)."""
    seen: set[int] = set()
    stack: list[Any] = list(roots)
    total = 0
    while stack and len(seen) < MAX_OBJECTS:
        item = stack.pop()
        if id(item) in seen or isinstance(item, type):
            continue
        seen.add(id(item))
        if isinstance(item, np.ndarray):
            total += item.nbytes + sys.getsizeof(np.empty(0))
            if item.base is not None:
                stack.append(item.base)
            if item.dtype == object:
                stack.extend(item.ravel().tolist())
            continue
        total += sys.getsizeof(item)
        if isinstance(item, _LEAVES):
            continue
        if isinstance(item, dict):
            total += _sizes(item.keys(), stack) + _sizes(item.values(), stack)
        elif isinstance(item, list | tuple | set | frozenset):
            total += _sizes(item, stack)
        else:
            attributes = getattr(item, "__dict__", None)
            if attributes is not None:
                stack.append(attributes)
            for slot in getattr(type(item), "__slots__", ()):
                if hasattr(item, slot):
                    stack.append(getattr(item, slot))
            for name in ("data", "indices", "indptr"):  # a SciPy sparse matrix's arrays
                if isinstance(getattr(item, name, None), np.ndarray):
                    stack.append(getattr(item, name))
    return total


def _sizes(items: Any, stack: list[Any]) -> int:
    """The sizes of the strings and numbers among `items` (a vocabulary's terms and indices: counted
    here, not walked one by one); the other items go on the stack."""
    size = 0
    getsize = sys.getsizeof
    for value in items:
        if type(value) in _LEAF_TYPES:
            size += getsize(value)
        else:
            stack.append(value)
    return size
