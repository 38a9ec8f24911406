#!/usr/bin/env bash
# The web gallery on the demo archive: set up, index data/samples into ./demo-archive (a no-op
# when done before), then serve it on http://127.0.0.1:8765/ until Ctrl-C.
# Extra arguments go to `memes serve` (e.g. --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MEMES_ARCHIVE="${MEMES_ARCHIVE:-$PWD/demo-archive}"
.venv/bin/memes --quiet index data/samples
exec .venv/bin/memes serve "$@"
