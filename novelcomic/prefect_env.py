"""Settings for running flows in Prefect's ephemeral mode (no server to start).

Called by the CLI right before it imports Prefect, never at import time of novelcomic. A user who
set ``PREFECT_API_URL`` (a real server) or ``PREFECT_HOME`` keeps their settings.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "novelcomic"


def configure_prefect() -> None:
    os.environ.setdefault("PREFECT_HOME", str(data_dir() / "prefect"))
    # Prefect creates its home without parents and then fails to open its database.
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
    # Analytics on made a telemetry insert fail with "database is locked" on first runs here,
    # and there is no network to send it to anyway.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_LOG_PRINTS", "true")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


class _CompletedTaskRuns(logging.Filter):
    """Drops the "Finished in state Completed()" line Prefect logs for every task run (one per
    shot and per line: dozens a chapter, nothing to act on). Failures, retries, warnings and the
    stages' own summaries still show; the Prefect UI keeps every task's state."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno <= logging.INFO and record.getMessage().startswith("Finished in state Completed"))


@contextmanager
def quiet_task_runs(enabled: bool = True) -> Iterator[None]:
    """While the block runs (and ``enabled``), leave out Prefect's per-task "Completed" lines."""
    logger = logging.getLogger("prefect.task_runs")
    quiet = _CompletedTaskRuns()
    if enabled:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)
