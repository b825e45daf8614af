"""What the commands share: exit codes, the failure line, typed flags, usage errors that end with a JSON line.

A bad flag (``--port 99999``, ``--sim-time-scale nan``) is a usage error: one line on
stderr, the command's JSON summary as the last stdout line, exit 2; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from typing import Any, Callable

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def json_line(value: dict) -> str:
    """One line of JSON that is valid UTF-8 even when a path or message holds a lone surrogate (argv's \\xff)."""
    from lab.params import printable

    # json.dumps escapes control characters itself; what is left raw are surrogates, escaped here as \\udcff.
    return printable(json.dumps(value, ensure_ascii=False))


def fail(message: str, *, code: int = EXIT_INVALID, **summary: Any) -> int:
    """A command that cannot go on: ``error: message`` on stderr, then its JSON summary with
    ``"ok": false`` and the error as the last stdout line. Returns ``code`` (default 2).

    ``summary`` holds the command's other fields, empty (``tasks=[]``), so a script reads one shape.
    """
    print(f"error: {message}", file=sys.stderr)
    print(json_line({"ok": False, **summary, "error": message}), flush=True)
    return code


def finite_positive(text: str) -> float:
    """An argparse type: a finite number > 0 (nan, inf, 0 and negatives are usage errors, not tracebacks)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number greater than 0 and at most 100")
    return value


def int_between(low: int, high: int):
    """An argparse type: a whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        match = re.fullmatch(r"\s*([+-]?)0*([0-9]+)\s*", text, re.ASCII)
        if not match:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number")
        if len(match.group(2)) > 15:  # never int() thousands of digits
            raise argparse.ArgumentTypeError(f"{match.group(1)}{match.group(2)[:15]}... is not from {low} to {high}")
        value = int(match.group(1) + match.group(2))
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not from {low} to {high}")
        return value

    parse.__name__ = "whole number"
    return parse


def json_usage_errors(parser: argparse.ArgumentParser, report: Callable[[str], object] | None = None,
                      **summary: Any) -> argparse.ArgumentParser:
    """Route ``parser``'s usage errors (and unknown flags) through ``report(message)``, then exit 2.

    Without ``report``: ``fail(message, **summary)``.
    """
    report = report or (lambda message: fail(message, **summary))

    def error(message: str):
        parser.print_usage(sys.stderr)
        report(f"{parser.prog}: {message}")
        raise SystemExit(EXIT_INVALID)

    def parse_known_args(args=None, namespace=None):
        # Unknown flags too: otherwise the top-level parser reports them, with no JSON line.
        namespace, extras = argparse.ArgumentParser.parse_known_args(parser, args, namespace)
        if extras:
            error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, []

    parser.error = error  # type: ignore[method-assign]
    parser.parse_known_args = parse_known_args  # type: ignore[method-assign]
    return parser
