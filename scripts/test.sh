#!/usr/bin/env bash
# Runs every test: installs the Python deps into .venv and Debian's chromium for the browser tests, and
# starts a throwaway PostgreSQL cluster (Debian's postgresql, installed when missing) for the journal's
# PostgreSQL half, removed at exit. LAB_TEST_DATABASE_URL set beforehand names a server to use instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh requirements-dev.txt
if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium fonts-dejavu-core
fi
if [ -z "${LAB_TEST_DATABASE_URL:-}" ]; then
  pg_dir="$(mktemp -d /tmp/lab-pg-XXXXXX)"
  trap 'bash scripts/pg_cluster.sh stop "$pg_dir"' EXIT
  LAB_TEST_DATABASE_URL="$(bash scripts/pg_cluster.sh start "$pg_dir")"
  export LAB_TEST_DATABASE_URL
fi
export GRADIO_ANALYTICS_ENABLED=False
# Where the environment sets PYTHONDONTWRITEBYTECODE (this project's machines do), every CLI and app.py
# process a test starts, about a hundred, compiled the lab again: 0.23 s of CPU each. Cached, as elsewhere.
unset PYTHONDONTWRITEBYTECODE
# Test files run in parallel, each file whole on one worker (its module fixtures start once). Three workers
# keep both cores busy for the whole run (measured 95-100 %); a fourth only added contention (375 s vs 341 s).
# The slowest tests are listed at the end of every run.
.venv/bin/python -m pytest -q -n "${LAB_TEST_WORKERS:-3}" --dist loadfile --no-loadscope-reorder --durations=15 "$@"
