"""The animate-backend interface: a still and a prompt in, a short clip (MP4) out.

Backends *declare* what they can do in :class:`Capabilities` (the stage reads it, never guesses
from a class name); inputs are checked up front with one-line errors naming the bad value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from novelcomic.errors import NovelcomicError

Family = Literal["wan", "wan22", "ltx", "svd", "comfyui"]


@dataclass(frozen=True)
class FrameRule:
    """How many frames a model family takes: ``step``·k + 1 (Wan 4k+1, LTX 8k+1), or exactly
    ``fixed`` (SVD: the UNet's own ``num_frames``), between ``min_frames`` and ``max_frames``."""

    step: int = 1
    min_frames: int = 1
    max_frames: int = 121
    fixed: int | None = None

    def frames_for(self, wanted: int, cap: int | None = None) -> int:
        """The frame count nearest above ``wanted`` that the model takes, at most ``cap`` (or its max)."""
        if self.fixed is not None:
            return self.fixed
        top = min(self.max_frames, cap) if cap else self.max_frames
        top = max(self.min_frames, (top - 1) // self.step * self.step + 1)
        k = max(0, math.ceil((max(wanted, self.min_frames) - 1) / self.step))
        return min(top, k * self.step + 1)

    def valid(self, n: int) -> bool:
        if self.fixed is not None:
            return n == self.fixed
        return self.min_frames <= n <= self.max_frames and (n - 1) % self.step == 0


# family → (native fps, frame rule, native (long side, short side), size multiple)
FAMILIES: dict[str, tuple[int, FrameRule, tuple[int, int], int]] = {
    "wan22": (24, FrameRule(4, 5, 121), (1280, 704), 32),  # Wan2.2 TI2V 5B: 121 frames at 24 fps, 720p
    "wan": (16, FrameRule(4, 5, 81), (832, 480), 16),  # Wan2.1 I2V 480P: 81 frames at 16 fps
    "ltx": (24, FrameRule(8, 9, 161), (768, 512), 32),  # LTX-Video: 8k+1 frames, sizes /32
    "svd": (7, FrameRule(fixed=25), (1024, 576), 64),  # SVD-XT: 25 frames (SVD: 14), shown at 7 fps
}


@dataclass(frozen=True)
class Capabilities:
    """What a backend declares: the families it runs, whether it reads a prompt, its output."""

    families: tuple[str, ...]
    prompt: bool = True  # reads the text prompt (SVD does not)
    negative_prompt: bool = True
    output: Literal["mp4", "frames"] = "mp4"  # what it writes before the stage normalises it to MP4
    remote: bool = False  # talks to a server (its failures are the server's)


@dataclass
class ClipRequest:
    """One shot to animate. ``image`` is the still without lettering (the lettering is laid over
    the clip's frames by the composer); ``seconds`` is how long the shot lasts on screen."""

    chapter: str
    shot_id: str
    image: Path
    prompt: str
    negative_prompt: str
    seed: int
    seconds: float
    width: int  # the project's frame: the clip keeps its aspect
    height: int
    mood: str = "calm"

    def check(self) -> None:
        if not Path(self.image).is_file():
            raise NovelcomicError(f"still {self.image} of shot {self.shot_id} does not exist")
        if not math.isfinite(self.seconds) or self.seconds <= 0:
            raise NovelcomicError(f"shot {self.shot_id} has a bad duration {self.seconds!r}")
        if self.width < 16 or self.height < 16:
            raise NovelcomicError(f"frame size {self.width}x{self.height} is too small to animate")


@dataclass
class ClipResult:
    """The clip written to the path the stage gave: ``frames`` frames at ``fps`` (native)."""

    path: Path
    fps: float
    frames: int
    width: int
    height: int
    seed: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


class Animator(Protocol):
    name: str
    capabilities: Capabilities

    def animate(self, request: ClipRequest, out: Path) -> ClipResult: ...


def native_size(family: str, width: int, height: int, long_side: int | None = None) -> tuple[int, int]:
    """The model's native size in the project's orientation and aspect: the family's long side
    (or ``long_side``), the short side from the frame's aspect, both multiples of the family's step."""
    _, _, (native_long, _), m = FAMILIES[family]
    long_px = max(m, round((long_side or native_long) / m) * m)
    short_px = max(m, round(long_px * min(width, height) / max(width, height) / m) * m)
    return (long_px, short_px) if width >= height else (short_px, long_px)


def clip_prompt(shot_text: str, mood: str, characters: list[str], extra: str = "") -> str:
    """A motion prompt from the shot and its mood: what is seen, how it moves."""
    moves = {
        "action": "fast dynamic motion, hair and clothes whipping, camera shake",
        "tense": "slow tense motion, subtle breathing, flickering light",
        "sad": "slow gentle motion, soft breathing, drifting dust",
        "joyful": "lively gentle motion, smiling, light breeze",
        "mysterious": "slow drifting mist, subtle motion, shifting shadows",
        "calm": "gentle subtle motion, soft breeze, slow breathing",
    }
    parts = [p for p in (shot_text.strip(), ", ".join(characters), moves.get(mood, moves["calm"]),
                         "consistent characters, stable camera, comic art style", extra) if p]
    return ", ".join(parts)


NEGATIVE = "static, still picture, text, subtitles, speech bubbles, watermark, blurry, distorted faces, extra limbs, flicker"
