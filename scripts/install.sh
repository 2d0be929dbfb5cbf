#!/usr/bin/env bash
# Installs what novelcomic needs on a fresh Debian machine: system packages (when missing),
# a virtual environment in .venv with torch pinned to the CPU wheel, and the package itself.
# Usage: scripts/install.sh [--test]    (--test adds the test extras)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${NOVELCOMIC_VENV:-.venv}
PY=${PYTHON:-python3}

need_apt=()
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
command -v ffprobe >/dev/null 2>&1 || need_apt+=(ffmpeg)
fc-list 2>/dev/null | grep -qi "wenquanyi\|wqy" || need_apt+=(fonts-wqy-microhei)
if [ ${#need_apt[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing system packages: ${need_apt[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  else
    echo "warning: please install ${need_apt[*]} (novelcomic falls back to silent audio / bundled fonts without them)" >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch first and pinned: a bare torch requirement would pull several GB of CUDA packages.
"$VENV/bin/python" -m pip install -q -c constraints.txt "torch==2.13.0"
extras="."
if [ "${1:-}" = "--test" ]; then extras=".[test]"; fi
"$VENV/bin/python" -m pip install -q -c constraints.txt -e "$extras"
