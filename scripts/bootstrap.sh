#!/usr/bin/env bash
# Creates .venv and installs the given requirements file into it (idempotent).
# The lab is built and tested on Python 3.11: python3.11 is used when there is one; any other
# python3 works at your own risk, with a warning that says which one it is.
set -euo pipefail
cd "$(dirname "$0")/.."
req="${1:-requirements.txt}"
if [ ! -x .venv/bin/python ]; then
  if command -v python3.11 >/dev/null; then
    py="$(command -v python3.11)"
  elif command -v python3 >/dev/null; then
    py="$(command -v python3)"
    echo "warning: python3.11 not found; using $py ($("$py" -V 2>&1)). The lab is built and tested on 3.11." >&2
  else
    echo "error: no python3 found; install Python 3.11 (e.g. apt-get install python3.11 python3.11-venv)" >&2
    exit 1
  fi
  echo "creating .venv with $("$py" -V 2>&1) ..." >&2
  "$py" -m venv .venv
fi
stamp=".venv/.installed-$(basename "$req")"
if [ ! -f "$stamp" ] || [ "$req" -nt "$stamp" ] || [ requirements.txt -nt "$stamp" ]; then
  # The first install downloads Gradio, FastAPI, Pillow, ffmpeg and the rest: about a minute.
  echo "installing $req into .venv (first run: about a minute; later runs skip this) ..." >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$req"
  touch "$stamp"
  echo "installed." >&2
fi
