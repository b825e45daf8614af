#!/usr/bin/env bash
# Runs every test: installs the Python deps into .venv and Debian's chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh requirements-dev.txt
if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium fonts-dejavu-core
fi
export GRADIO_ANALYTICS_ENABLED=False
exec .venv/bin/python -m pytest -q "$@"
