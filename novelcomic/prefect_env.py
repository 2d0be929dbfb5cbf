"""Settings for running flows in Prefect's ephemeral mode (no server to start).

Called by the CLI right before it imports Prefect, never at import time of novelcomic. A user who
set ``PREFECT_API_URL`` (a real server) or ``PREFECT_HOME`` keeps their settings.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
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
    # an API that went away mid-run: a few seconds of retries, not minutes, before one line
    os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "2")
    os.environ.setdefault("PREFECT_API_REQUEST_TIMEOUT", "30")


class _CompletedTaskRuns(logging.Filter):
    """Drops the "Finished in state Completed()" / "Cached(...)" line Prefect logs for every task
    run (one per shot and per line: dozens a chapter, nothing to act on), and after a stop signal
    the two "Crashed … interrupt signal" lines of every task it cut short. Failures, retries,
    warnings and the stages' own summaries still show; the Prefect UI keeps every task's state."""

    def filter(self, record: logging.LogRecord) -> bool:
        from novelcomic import procs

        message = record.getMessage()
        if procs.STOP.is_set() and ("interrupt signal" in message or "cancelled by the task runner" in message):
            return False  # a stop signal: every running task's "Crashed" pair would say the same
        if record.levelno > logging.INFO:
            return True
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


# --------------------------------------------------------------------------- the API a run talks to

#: Seconds a configured Prefect API gets to answer ``/health`` before a run is refused.
HEALTH_TIMEOUT = 5.0


class TemporaryServer:
    """The local Prefect API of a ``novelcomic run`` when no ``PREFECT_API_URL`` is set: what
    Prefect's ephemeral mode starts, but owned by us, so that

    - it is in its own session: Ctrl-C at the terminal reaches the run, which marks its flow run
      cancelled against a live API and then stops the server (sharing the signal, the server died
      first and the run spent minutes retrying to send it events);
    - it dies with the run even after ``kill -9`` (:mod:`novelcomic.procs`' parent-death signal);
    - its port, log and process are known, and it is stopped when the run ends.
    """

    def __init__(self, startup_timeout: float | None = None) -> None:
        self.startup_timeout = startup_timeout or float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"))
        self.proc: "subprocess.Popen | None" = None
        self.port = 0
        self.log_path: Path | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> "TemporaryServer":
        import subprocess
        import sys
        import time

        import httpx

        from novelcomic import procs
        from novelcomic.errors import NovelcomicError

        home = Path(os.environ.get("PREFECT_HOME", data_dir() / "prefect")).expanduser()
        home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env.update({"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"})
        deadline = time.monotonic() + self.startup_timeout
        for _attempt in range(5):
            self.port = _free_port()
            self.log_path = home / "temporary-server.log"
            cmd = [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
                   "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error", "--lifespan", "on"]
            with open(self.log_path, "w") as log:  # a pipe nobody reads would fill up and stall it
                self.proc = procs.popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
            procs.forget(self.proc)  # not ended with ffmpeg on a signal: the run still reports to it
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            if self.proc.poll() == 3:  # uvicorn: the port was taken meanwhile
                continue
            break
        tail = self.log_path.read_text(errors="replace").strip().splitlines()[-1:] if self.log_path else []
        self.stop()
        raise NovelcomicError(
            f"the temporary Prefect server did not start within {self.startup_timeout:.0f} s"
            + (f": {tail[0]}" if tail else "") + " (run with --no-prefect, or set PREFECT_API_URL to a running server)"
        )

    def stop(self, grace: float = 3.0) -> None:
        import subprocess

        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_api(url: str, timeout: float = HEALTH_TIMEOUT) -> None:
    """Refuse a run, in one line naming ``url``, when the Prefect API there does not answer its
    health check within ``timeout`` seconds (closed port, a server that accepts and never
    answers, a proxy's error page)."""
    import httpx

    from novelcomic.errors import NovelcomicError

    hint = "start it, unset PREFECT_API_URL for a temporary local server, or run with --no-prefect"
    try:
        r = httpx.get(url.rstrip("/") + "/health", timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)))
    except httpx.TimeoutException:
        raise NovelcomicError(f"the Prefect API at {url} did not answer within {timeout:.0f} s: {hint}") from None
    except httpx.HTTPError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NovelcomicError(f"cannot reach the Prefect API at {url} ({reason}): {hint}") from None
    if r.status_code != 200:
        raise NovelcomicError(f"the Prefect API at {url} answered {r.status_code} to /health: {hint}")


@contextmanager
def prefect_api() -> Iterator[str]:
    """The Prefect API for a run, for the duration of the block: the configured one (checked with
    :func:`check_api` first), else a :class:`TemporaryServer` stopped when the block ends."""
    import prefect.context
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    configured = get_current_settings().api.url  # the environment, or the active Prefect profile
    if configured:
        check_api(configured)
        yield configured
        return
    server = TemporaryServer().start()
    try:
        # the same switch prefect_test_harness makes: this context, and the process-wide settings
        # that threads Prefect starts later (events, logs) read
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            with prefect.context._temporary_global_settings_context(prefect.context.get_settings_context()):
                try:
                    yield server.api_url
                finally:
                    _drain_to_api()  # the run's last logs and events reach the server before it stops
    finally:
        server.stop()


def _drain_to_api(timeout: float = 5.0) -> None:
    """Send what Prefect still holds for the API (logs, events), waiting at most ``timeout`` s each."""
    import contextlib

    with contextlib.suppress(Exception):
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=timeout)
    with contextlib.suppress(Exception):
        from prefect.events.worker import EventsWorker

        EventsWorker.drain_all(timeout=timeout)


@contextmanager
def api_watchdog(url: str, on_lost: "Callable[[str], None]", interval: float = 2.0) -> Iterator[None]:
    """While the block runs, check the Prefect API's ``/health`` every ``interval`` seconds; when
    it is gone (refused twice in a row, or silent three times), call ``on_lost(reason)`` from the
    watching thread. Prefect itself would retry every state change and every event for minutes,
    logging each."""
    import threading

    import httpx

    done = threading.Event()

    def watch() -> None:
        refused = silent = 0
        with httpx.Client(timeout=httpx.Timeout(5.0, connect=3.0)) as client:
            while not done.wait(interval):
                try:
                    client.get(url.rstrip("/") + "/health")
                    refused = silent = 0
                    continue
                except httpx.TimeoutException:
                    silent += 1
                    reason = f"no answer within 5 s, {silent} times"
                except httpx.HTTPError as exc:
                    refused += 1
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if (refused >= 2 or silent >= 3) and not done.is_set():
                    on_lost(reason)
                    return

    thread = threading.Thread(target=watch, name="prefect-api-watchdog", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
