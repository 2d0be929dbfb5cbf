"""Runs stopped by SIGTERM, SIGKILL and a terminal's Ctrl-C (SIGINT to the process group), at
render, voice and compose, in ``--no-prefect`` mode and in Prefect mode (against a real Prefect
server, and with the temporary server a run starts itself). Real processes throughout.

Each test is one sequence of runs on one project: every run is stopped at some stage, and the
next run is the resume check of the one before it. After every stop:

- the process is gone within 10 s;
- no file is truncated (every recorded output matches its hash and decodes); only SIGKILL may
  leave ``.part`` files, and the next run sweeps them;
- no process of the run is left (ffmpeg, espeak-ng, the temporary Prefect server): found by a
  marker in their environment;
- the run is recorded ``cancelled`` (SIGTERM/SIGINT) or, after SIGKILL, ``interrupted`` once
  the next run starts; in Prefect its flow run is Cancelled when the API is up;
- the next run redoes nothing that was finished (asset versions and file mtimes).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
import wave
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image

from novelcomic.ffmpeg import ffmpeg_exe
from novelcomic.fsutil import sha256_file
from novelcomic.project import Project
from tests.helpers import ffprobe
from tests.prefect_fixtures import REPO, subprocess_env, tiny_project

EXIT_LIMIT = 10.0


@dataclass
class Stop:
    stage: str
    sig: signal.Signals
    group: bool = False  # to the whole process group, as a terminal's Ctrl-C


def _wrapper(path: Path, delay: float, target: str) -> str:
    """An executable that waits ``delay`` s and then becomes ``target`` (one process throughout)."""
    path.write_text(f"#!{sys.executable}\nimport os, sys, time\ntime.sleep({delay})\n"
                    f"os.execv({target!r}, [{target!r}, *sys.argv[1:]])\n")
    path.chmod(0o755)
    return str(path)


def _project(root: Path) -> Project:
    d = tiny_project(root, shots=8, render="slow")
    p = Project(d)
    tools = d / "tools"
    tools.mkdir()
    cfg = p.config()
    espeak = _wrapper(tools / "slow-espeak", 0.4, subprocess.run(["which", "espeak-ng"], capture_output=True, text=True).stdout.strip())
    cfg.stages.voice.backend = "espeak"
    cfg.stages.voice.options = {"binary": espeak}
    p.save_config(cfg)
    _wrapper(tools / "slow-ffmpeg", 0.4, ffmpeg_exe())
    p.close()
    return p


def _survivors(marker: str) -> list[str]:
    """Processes whose environment carries ``marker`` (ours and every child of ours)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            if marker.encode() in Path(f"/proc/{pid}/environ").read_bytes():
                found.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120])
        except OSError:
            continue
    return found


def _finished(p: Project) -> dict[tuple[str, str], tuple[int, float]]:
    """Every recorded output whose file is intact: (kind, key) -> (version, mtime)."""
    out = {}
    for a in p.store.assets():
        f = p.dir / a.path
        if a.kind in ("sheet", "shot", "audio", "video") and f.is_file() and sha256_file(f) == a.content_hash:
            out[(a.kind, a.key)] = (a.version, f.stat().st_mtime)
    return out


def _check_no_truncated(p: Project) -> None:
    for a in p.store.assets():
        f = p.dir / a.path
        assert f.is_file() and sha256_file(f) == a.content_hash, f"{a.kind} {a.key}: the recorded file is not intact"
    for png in p.dir.glob("shots/**/*.png"):
        if ".part" not in png.name:
            Image.open(png).load()
    for wav in p.dir.glob("audio/**/*.wav"):
        if ".part" not in wav.name:
            with wave.open(str(wav)) as w:
                assert w.getnframes() > 0
    video = p.video_path("01")
    if video.exists():
        assert float(ffprobe(video)["format"]["duration"]) > 0


def _stage_running(p: Project, stage: str, since: int) -> bool:
    runs = p.store.runs()
    if not runs or runs[-1].id <= since:
        return False
    rows = {(r.stage, r.chapter): r.status for r in p.store.stage_statuses()}
    if rows.get((stage, "01")) != "running":
        return False
    if stage == "compose":
        return True
    kind = "shot" if stage == "render" else "audio"
    started = runs[-1].started_at
    return any(a.created_at.replace(tzinfo=None) >= started.replace(tzinfo=None) for a in p.store.assets(kind))


def _latest_flow_run_state(api: str) -> str:
    r = httpx.post(f"{api}/flow_runs/filter", json={"sort": "START_TIME_DESC", "limit": 1}, timeout=10)
    r.raise_for_status()
    return r.json()[0]["state"]["type"]


