"""Helpers for tests that look at real output files."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def ffprobe(path: Path) -> dict:
    exe = shutil.which("ffprobe")
    assert exe, "ffprobe is installed by scripts/install.sh (Debian package ffmpeg)"
    out = subprocess.run(
        [exe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout
    return json.loads(out)


@dataclass
class SrtCue:
    index: int
    start: float
    end: float
    text: str


def _ts(s: str) -> float:
    h, m, rest = s.split(":")
    sec, ms = rest.split(",")
    return int(h) * 3600 + int(m) * 60 + int(sec) + int(ms) / 1000


def parse_srt(path: Path) -> list[SrtCue]:
    blocks = re.split(r"\n\s*\n", path.read_text(encoding="utf-8").strip())
    cues = []
    for b in blocks:
        lines = b.strip().splitlines()
        a, _, z = lines[1].partition(" --> ")
        cues.append(SrtCue(int(lines[0]), _ts(a.strip()), _ts(z.strip()), "\n".join(lines[2:])))
    return cues


def grab_frame(video: Path, t: float, out: Path):  # -> PIL.Image
    from imageio_ffmpeg import get_ffmpeg_exe
    from PIL import Image

    subprocess.run(
        [get_ffmpeg_exe(), "-v", "error", "-y", "-ss", f"{t:.3f}", "-i", str(video), "-frames:v", "1", str(out)],
        check=True,
    )
    return Image.open(out).convert("RGB")


def copy_example(name: str, dest_root: Path, *, resolution: tuple[int, int] = (270, 480), fps: int = 12) -> Path:
    """Copy a committed example project (its sources only) and shrink its video size for speed."""
    import yaml

    src = REPO / "projects" / name
    dst = dest_root / name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(
        ".novelcomic", "out", "render", "audio", "design", "storyboards", "characters.yaml", "props.yaml", "locations.yaml", "*.proposed.yaml"
    ))
    cfg_path = dst / "project.yaml"
    text = cfg_path.read_text(encoding="utf-8")
    header = text.splitlines()[0] if text.startswith("#") else ""
    data = yaml.safe_load(text)
    data["resolution"] = list(resolution)
    data["fps"] = fps
    cfg_path.write_text(header + "\n" + yaml.dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return dst
