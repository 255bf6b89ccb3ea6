"""Argument types the commands share: argparse turns their refusal into a one-line usage error."""

from __future__ import annotations

import argparse

from src.errors import ModelNotFoundError
from src.store.registry import check_model_name


def at_least_one(value: str) -> int:
    """A whole number of 1 or more."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def model_name(value: str) -> str:
    """A name that can name a model (src/store/registry.py's rule)."""
    try:
        return check_model_name(value)
    except ModelNotFoundError as error:
        raise argparse.ArgumentTypeError(error.message) from None
