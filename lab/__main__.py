"""`python -m lab COMMAND ...`: the command line, one module per command group.

Each module in ``lab.cli`` exposes ``register(subparsers)``; it adds its
parsers and sets ``func`` to the callable that runs it and returns the exit
code. Heavy imports (gradio, uvicorn, ffmpeg) happen inside those callables so
``resolve`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
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
    usage.json_usage_errors(parser)
    return parser


# What a shell reports for a program that a closed pipe stopped (128 + SIGPIPE), as `yes | head -1` does.
EXIT_CLOSED_PIPE = 141


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        try:
            code = int(args.func(args) or 0)
        except BrokenPipeError:
            raise
        except (Exception, KeyboardInterrupt) as exc:  # a bug or Ctrl-C: still one line on stderr and the JSON line last
            code = _crashed(exc)
        sys.stdout.flush()  # here, not at exit, so a reader that went away is seen below
        return code
    except BrokenPipeError:
        return _closed_pipe()


def _closed_pipe() -> int:
    """The reader went away (``| head``): stop quietly, as Unix tools do. Nothing is lost:
    whatever a command journalled stays journalled, and nothing was still to be said."""
    # Python would flush stdout again at exit, into the same closed pipe: point it at /dev/null.
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass
    return EXIT_CLOSED_PIPE


def _crashed(exc: BaseException) -> int:
    """What every command does instead of a traceback: the journal keeps the tasks, resume finishes them."""
    message = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"internal error: {type(exc).__name__}: {exc}"
    message += "; journalled tasks are kept: run `python -m lab resume` to finish them"
    return usage.fail(message, code=usage.EXIT_FAILED, tasks=[], contact_sheet=None, cost_usd=0.0)


if __name__ == "__main__":
    sys.exit(main())
