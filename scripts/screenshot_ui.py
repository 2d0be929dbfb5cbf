"""Screenshots of the Prefect UI for the docs: docs/prefect-ui.png (deployments) and
docs/prefect-artifacts.png (the artifacts of a finished run) and docs/prefect-storyboard.png (the
storyboard table artifact).

Starts ``novelcomic serve`` on a free port (or uses ``--api http://host:port/api`` of a running
one), runs a tiny demo-sized project once through the ``produce/novelcomic`` deployment, then
takes headless Chromium screenshots. Chromium: ``apt-get install -y chromium``.

    .venv/bin/python scripts/screenshot_ui.py [--api URL] [--out docs]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--window-size=1400,900",
    "--virtual-time-budget=15000",
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        exe = shutil.which(name)
        if exe:
            return exe
    sys.exit("no Chromium found: install it with `apt-get install -y chromium` (Debian/Ubuntu)")


def screenshot(url: str, out: Path) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}", url],
                       check=True, capture_output=True, timeout=120)
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--api", help="API URL of a running Prefect server with `novelcomic serve` deployments")
    ap.add_argument("--out", default=str(REPO / "docs"))
    args = ap.parse_args()
    chromium()
    sys.path.insert(0, str(REPO))
    import httpx

    from tests.prefect_fixtures import free_port, tiny_project

    work = Path(tempfile.mkdtemp(prefix="novelcomic-ui-"))
    root = work / "projects"
    root.mkdir()
    tiny_project(root, name="demo", shots=4)
    serve = None
    api = args.api
    if api is None:
        port = free_port()
        api = f"http://127.0.0.1:{port}/api"
        env = {**os.environ, "PREFECT_HOME": str(work / "prefect"), "NOVELCOMIC_PROJECTS_DIR": str(root),
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONPATH": str(REPO)}
        env.pop("PREFECT_API_URL", None)
        code = "import sys; from novelcomic.cli.serve_cmds import serve; serve.main(sys.argv[1:], obj={})"
        serve = subprocess.Popen([sys.executable, "-c", code, "--port", str(port)], env=env,
                                 stdout=open(work / "serve.log", "w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if len(httpx.post(f"{api}/deployments/filter", json={}, timeout=2).json()) >= 6:
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(1)
        else:
            sys.exit(f"no deployments at {api}; see {work / 'serve.log'}")
        from prefect.deployments import run_deployment
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: api}):
            run = run_deployment("produce/novelcomic", parameters={"project": str(root / "demo")}, timeout=300)
        print(f"run {run.name}: {run.state.name if run.state else '?'}")
        ui = api.removesuffix("/api")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        screenshot(f"{ui}/deployments", out / "prefect-ui.png")
        screenshot(f"{ui}/runs/flow-run/{run.id}?tab=Artifacts", out / "prefect-artifacts.png")
        # one artifact opened: the storyboard table of the chapter
        found = httpx.post(f"{api}/artifacts/filter", json={
            "artifacts": {"type": {"any_": ["table"]}}, "sort": "CREATED_DESC", "limit": 1}, timeout=10).json()
        if found:
            screenshot(f"{ui}/artifacts/artifact/{found[0]['id']}", out / "prefect-storyboard.png")
    finally:
        if serve is not None:
            serve.send_signal(signal.SIGINT)
            serve.wait(60)


if __name__ == "__main__":
    main()
