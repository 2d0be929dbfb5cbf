"""Commands for production on Prefect: ``serve`` (a local server and the deployments) and
``worker`` (a task worker that renders shots and speaks lines for runs started elsewhere)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import click

from novelcomic import procs
from novelcomic.errors import NovelcomicError

DEPLOYMENT = "novelcomic"
#: Seconds Prefect's runner gets to shut down after Ctrl-C before `serve` stops without it.
SHUTDOWN_GRACE = 20.0


@dataclass
class PrefectServer:
    """``prefect server start`` as a child process, bound to ``host``:``port``."""

    host: str = "127.0.0.1"
    port: int = 4200
    env: dict[str, str] = field(default_factory=dict)
    startup_timeout: float = 120.0
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    def start(self) -> "PrefectServer":
        env = {**os.environ, **self.env}
        env.pop("PREFECT_API_URL", None)
        env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        # The UI asks the API at PREFECT_UI_API_URL, which defaults to port 4200 whatever --port says.
        env["PREFECT_UI_API_URL"] = self.api_url
        env["PREFECT_SERVER_API_HOST"], env["PREFECT_SERVER_API_PORT"] = self.host, str(self.port)
        home = Path(env.get("PREFECT_HOME", Path.home() / ".prefect")).expanduser()
        home.mkdir(parents=True, exist_ok=True)
        self.log_path = home / f"server-{self.port}.log"
        cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", self.host, "--port", str(self.port)]
        with open(self.log_path, "w") as log:  # a pipe nobody reads would fill up and stall the server
            # its own session: Ctrl-C at the terminal reaches serve only, which pauses the deployments
            # against a live server and then stops it (sharing the signal, the server died under the
            # runner's shutdown calls, which then hung until the deadline)
            # dies with `serve` even after kill -9 (parent-death signal); stopped by serve itself otherwise
            self.proc = procs.popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            procs.forget(self.proc)
        self.wait_healthy()
        return self

    def wait_healthy(self) -> None:
        import httpx

        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                out = self.log_path.read_text(errors="replace")
                raise NovelcomicError(f"the Prefect server exited with status {self.proc.returncode}: {out[-2000:]}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise NovelcomicError(f"the Prefect server did not answer on {self.api_url}/health within {self.startup_timeout:.0f} s")

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def bounded_ctrl_c(grace: float, cleanup: Callable[[], None]) -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt in the block as usual; if the block has not finished
    ``grace`` seconds later (Prefect's runner can hang while it shuts down, rarely), ``cleanup``
    runs and the process exits with status 130, so Ctrl-C always stops ``serve`` and its server.
    A second Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    finished = threading.Event()

    def cut_short() -> None:
        if finished.wait(grace):
            return
        click.echo(f"Prefect did not stop within {grace:.0f} s of Ctrl-C: stopping without it", err=True)
        try:
            cleanup()
        finally:
            os._exit(130)

    def on_interrupt(signum: int, frame: object) -> None:
        threading.Thread(target=cut_short, name="ctrl-c-deadline", daemon=True).start()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        finished.set()
        signal.signal(signal.SIGINT, previous)


def ensure_gpu_limit(slots: int) -> None:
    """Create (or resize) the ``gpu`` tag concurrency limit: at most ``slots`` GPU tasks at once."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.create_concurrency_limit(tag="gpu", concurrency_limit=slots)


def deployments() -> list:
    """One deployment per flow, named ``<flow>/novelcomic``. Entrypoints are module paths
    (``flows.produce.produce``), not file paths: a run then imports the flows as the package a task
    worker imports, so distributed tasks get the keys the workers listen for, wherever serve was
    started from (a file path made them ``produce.…`` tasks no worker could import)."""
    from prefect.deployments.runner import EntrypointType

    from flows.produce import FLOWS

    return [f.to_deployment(name=DEPLOYMENT, tags=["novelcomic"], entrypoint_type=EntrypointType.MODULE_PATH,
                            description=(f.__doc__ or "").strip().splitlines()[0] if f.__doc__ else None)
            for f in FLOWS.values()]


def _repo_on_path() -> None:
    """The flows live in the repository's ``flows/`` package beside ``novelcomic``."""
    repo = str(Path(__file__).resolve().parents[2])
    if repo not in sys.path:
        sys.path.insert(0, repo)
    os.environ["PYTHONPATH"] = repo + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the local Prefect server binds to.")
@click.option("--port", default=4200, show_default=True, type=int, help="Port of the local Prefect server.")
@click.option("--no-server", is_flag=True, help="Do not start a server: use PREFECT_API_URL (or Prefect's own settings).")
@click.option("--gpu-slots", default=1, show_default=True, type=int,
              help="Tasks tagged 'gpu' (design, render) that may run at once; 0 leaves the limit alone.")
@click.pass_obj
def serve(obj: dict, host: str, port: int, no_server: bool, gpu_slots: int) -> None:
    """Start a local Prefect server (unless PREFECT_API_URL is set) and serve the novelcomic
    deployments: produce, plan, design, render, voice, compose. Ctrl-C stops both."""
    from novelcomic.prefect_env import configure_prefect
    from novelcomic.project import projects_root

    configure_prefect()
    os.environ["NOVELCOMIC_PROJECTS_DIR"] = str(projects_root((obj or {}).get("root")).resolve())
    _repo_on_path()
    server = None
    if not os.environ.get("PREFECT_API_URL") and not no_server:
        server = PrefectServer(host, port)
        click.echo(f"starting the Prefect server on http://{host}:{port} …")
        server.start()
        os.environ["PREFECT_API_URL"] = server.api_url
    try:
        if gpu_slots > 0:
            ensure_gpu_limit(gpu_slots)
        from prefect import serve as prefect_serve

        ui = os.environ["PREFECT_API_URL"].removesuffix("/api")
        click.echo(f"Prefect UI: {ui}  (projects from {os.environ['NOVELCOMIC_PROJECTS_DIR']}); Ctrl-C stops")
        with bounded_ctrl_c(SHUTDOWN_GRACE, lambda: _stop(server)):
            prefect_serve(*deployments())
    except KeyboardInterrupt:
        pass
    finally:
        _stop(server)


def _stop(server: PrefectServer | None) -> None:
    if server is not None and server.proc is not None and server.proc.poll() is None:
        click.echo("stopping the Prefect server …")
        server.stop()


@click.command("worker")
@click.option("--limit", default=1, show_default=True, type=int, help="Tasks this worker runs at once.")
def worker(limit: int) -> None:
    """A task worker for distributed runs (produce/render/voice with distributed=true): renders
    shots and speaks lines. Needs PREFECT_API_URL and the project directories at the same paths."""
    from novelcomic.prefect_env import configure_prefect

    if not os.environ.get("PREFECT_API_URL"):
        raise NovelcomicError("set PREFECT_API_URL to the Prefect server the runs are on (e.g. http://host:4200/api)")
    configure_prefect()
    _repo_on_path()
    from prefect.task_worker import serve as serve_tasks

    from flows.produce import animate_shot_task, render_shot_task, voice_shot_task

    click.echo(f"task worker for render-shot, voice-shot and animate-shot on {os.environ['PREFECT_API_URL']}; Ctrl-C stops")
    try:
        serve_tasks(render_shot_task, voice_shot_task, animate_shot_task, limit=limit)
    except KeyboardInterrupt:
        pass


COMMANDS = [serve, worker]
