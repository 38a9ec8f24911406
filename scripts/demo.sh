#!/usr/bin/env bash
# The main job on the bundled sample data: set up, index data/samples into ./demo-archive,
# then search it. Extra arguments replace the demo query.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MEMES_ARCHIVE="${MEMES_ARCHIVE:-$PWD/demo-archive}"
.venv/bin/memes index data/samples
query="${*:-llama mistral chart}"
echo "\$ memes search \"$query\"" >&2
.venv/bin/memes search "$query" -k 5