def _run_sequence(root: Path, stops: list[Stop], mode: str, extra_env: dict[str, str]) -> None:
    p = _project(root)
    marker = f"NOVELCOMIC_TEST_MARK={uuid.uuid4().hex}"
    key, value = marker.split("=")
    env = subprocess_env({**extra_env, "NOVELCOMIC_PROJECTS_DIR": str(root), key: value,
                          "NOVELCOMIC_TEST_RENDER_DELAY": "0.7"})
    args = [sys.executable, "-m", "tests.prefect_fixtures", "run", "tiny"] + (["--no-prefect"] if mode == "no-prefect" else [])
    for stop in stops:
        before = _finished(p)
        last_run = p.store.runs()[-1].id if p.store.runs() else 0
        run_env = dict(env)
        if stop.stage == "compose":
            run_env["NOVELCOMIC_FFMPEG"] = str(p.dir / "tools" / "slow-ffmpeg")
        log = root / f"run-{stop.stage}-{stop.sig.name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(args, env=run_env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while not _stage_running(p, stop.stage, last_run):
                assert proc.poll() is None, f"the run ended before {stop.stage}: {log.read_text()[-1500:]}"
                assert time.monotonic() < deadline, f"the run never reached {stop.stage}"
                time.sleep(0.05)
            t0 = time.monotonic()
            if stop.group:
                os.killpg(proc.pid, stop.sig)
            else:
                proc.send_signal(stop.sig)
            try:
                code = proc.wait(EXIT_LIMIT + 5)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{stop.sig.name} at {stop.stage}: still running after {EXIT_LIMIT + 5:.0f} s")
            took = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        text = log.read_text(errors="replace")
        what = f"{mode}: {stop.sig.name} at {stop.stage}"
        assert took <= EXIT_LIMIT, f"{what}: exit took {took:.1f} s"
        time.sleep(0.3)  # the kernel delivers the parent-death signal
        assert _survivors(value) == [], f"{what}: processes left: {_survivors(value)}"
        assert "Traceback" not in text, f"{what}: {text[-2000:]}"
        if stop.sig == signal.SIGKILL:
            assert code == -signal.SIGKILL
        else:
            assert code == 128 + stop.sig, f"{what}: exit status {code}\n{text[-1500:]}"
            assert f"stopped by {stop.sig.name}" in text and "run the same command again to resume" in text, text[-1500:]
            assert p.store.runs()[-1].status == "cancelled"
            assert not [f for f in p.dir.rglob("*") if ".part" in f.name], f"{what}: temporary files left"
            if "PREFECT_API_URL" in extra_env:
                assert _latest_flow_run_state(extra_env["PREFECT_API_URL"]) == "CANCELLED"
        _check_no_truncated(p)
        after = _finished(p)
        for k, (version, mtime) in before.items():
            assert after.get(k) == (version, mtime), f"{what}: {k} finished before this run was made again"

    # the last run finishes the chapter and redoes nothing finished
    before = _finished(p)
    r = subprocess.run(args[:-1] + ["tiny", "--no-prefect"] if mode != "no-prefect" else args, env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "interrupted" in {run.status for run in p.store.runs()} or all(s.sig != signal.SIGKILL for s in stops)
    after = _finished(p)
    for k, (version, mtime) in before.items():
        assert after.get(k) == (version, mtime), f"{k} finished before the last run was made again"
    assert p.video_path("01").is_file() and not [f for f in p.dir.rglob("*") if ".part" in f.name]
    assert _survivors(value) == []
    if "PREFECT_API_URL" in extra_env:  # no flow run of this project is left "Running" in Prefect, killed ones included
        r = httpx.post(f"{extra_env['PREFECT_API_URL']}/flow_runs/filter", json={"sort": "START_TIME_DESC", "limit": 50}, timeout=10)
        ours = [fr for fr in r.json() if fr["parameters"].get("project") == str(p.dir)]
        assert len(ours) == len(stops)
        assert {fr["state"]["type"] for fr in ours} <= {"CANCELLED", "CRASHED"}, [fr["state"]["type"] for fr in ours]


def test_stops_without_prefect(tmp_path: Path) -> None:
    _run_sequence(tmp_path, [
        Stop("render", signal.SIGTERM), Stop("render", signal.SIGKILL),
        Stop("voice", signal.SIGTERM), Stop("voice", signal.SIGINT, group=True), Stop("voice", signal.SIGKILL),
        Stop("compose", signal.SIGTERM), Stop("compose", signal.SIGKILL),
    ], "no-prefect", {})


def test_stops_in_prefect_mode_against_a_server(tmp_path: Path, prefect_server: dict[str, str]) -> None:
    # with the temporary-server sequence below: SIGTERM and SIGKILL at render, voice and compose,
    # and a terminal's Ctrl-C, in Prefect mode too
    _run_sequence(tmp_path, [
        Stop("render", signal.SIGTERM), Stop("render", signal.SIGKILL), Stop("voice", signal.SIGTERM),
        Stop("voice", signal.SIGKILL), Stop("compose", signal.SIGINT, group=True), Stop("compose", signal.SIGTERM),
    ], "prefect", prefect_server)


def test_stops_in_prefect_mode_with_its_temporary_server(tmp_path: Path) -> None:
    """No PREFECT_API_URL: the run starts its own server, which must not outlive it, even after kill -9."""
    home = tmp_path / "prefect-home"
    _run_sequence(tmp_path, [Stop("render", signal.SIGINT, group=True), Stop("compose", signal.SIGKILL)], "prefect",
                  {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})


@pytest.mark.parametrize("kind", ["closed port", "silent server"])
def test_a_dead_or_silent_prefect_api_refuses_the_run_in_one_line(tmp_path: Path, kind: str) -> None:
    import socket
    import threading

    root = tmp_path / "projects"
    root.mkdir()
    p = Project(tiny_project(root))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    accepted: list[socket.socket] = []
    if kind == "silent server":  # accepts every connection and never answers
        sock.listen(16)
        threading.Thread(target=lambda: [accepted.append(sock.accept()[0]) for _ in range(16)], daemon=True).start()
    else:
        sock.close()
    url = f"http://127.0.0.1:{port}/api"
    env = subprocess_env({"NOVELCOMIC_PROJECTS_DIR": str(root), "PREFECT_API_URL": url})
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "novelcomic", "run", "tiny"], env=env, cwd=REPO, capture_output=True,
                       text=True, timeout=120)
    took = time.monotonic() - t0
    sock.close()
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert url in lines[0] and lines[0].startswith("error:"), lines[0]
    assert took < 20, f"{kind}: refused after {took:.0f} s"
    assert p.store.runs() == [], "a refused run is not recorded as a failed run"
    assert not p.video_path("01").exists()


