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
    """Drops the "Finished in state Completed()" / "Cached(...)" line Prefect logs for every task
    run (one per shot and per line: dozens a chapter, nothing to act on). Failures, retries,
    warnings and the stages' own summaries still show; the Prefect UI keeps every task's state."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return not (message.startswith("Finished in state Completed") or message.startswith("Finished in state Cached"))


def _user_error(record: logging.LogRecord) -> bool:
    """A record about a :class:`NovelcomicError`: bad input the command line reports in one line."""
    from novelcomic.errors import NovelcomicError

    if record.exc_info and isinstance(record.exc_info[1], NovelcomicError):
        return True
    message = record.getMessage()
    if not message.startswith("Finished in state Failed("):
        return False
    names, todo = set(), [NovelcomicError]
    while todo:  # the class and every subclass (BackendError, ProjectLockedError, …)
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return any(f"{name}:" in message or f"{name}(" in message for name in names)


class _UserErrorsOnConsole(logging.Filter):
    """On the terminal, leaves out Prefect's traceback (and its "Finished in state Failed" echo)
    for a :class:`NovelcomicError`: the command line prints that error as one line. Attached to
    the console handlers only, after the flow/task-run API handlers have sent the record, so the
    Prefect UI still has the full traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _user_error(record)


@contextmanager
def quiet_task_runs(enabled: bool = True) -> Iterator[None]:
    """While the block runs (and ``enabled``), leave out Prefect's per-task "Completed" lines and,
    on the console, the tracebacks of user errors (see :class:`_UserErrorsOnConsole`)."""
    logger = logging.getLogger("prefect.task_runs")
    quiet = _CompletedTaskRuns()
    console = _UserErrorsOnConsole()
    handlers = [h for h in logging.getLogger().handlers
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
    if enabled:
        logger.addFilter(quiet)
        for h in handlers:
            h.addFilter(console)
    try:
        yield
    finally:
        logger.removeFilter(quiet)
        for h in handlers:
            h.removeFilter(console)
