#!/usr/bin/env bash
# The test suite on a fresh machine: set up, then run every test (slow ones included), with a
# real Chroma server and a real PostgreSQL server started for it on loopback and stopped after
# (scripts/with-servers.sh): the store and CLI tests run on the embedded default and on them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/with-servers.sh .venv/bin/python -m pytest "$@"
