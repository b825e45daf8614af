"""`python -m lab resolve BODY`: print the resolved request as JSON; exit 0 if valid, 2 if not."""

from __future__ import annotations

import argparse
import json
import sys

from lab.params import resolve

EXIT_INVALID = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("resolve", help="resolve a request body and show what would be sent")
    parser.add_argument("body", help="the request body as JSON, or - to read it from stdin")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.body == "-" else args.body
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        print(f"error: BODY is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", file=sys.stderr)
        return EXIT_INVALID
    resolution = resolve(body)
    print(json.dumps(resolution.to_json(), ensure_ascii=False))
    return 0 if resolution.ok else EXIT_INVALID
