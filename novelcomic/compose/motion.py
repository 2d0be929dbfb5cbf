"""Camera moves on a still: which move a shot gets, and where the view is at its start and end.

A view is a window on the still given by its zoom (1 = the whole frame) and its centre in
normalised coordinates (0..1 across the width and height). The composer interpolates linearly
between the start and end views over the time the still is visible (transitions included), so
the move never stops or jumps at a segment boundary.

Moves are slow on purpose: their amount grows with the clip's length up to a cap, so a short
shot drifts a little and a long one never races.
"""

from __future__ import annotations

from dataclasses import dataclass

from novelcomic.errors import NovelcomicError

MOTIONS = ("static", "push_in", "pull_out", "pan_left", "pan_right", "tilt_up", "tilt_down")

ZOOM_RATE = 0.022  # zoom gained per second of a push/pull
ZOOM_MAX = 0.12  # most a push/pull zooms (1.0 → 1.12)
PAN_ZOOM = 1.12  # pans/tilts look through a window this much smaller than the frame
PAN_RATE = 0.025  # fraction of the frame travelled per second
FOCUS_Y = 0.46  # push-ins drift slightly up, where faces usually are
ACTION_SPEED = 2.0  # action shots move this much quicker (and push further)
ZOOM_MAX_FAST = 0.2


def motion_speed(mood: str | None) -> float:
    """How fast a shot's camera moves: quicker for action, the normal slow drift otherwise."""
    return ACTION_SPEED if mood == "action" else 1.0


@dataclass(frozen=True)
class View:
    """A window on the still: ``zoom`` ≥ 1 and its centre (``cx``, ``cy``) in 0..1."""

    zoom: float
    cx: float = 0.5
    cy: float = 0.5

    def clamped(self) -> "View":
        """The same view with its centre moved so the window stays inside the still."""
        half = 0.5 / self.zoom
        return View(self.zoom, min(max(self.cx, half), 1 - half), min(max(self.cy, half), 1 - half))


def resolve_motion(shot_size: str, motion: str, *, first_in_scene: bool, index: int) -> str:
    """The move for a shot: an explicit ``motion`` wins; ``auto`` picks one from the shot size.

    - close_up / extreme_close_up → push_in
    - wide / extreme_wide → pull_out when it opens its scene (establishing), else pans that
      alternate right/left with ``index`` (the shot's position in its scene)
    - medium / full (and anything else) → alternate push_in, pan_right, push_in, pan_left
    """
    if motion != "auto":
        if motion not in MOTIONS:
            raise NovelcomicError(f"unknown camera motion {motion!r} (known: auto, {', '.join(MOTIONS)})", field="camera.motion")
        return motion
    if shot_size in ("close_up", "extreme_close_up"):
        return "push_in"
    if shot_size in ("wide", "extreme_wide"):
        if first_in_scene:
            return "pull_out"
        return "pan_right" if index % 2 == 0 else "pan_left"
    return ("push_in", "pan_right", "push_in", "pan_left")[index % 4]


def possible_motions(shot_size: str, motion: str) -> tuple[str, ...]:
    """Every move :func:`resolve_motion` may give a shot of ``shot_size`` with ``motion``, wherever
    the shot stands in its chapter (an explicit move: just that one)."""
    # resolve_motion depends on the position only through first_in_scene and index % 4
    picks = (resolve_motion(shot_size, motion, first_in_scene=first, index=i)
             for first in (True, False) for i in range(4))
    return tuple(dict.fromkeys(picks))


def safe_area(
    shot_size: str, motion: str, mood: str | None, bottom_band: float = 0.0
) -> tuple[float, float, float, float]:
    """The part of a shot's still that every frame of the shot shows, whatever move the timeline
    gives it (see :func:`possible_motions`) and however long it lasts (moves grow with the clip up
    to a cap): (left, top, right, bottom) as fractions of the still.

    With ``bottom_band`` (a fraction of the frame height), the bottom is raised further so that
    nothing above it ever passes under the bottom ``bottom_band`` of a frame, where subtitles are
    burned in. The render stage keeps lettering and faces inside this area, so a camera move never
    cuts a speech bubble in half or slides a face under the subtitles.
    """
    if not 0 <= bottom_band < 1:
        raise NovelcomicError(f"bottom_band must be in [0, 1), got {bottom_band!r}")
    speed = motion_speed(mood)
    left, top, right, bottom = 0.0, 0.0, 1.0, 1.0 - bottom_band
    for move in possible_motions(shot_size, motion):
        # the views at the capped amount are the extremes: edges move monotonically with the
        # amount and linearly in time, so every window in between contains their intersection
        for view in motion_views(move, 1e6, speed):
            l, t, r, b = view_box(view)
            left, top, right = max(left, l), max(top, t), min(right, r)
            bottom = min(bottom, b, t + (1.0 - bottom_band) * (b - t))
    return left, top, right, bottom


def view_box(view: View) -> tuple[float, float, float, float]:
    """The window of ``view`` on the still: (left, top, right, bottom) in 0..1."""
    half = 0.5 / view.zoom
    return view.cx - half, view.cy - half, view.cx + half, view.cy + half


def motion_views(motion: str, seconds: float, speed: float = 1.0) -> tuple[View, View]:
    """The start and end views of ``motion`` played over ``seconds`` at ``speed`` (1 = the slow default)."""
    if motion not in MOTIONS:
        raise NovelcomicError(f"unknown camera motion {motion!r} (known: {', '.join(MOTIONS)})")
    if not 0 < speed <= 5:
        raise NovelcomicError(f"motion speed must be in (0, 5], got {speed!r}")
    seconds = max(seconds, 0.0) * speed
    zoom = 1.0 + min(ZOOM_MAX if speed <= 1 else ZOOM_MAX_FAST, ZOOM_RATE * seconds)
    margin = 1.0 - 1.0 / PAN_ZOOM  # free travel of the window's centre
    travel = min(margin, PAN_RATE * seconds) / 2
    if motion == "static":
        return View(1.0), View(1.0)
    if motion == "push_in":
        return View(1.0), View(zoom, 0.5, FOCUS_Y).clamped()
    if motion == "pull_out":
        return View(zoom, 0.5, FOCUS_Y).clamped(), View(1.0)
    if motion == "pan_left":  # the camera turns left: the window slides from right to left
        return View(PAN_ZOOM, 0.5 + travel), View(PAN_ZOOM, 0.5 - travel)
    if motion == "pan_right":
        return View(PAN_ZOOM, 0.5 - travel), View(PAN_ZOOM, 0.5 + travel)
    if motion == "tilt_up":
        return View(PAN_ZOOM, 0.5, 0.5 + travel), View(PAN_ZOOM, 0.5, 0.5 - travel)
    return View(PAN_ZOOM, 0.5, 0.5 - travel), View(PAN_ZOOM, 0.5, 0.5 + travel)  # tilt_down
