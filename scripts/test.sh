#!/usr/bin/env bash
# Fresh machine → test results: installs everything plus the test extras, then runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
export PREFECT_SERVER_ANALYTICS_ENABLED=false
# two workers (one per core), a test file per worker at a time: module and session fixtures
# (the examples made end to end, the Prefect test server) are built once per worker
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n "${NOVELCOMIC_TEST_WORKERS:-2}" --dist loadfile --durations=15 "$@"
