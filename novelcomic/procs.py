"""Child processes that never outlive a run, and the run's stop signal.

Every external program novelcomic starts (ffmpeg, espeak-ng, the temporary Prefect server) is
started through :func:`popen` / :func:`run`:

- on Linux it gets a *parent-death signal*: when our process dies, even by ``kill -9``, the kernel
  kills the child too (``setpriv --pdeathsig KILL`` when util-linux has it, else ``prctl`` in the
  child before ``exec``), so no ffmpeg or uvicorn is left behind;
- it is tracked while it runs, so :func:`stop` can end all of them at once.

SIGTERM and SIGINT (Ctrl-C) during a command go through :func:`handle_signals`: the first one sets
:data:`STOP`, kills the tracked children (a render or encode waiting on one returns at once) and
raises :class:`Interrupted` in the main thread; the command line then records the run as
cancelled and prints one line. Work in other threads checks :func:`check_stop` before each piece
of work. A second signal exits at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

#: Set once a stop signal arrived: no new piece of work starts.
STOP = threading.Event()

_children: set[subprocess.Popen] = set()
_lock = threading.Lock()
_received: list[int] = []
_SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (``signum``): finished work is kept."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.summary = ""  # what the run had finished, set by the command that was stopped

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _pdeathsig() -> None:  # pragma: no cover - runs in the child, between fork and exec
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _bound(cmd: list[str], kwargs: dict[str, Any]) -> list[str]:
    """``cmd`` made to die with us (see the module docstring)."""
    if not sys.platform.startswith("linux") or "preexec_fn" in kwargs:
        return cmd
    exe = cmd[0]
    # a missing program keeps raising OSError, as without the prefix
    if _SETPRIV and (os.sep in exe and os.access(exe, os.X_OK) or shutil.which(exe)):
        # setpriv arms the signal, then sh checks that we were still its parent at that moment
        # (killed between fork and prctl, we would never send it) before it becomes the program
        guard = f'[ "$PPID" = "{os.getpid()}" ] || exit 1; exec "$0" "$@"'
        return [_SETPRIV, "--pdeathsig", "KILL", "--", "/bin/sh", "-c", guard, *cmd]
    if not _SETPRIV:
        kwargs["preexec_fn"] = _pdeathsig
    return cmd


def popen(cmd: list[str], **kwargs: Any) -> subprocess.Popen:
    """:class:`subprocess.Popen` for a child that dies with us and that :func:`stop` ends."""
    check_stop()
    proc = subprocess.Popen(_bound(list(cmd), kwargs), **kwargs)
    with _lock:
        _children.add(proc)
    return proc


def forget(proc: subprocess.Popen) -> None:
    with _lock:
        _children.discard(proc)


def run(cmd: list[str], *, input: bytes | None = None, timeout: float | None = None,
        capture_output: bool = False, check: bool = False, **kwargs: Any) -> subprocess.CompletedProcess:
    """:func:`subprocess.run` through :func:`popen`: the same arguments and errors."""
    if capture_output:
        kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
    if input is not None:
        kwargs["stdin"] = subprocess.PIPE
    proc = popen(cmd, **kwargs)
    try:
        with proc:
            try:
                out, err = proc.communicate(input, timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                proc.kill()
                exc.stdout, exc.stderr = proc.communicate()
                raise
            except BaseException:
                proc.kill()
                raise
    finally:
        forget(proc)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if check:
        result.check_returncode()
    return result


def stop(grace: float = 1.0) -> int:
    """Ends every tracked child (SIGTERM, then SIGKILL after ``grace`` s); returns how many."""
    with _lock:
        procs = [p for p in _children if p.poll() is None]
    for p in procs:
        with contextlib.suppress(OSError):
            p.terminate()
    for p in procs:
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                p.kill()
    return len(procs)


def is_stop(exc: BaseException) -> bool:
    """Whether ``exc`` is a stop signal's: Ctrl-C, :class:`Interrupted` or Prefect's
    ``TerminationSignal`` (raised by its own SIGTERM handler while a flow runs)."""
    return isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "TerminationSignal"


def as_interrupted(exc: BaseException) -> Interrupted:
    if isinstance(exc, Interrupted):
        return exc
    return Interrupted(getattr(exc, "signal", None) or received() or signal.SIGINT)


def check_stop() -> None:
    """Raises :class:`Interrupted` once a stop signal arrived (called before each piece of work)."""
    if STOP.is_set():
        raise Interrupted(_received[0] if _received else signal.SIGINT)


def received() -> int | None:
    """The first stop signal this process received, if any."""
    return _received[0] if _received else None


def on_signal(signum: int) -> None:
    """What a stop signal does before the exception: stop new work and end the children."""
    _received.append(signum)
    STOP.set()
    stop(grace=0.5)


def _handler(signum: int, frame: object) -> None:
    if STOP.is_set():
        if signum == signal.SIGINT:  # the second Ctrl-C: out now (the children are already ended)
            stop(grace=0.1)
            os._exit(128 + signum)
        # a SIGTERM again: Prefect's flow engine re-sends the one it caught to this handler
        raise Interrupted(signum)
    on_signal(signum)
    raise Interrupted(signum)


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """SIGTERM and SIGINT raise :class:`Interrupted` in the block (main thread only); the previous
    handlers come back after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextlib.contextmanager
def chained_sigterm() -> Iterator[None]:
    """Inside a Prefect flow, whose engine installs its own SIGTERM handler: run :func:`on_signal`
    first (end the children, stop new tasks), then Prefect's handler, which marks the flow run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    prefect_handler = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: object) -> None:
        if not STOP.is_set():
            on_signal(signum)
        if callable(prefect_handler):
            prefect_handler(signum, frame)
        raise Interrupted(signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            if signal.getsignal(signal.SIGTERM) is handler:
                signal.signal(signal.SIGTERM, prefect_handler)


def exit_within(seconds: float, code: int) -> None:
    """Exit with ``code`` no later than ``seconds`` from now, even if a worker thread (a render
    still in its model call, Prefect's event flush to a dead API) would hold the interpreter."""
    def cut() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    t = threading.Timer(seconds, cut)
    t.daemon = True
    t.start()


#: Set by the ``novelcomic`` command itself (not by Python code calling the CLI's ``main`` with
#: arguments, as tests do): only then may a dead service end the process at once.
COMMAND_PROCESS = False


def exit_now(code: int) -> None:
    """End the process with ``code`` now when it is the ``novelcomic`` command; else (Python
    calling the CLI) stop the run the usual way, from the main thread."""
    if COMMAND_PROCESS:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    import _thread

    _thread.interrupt_main()


def reset() -> None:
    """Forget a stop signal (tests that interrupt in-process)."""
    STOP.clear()
    _received.clear()
