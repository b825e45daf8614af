#!/usr/bin/env bash
# Runs the prompt lab. Without APIYI_API_KEY it uses the embedded simulator (offline).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh requirements.txt
exec .venv/bin/python app.py "$@"
