"""`python -m lab COMMAND ...`: the command line, one module per command group.

Each module in ``lab.cli`` exposes ``register(subparsers)``; it adds its
parsers and sets ``func`` to the callable that runs it and returns the exit
code. Heavy imports (gradio, uvicorn, ffmpeg) happen inside those callables so
``resolve`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from lab.cli import usage

COMMAND_MODULES = ("resolve", "simulator", "thumbs", "generate", "compare", "history", "screen", "journal", "review")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"lab.cli.{name}")
        module.register(subparsers)
    # No command or an unknown one is a usage error like any other: the JSON line last, exit 2.
    usage.json_usage_errors(parser, lambda message: print(json.dumps({"ok": False, "error": message}, ensure_ascii=False)))
    return parser


EXIT_FAILED = 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (Exception, KeyboardInterrupt) as exc:  # a bug or Ctrl-C: still one line on stderr and the JSON line last
        return _crashed(exc)


def _crashed(exc: BaseException) -> int:
    """What every command does instead of a traceback: the journal keeps the tasks, resume finishes them."""
    import json

    message = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"internal error: {type(exc).__name__}: {exc}"
    message += "; journalled tasks are kept: run `python -m lab resume` to finish them"
    print(f"error: {message}", file=sys.stderr)
    print(json.dumps({"ok": False, "tasks": [], "contact_sheet": None, "cost_usd": 0.0, "error": message},
                     ensure_ascii=False))
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
