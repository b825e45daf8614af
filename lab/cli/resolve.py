"""`python -m lab resolve BODY`: print the resolved request as JSON; exit 0 if valid, 2 if not.

Whatever BODY holds (not JSON, not UTF-8, too large, nested too deep, NaN, lone
surrogates), the last stdout line is the resolution as strict JSON and the exit
code is 0 or 2; a body that cannot be parsed also gets a one-line stderr error.
"""

from __future__ import annotations

import argparse
import json
import sys

from lab.cli.usage import EXIT_INVALID, EXIT_OK, json_usage_errors
from lab.image_input import resolve
from lab.params import BODY_MAX_BYTES, Issue, parse_json, refusal


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("resolve", help="resolve a request body and show what would be sent")
    parser.add_argument("body", help="the request body as JSON, or - to read it from stdin")
    parser.set_defaults(func=run)
    # A BODY that looks like a flag ("-Infinity") is a usage error, and still ends with the JSON line.
    json_usage_errors(parser, lambda message: _print(refusal(Issue("body", "usage", message))))


def _print(resolution) -> None:
    print(json.dumps(resolution.to_json(), ensure_ascii=False, allow_nan=False))


def read_body(arg: str, max_bytes: int = BODY_MAX_BYTES) -> str | bytes:
    """BODY as given, or stdin's bytes (at most one past the limit, so a huge pipe is refused unread)."""
    if arg != "-":
        return arg
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text stream without bytes underneath (tests, embedding)
        return sys.stdin.read(max_bytes + 1)
    return stream.read(max_bytes + 1)


def run(args: argparse.Namespace) -> int:
    body, problem = parse_json(read_body(args.body))
    if problem is not None:
        print(f"error: {problem.message}", file=sys.stderr)
        resolution = refusal(problem)
    else:
        resolution = resolve(body)
    _print(resolution)
    return EXIT_OK if resolution.ok else EXIT_INVALID
