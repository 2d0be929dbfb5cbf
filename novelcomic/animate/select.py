"""Which shots of a chapter become clips.

``motion: still`` on a shot: never. ``motion: i2v``: always (first, within no budget). Then
``animate.shots``: ``none``; ``all`` (every other shot); a list of shot ids; or ``auto``: the
action and close-up shots first (both first, then either), then the rest in order, until
``max_per_chapter`` clips in all. Shots the safety filter blocked are in no video, so never.
"""

from __future__ import annotations

from novelcomic.models import AnimateConfig, ProjectConfig, Storyboard

CLOSE = ("close_up", "extreme_close_up")


def animate_on(cfg: ProjectConfig) -> bool:
    """Whether the animate stage makes clips at all (a backend is set and shots are not ``none``)."""
    a = cfg.animate
    return bool(a.backend) and a.shots != "none"


def talking_on(cfg: ProjectConfig) -> bool:
    """Whether the composer draws the talking animatic (default: with the animatic render backend)."""
    t = cfg.animate.talking
    return cfg.stages.render.backend == "animatic" if t is None else bool(t)


def priority(scene_mood: str, shot: object) -> int:
    """Higher first: action and close-up (2), either (1), neither (0)."""
    mood = getattr(shot, "mood", None) or scene_mood
    close = shot.camera.size in CLOSE  # type: ignore[attr-defined]
    return int(mood == "action") + int(close)


def chosen_shots(animate: AnimateConfig, storyboard: Storyboard, blocked: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """The ids of the shots to animate, in storyboard order."""
    if not animate.backend:
        return []
    shots = [(sc, sh) for sc, sh in storyboard.shots() if sh.id not in blocked and sh.motion != "still"]
    forced = {sh.id for _, sh in shots if sh.motion == "i2v"}
    spec = animate.shots
    if spec == "none":
        picked = set(forced)
    elif spec == "all":
        picked = {sh.id for _, sh in shots}
    elif isinstance(spec, list):
        picked = forced | {sh.id for _, sh in shots if sh.id in set(spec)}
    else:  # auto
        picked = set(forced)
        ranked = sorted((sh for sc, sh in shots if sh.id not in forced),
                        key=lambda sh, moods={sh.id: sc.mood for sc, sh in shots}: -priority(moods[sh.id], sh))
        for sh in ranked:  # sorted() is stable: storyboard order within a rank
            if len(picked) >= max(animate.max_per_chapter, len(forced)):
                break
            picked.add(sh.id)
    return [sh.id for _, sh in shots if sh.id in picked]


def unknown_ids(animate: AnimateConfig, storyboards: list[Storyboard]) -> list[str]:
    """Shot ids ``animate.shots`` lists that no storyboard has (validate names them)."""
    if not isinstance(animate.shots, list):
        return []
    known = {sh.id for sb in storyboards for _, sh in sb.shots()}
    return [s for s in animate.shots if s not in known]
