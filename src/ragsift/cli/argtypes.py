"""Value types for argparse shared by the subcommands: a bad value is a usage error (exit 2)
that names the option."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An integer >= 1 given on the command line.

    Example:
        >>> positive_int("3")
        3
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value
