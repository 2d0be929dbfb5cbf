#!/usr/bin/env bash
# Fresh machine → test results: installs everything plus the test extras, then runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
export PREFECT_SERVER_ANALYTICS_ENABLED=false
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 "$@"
