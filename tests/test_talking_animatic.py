"""The talking animatic: on an animatic still, the speaker's mouth opens and closes with the
loudness of their line (decoded from the real MP4), and stays as drawn while nothing is said."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from novelcomic import pipeline
from novelcomic.ffmpeg import ffmpeg_exe
from novelcomic.project import Project
from novelcomic.registry import tts_backends

W, H, FPS = 288, 512, 12
SPOKEN = 1.2  # seconds of the line's audio: syllables at 4 Hz, silent between them
RATE = 16000


class SyllableTTS:
    """Speech-like audio: a 220 Hz voice whose loudness rises and falls four times a second."""

    name = "syllables"

    def __init__(self, **options: object) -> None:
        pass

    def synthesize(self, request, out_path):  # type: ignore[no-untyped-def]
        from novelcomic.audio import write_wav
        from novelcomic.voice.base import SpeechResult

        t = np.arange(int(SPOKEN * RATE)) / RATE
        envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 2
        write_wav(out_path, (0.6 * envelope * np.sin(2 * np.pi * 220 * t)).astype(np.float32), RATE)
        return SpeechResult(duration=SPOKEN, sample_rate=RATE, backend=self.name, voice="syllables")


def test_the_speakers_mouth_flaps_with_the_loudness_of_their_line(root: Path) -> None:
    d = root / "talk"
    (d / "chapters").mkdir(parents=True)
    (d / "storyboards").mkdir()
    (d / "chapters" / "01.txt").write_text("阿青说话。", encoding="utf-8")
    (d / "project.yaml").write_text(yaml.safe_dump({
        "title": "t", "resolution": [W, H], "fps": FPS, "music": {"enabled": False}, "chapters": [{"id": "01"}],
        "stages": {"voice": {"backend": "syllables"}},
    }, allow_unicode=True), encoding="utf-8")
    (d / "characters.yaml").write_text(yaml.safe_dump({"characters": [{"id": "a", "name": "阿青", "appearance": "青衣"}]},
                                                       allow_unicode=True), encoding="utf-8")
    (d / "storyboards" / "01.yaml").write_text(yaml.safe_dump({"chapter": "01", "scenes": [{"id": "s01", "shots": [
        {"id": "s01-01", "characters": ["a"], "camera": {"size": "close_up", "motion": "static"}, "duration_hint": 3.5,
         "lines": [{"speaker": "a", "text": "你好。"}]}]}]}, allow_unicode=True), encoding="utf-8")
    project = Project(d)
    with tts_backends.override("syllables", SyllableTTS):
        pipeline.produce(project, stages=["render", "voice", "compose"])

    figure = project.store.asset("shot", "01/s01-01").meta_dict()["figures"][0]
    mx, my, mw = figure["mouth"]
    box = (slice(int(my - mw), int(my + mw * 2.2) + 1), slice(int(mx - mw * 1.4), int(mx + mw * 1.4) + 1))
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(project.video_path("01")), "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], check=True, capture_output=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, H, W).astype(np.int16)
    mouth = frames[:, box[0], box[1]]
    change = [float(np.abs(mouth[i + 1] - mouth[i]).mean()) for i in range(len(mouth) - 1)]
    lead_in = 0.3  # the timeline's lead-in before the first line
    loud = range(int((lead_in + 0.1) * FPS), int((lead_in + SPOKEN - 0.1) * FPS))
    quiet = range(int((lead_in + SPOKEN + 0.2) * FPS), len(change))
    assert len(quiet) >= 12
    flaps = [change[i] for i in loud]
    assert sum(c > 6 for c in flaps) >= 4, flaps  # opens and closes, several times, while the line is loud
    # as drawn while silent: what changes there is the slight sway, a small fraction of a flap
    assert max(change[i] for i in quiet) < min(4.0, max(flaps) / 8), [round(change[i], 2) for i in quiet]