@pytest.mark.parametrize("mode", ["no-prefect", "prefect"])
def test_a_storyboard_edited_during_a_run_is_made_whole_then_picked_up_next_run(
    tmp_path: Path, mode: str, prefect_server: dict[str, str]
) -> None:
    """The picture, the audio and the subtitles of a chapter all come from one version of its
    storyboard: the one the run started with. The edit is made by the next run."""
    from tests.helpers import parse_srt

    root = tmp_path / "projects"
    root.mkdir()
    p = Project(tiny_project(root, shots=4, render="slow"))
    env = subprocess_env({**(prefect_server if mode == "prefect" else {}), "NOVELCOMIC_PROJECTS_DIR": str(root),
                          "NOVELCOMIC_TEST_RENDER_DELAY": "0.5"})
    args = [sys.executable, "-m", "tests.prefect_fixtures", "run", "tiny"] + (["--no-prefect"] if mode == "no-prefect" else [])
    proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not _stage_running(p, "render", 0):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() is not None else ""
        time.sleep(0.05)
    board = p.storyboard_path("01")
    board.write_text(board.read_text(encoding="utf-8").replace("第4句。", "改过的第四句。"), encoding="utf-8")
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-2000:]
    assert "was edited during the run" in out, out[-2000:]
    texts = [c.text for c in parse_srt(p.dir / "out" / "01.srt")]
    assert any("第4句" in t for t in texts) and not any("改过" in t for t in texts), texts
    assert not (p.state_dir / "frozen").exists()
    shot4 = (p.store.asset("shot", "01/s01-04").version, p.store.asset("shot", "01/s01-01").version)

    r = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    texts = [c.text for c in parse_srt(p.dir / "out" / "01.srt")]
    assert any("改过的第四句" in t for t in texts), texts
    assert p.store.asset("shot", "01/s01-04").version == shot4[0] + 1  # the edited shot (its lettering) drawn again
    assert p.store.asset("shot", "01/s01-01").version == shot4[1]  # the others untouched


class _Proxy:
    """A TCP forwarder to the test Prefect server; :meth:`kill` makes the API vanish (refused
    connections, dropped sockets) as a crashed server does, without touching the shared server."""

    def __init__(self, target_port: int) -> None:
        import socket
        import threading

        self.target = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.alive = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while self.alive:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: "socket.socket", b: "socket.socket") -> None:  # noqa: F821
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def kill(self) -> None:
        import socket

        self.alive = False
        self.sock.close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass


def test_a_prefect_api_lost_mid_run_ends_it_in_seconds_with_one_line(tmp_path: Path, prefect_server: dict[str, str]) -> None:
    from urllib.parse import urlparse

    root = tmp_path / "projects"
    root.mkdir()
    p = Project(tiny_project(root, shots=8, render="slow"))
    proxy = _Proxy(urlparse(prefect_server["PREFECT_API_URL"]).port)
    url = f"http://127.0.0.1:{proxy.port}/api"
    env = subprocess_env({**prefect_server, "PREFECT_API_URL": url, "NOVELCOMIC_PROJECTS_DIR": str(root),
                          "NOVELCOMIC_TEST_RENDER_DELAY": "0.7"})
    proc = subprocess.Popen([sys.executable, "-m", "tests.prefect_fixtures", "run", "tiny"], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not _stage_running(p, "render", 0):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.05)
    proxy.kill()
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=60)
    took = time.monotonic() - t0
    assert proc.returncode == 1 and took < 15, (proc.returncode, took, err[-2000:])
    assert "Traceback" not in err, err[-3000:]
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "lost the Prefect API at " + url in errors[0], err[-2000:]
    assert p.store.runs()[-1].status == "failed"
    _check_no_truncated(p)
