#!/usr/bin/env bash
# The test suite on a fresh machine: set up, then run every test (slow ones included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest "$@"
