"""Peak memory, time and outputs of ``new-project`` on big novels, against an older version.

Builds inputs from the corpus (``/work/shared/corpus`` or ``$NOVELCOMIC_CORPUS``):
``sanguo_full.txt`` repeated to about 6 MB and 33 times (about 59 MB, 3960 回), and runs
``python -m novelcomic new-project`` on them and on every corpus file, each in its own process
(peak RSS from ``wait4``). With ``--baseline REV`` the package as of git revision REV runs the
same, and the outputs (novel.txt, every chapter's title and text) are compared: any difference
is printed and the exit status is 1.

    .venv/bin/python benchmarks/ingest_memory.py --baseline 8ca6a02
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("NOVELCOMIC_CORPUS", "/work/shared/corpus"))


@dataclass(frozen=True)
class Run:
    peak_mb: float
    seconds: float
    digest: str  # of novel.txt and every chapter's id, title, volume and text
    chapters: int


def build_inputs(tmp: Path) -> list[Path]:
    sanguo = (CORPUS / "sanguo_full.txt").read_bytes()
    six = sanguo * 3 + sanguo[: sanguo.index(b"\n", len(sanguo) // 3) + 1]
    inputs = sorted(CORPUS.glob("*.txt"))
    for name, data in (("sanguo_6mb.txt", six), ("sanguo_x33.txt", sanguo * 33)):
        path = tmp / name
        path.write_bytes(data)
        inputs.append(path)
    return inputs


def run(pythonpath: Path, novel: Path, projects: Path) -> Run:
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "NOVELCOMIC_MAX_NOVEL_MB": "100"}
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "novelcomic", "--projects-dir", str(projects), "new-project", "p", "--novel", str(novel)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=projects.parent,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"{novel.name}: new-project failed: {err.strip()[-500:]}")
    project = projects / "p"
    h = hashlib.sha256((project / "novel.txt").read_bytes())
    config = yaml.safe_load((project / "project.yaml").read_text(encoding="utf-8"))
    for ch in config["chapters"]:
        h.update(repr((ch["id"], ch["title"], ch.get("volume", ""))).encode())
        h.update((project / "chapters" / f"{ch['id']}.txt").read_bytes())
    shutil.rmtree(projects)
    return Run(usage.ru_maxrss / 1024, seconds, h.hexdigest()[:16], len(config["chapters"]))


def extract(rev: str, into: Path) -> Path:
    data = subprocess.run(["git", "-C", str(REPO), "archive", rev, "novelcomic"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="git revision to compare with (e.g. the commit before streaming ingest)")
    args = parser.parse_args()
    differ = False
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp_name:
        tmp = Path(tmp_name)
        inputs = build_inputs(tmp)
        versions = {"current": REPO}
        if args.baseline:
            versions = {f"baseline {args.baseline}": extract(args.baseline, tmp / "baseline"), **versions}
        print(f"{'input':<22}{'MB':>7}  " + "  ".join(f"{v:<38}" for v in versions))
        for novel in inputs:
            results = {v: run(path, novel, tmp / "projects") for v, path in versions.items()}
            cells = [f"{r.peak_mb:6.0f} MB RSS {r.seconds:6.1f} s {r.chapters:5d} ch {r.digest[:8]}" for r in results.values()]
            same = len({r.digest for r in results.values()}) == 1
            differ |= not same
            mark = "" if len(results) == 1 else ("  identical" if same else "  DIFFERENT")
            print(f"{novel.name:<22}{novel.stat().st_size / 1e6:7.1f}  " + "  ".join(f"{c:<38}" for c in cells) + mark,
                  flush=True)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
