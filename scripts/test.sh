#!/usr/bin/env bash
# The test suite on a fresh machine: set up, then run every test (slow ones included), with a
# real Chroma server and a real PostgreSQL server started for it on loopback and stopped after
# (scripts/with-servers.sh): the store and CLI tests run on the embedded default and on them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# two workers, a test file each at a time (its module fixtures made once): 22 minutes here where
# one worker took 33; MEMES_TEST_WORKERS=0 runs them in this process
workers="${MEMES_TEST_WORKERS:-2}"
if [ "$workers" = "0" ]; then
    bash scripts/with-servers.sh .venv/bin/python -m pytest "$@"
else
    bash scripts/with-servers.sh .venv/bin/python -m pytest -n "$workers" --dist loadfile "$@"
fi
