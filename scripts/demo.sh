#!/usr/bin/env bash
# Fresh machine → finished videos: installs everything (system packages when missing, .venv with
# the pinned CPU torch) and runs the bundled Chinese example end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/novelcomic demo "$@"
