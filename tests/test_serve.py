"""``novelcomic serve`` end to end: a real Prefect server on 127.0.0.1 started by our command, the
deployments served, a run started with ``run_deployment`` from here, a real video on disk,
artifacts through the API, and Ctrl-C (SIGINT) stopping the serve loop and the server.

Real offline backends (the served flows run in other processes, which do not see test fakes).
About 45 s.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import yaml

from novelcomic import pipeline
from novelcomic.project import Project
from tests.prefect_fixtures import free_port, python, subprocess_env, tiny_project


def _serve_cmd(port: int) -> list[str]:
    from novelcomic.cli import cli

    if "serve" in cli.commands:
        return python("-m", "novelcomic", "serve", "--port", str(port))
    # Until the command is registered in novelcomic.cli: the same click command, run directly.
    return python("-c", "import sys; from novelcomic.cli.serve_cmds import serve; serve.main(sys.argv[1:], obj={})", "--port", str(port))


def _wait_for_deployment(api: str, proc: subprocess.Popen, log: Path, timeout: float = 150) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            r = httpx.post(f"{api}/deployments/filter", json={}, timeout=2)
            if r.status_code == 200 and len(r.json()) == 6:
                return r.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("the 6 deployments never appeared:\n" + log.read_text()[-3000:])


def test_serve_runs_a_deployment_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    root = tmp_path / "projects"
    root.mkdir()
    project = Project(tiny_project(root, shots=3))
    yaml_before = project.project_yaml.read_text(encoding="utf-8")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    log = tmp_path / "serve.log"
    env = subprocess_env({"PREFECT_HOME": str(tmp_path / "prefect-home"), "NOVELCOMIC_PROJECTS_DIR": str(root)})
    with open(log, "w") as fh:
        proc = subprocess.Popen(_serve_cmd(port), env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        _wait_for_deployment(api, proc, log)
        names = {d["name"] for d in httpx.post(f"{api}/deployments/filter", json={}).json()}
        flows = {f["name"] for f in httpx.post(f"{api}/flows/filter", json={}).json()}
        assert names == {"novelcomic"} and flows == {"produce", "plan", "design", "render", "voice", "compose"}
        limits = httpx.post(f"{api}/concurrency_limits/filter", json={}).json()
        assert [(c["tag"], c["concurrency_limit"]) for c in limits] == [("gpu", 1)]

        from prefect.deployments import run_deployment
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: api}):
            run = run_deployment("produce/novelcomic", parameters={"project": "tiny", "seed": 7}, timeout=240)
        assert run.state is not None and run.state.is_completed(), (run.state, log.read_text()[-3000:])

        video = project.video_path("01")
        assert video.is_file() and video.stat().st_size > 1000
        # The seed override was used for this run and project.yaml was not rewritten.
        assert project.project_yaml.read_text(encoding="utf-8") == yaml_before
        cfg = project.config().model_copy(update={"seed": 7})
        shot = project.store.asset("shot", "01/s01-02")
        assert shot.seed == pipeline.shot_seed(cfg, "01", "s01-02", None)

        arts = httpx.post(f"{api}/artifacts/filter", json={"flow_runs": {"id": {"any_": [str(run.id)]}}}).json()
        by_key = {a["key"]: a for a in arts if a["key"]}
        assert {"tiny-01-storyboard", "tiny-characters", "tiny-01-render", "tiny-01-voice", "tiny-videos"} <= set(by_key)
        assert str(video) in by_key["tiny-videos"]["data"]
        rows = yaml.safe_load(by_key["tiny-01-storyboard"]["data"])
        assert [r["shot"] for r in rows] == ["s01-01", "s01-02", "s01-03"]
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(60)
    assert rc in (0, 130), log.read_text()[-3000:]
    assert "stopping the Prefect server" in log.read_text()
    try:
        httpx.get(f"{api}/health", timeout=2)
        answered = True
    except httpx.HTTPError:
        answered = False
    assert not answered, "the Prefect server outlived `novelcomic serve`"


def test_prefect_yaml_declares_the_served_deployments() -> None:
    from prefect.flows import load_flow_from_entrypoint

    from flows.produce import FLOWS

    repo = Path(__file__).resolve().parents[1]
    spec = yaml.safe_load((repo / "prefect.yaml").read_text(encoding="utf-8"))
    loaded = {}
    for d in spec["deployments"]:
        assert ":" not in d["entrypoint"], "module paths: task workers must see the same task keys"
        flow = load_flow_from_entrypoint(d["entrypoint"])
        assert set(d["parameters"]) <= set(flow.parameters.properties), d["entrypoint"]
        assert d["work_pool"]["name"] == "novelcomic"
        loaded[flow.name] = d["name"]
    assert loaded == {name: "novelcomic" for name in FLOWS}
    from novelcomic.cli.serve_cmds import deployments

    served = {d.entrypoint for d in deployments()}
    assert served == {d["entrypoint"] for d in spec["deployments"]}  # serve and work pools load the flows alike


HANGING_SERVE = """
import sys, time
import prefect
import novelcomic.cli.serve_cmds as serve_cmds

def hang(*deployments, **options):  # a runner that never finishes shutting down
    said = False
    while True:
        try:  # Ctrl-C may come right after the line below: it is inside the try too
            if not said:
                said = True
                print(f"serving {len(deployments)} deployments", flush=True)
            time.sleep(0.05)
        except KeyboardInterrupt:
            print("runner ignores Ctrl-C", flush=True)

prefect.serve = hang
serve_cmds.SHUTDOWN_GRACE = 2.0
from novelcomic.cli import cli
cli.main(["serve", "--no-server", "--gpu-slots", "0"])
"""


def test_ctrl_c_stops_serve_even_when_prefect_hangs_shutting_down(tmp_path: Path) -> None:
    """A full-suite run once saw `serve` ignore Ctrl-C for over a minute after a flow run; a
    deadline now ends it (status 130) when Prefect's runner does not stop in time."""
    env = subprocess_env({"PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": "http://127.0.0.1:9/api",
                          "NOVELCOMIC_PROJECTS_DIR": str(tmp_path)})
    proc = subprocess.Popen(python("-c", HANGING_SERVE), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        while first and not first.startswith("serving"):
            first = proc.stdout.readline()
        assert first.startswith("serving 6 deployments"), first
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = proc.stdout.read()
    assert rc == 130, out
    assert "runner ignores Ctrl-C" in out and "did not stop within 2 s of Ctrl-C" in out, out
