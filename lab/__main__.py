"""`python -m lab COMMAND ...`: the command line, one module per command group.

Each module in ``lab.cli`` exposes ``register(subparsers)``; it adds its
parsers and sets ``func`` to the callable that runs it and returns the exit
code. Heavy imports (gradio, uvicorn, ffmpeg) happen inside those callables so
``resolve`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = ("resolve", "simulator", "thumbs", "generate", "compare")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"lab.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
