#!/usr/bin/env bash
# Creates .venv and installs the given requirements file into it (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
req="${1:-requirements.txt}"
py="$(command -v python3.11 || command -v python3)"
[ -x .venv/bin/python ] || "$py" -m venv .venv
stamp=".venv/.installed-$(basename "$req")"
if [ ! -f "$stamp" ] || [ "$req" -nt "$stamp" ] || [ requirements.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$req"
  touch "$stamp"
fi
