"""What the render stage draws for the viewer to read or recognise — lettering and faces — stays
on screen and clear of the burned-in subtitles through the whole camera move the composer gives
the shot (push-ins crop the edges, pans slide the window, and both move the still under the
subtitle band)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from novelcomic.compose.ffmpeg_composer import StillView
from novelcomic.compose.motion import MOTIONS, motion_speed, possible_motions, resolve_motion, safe_area
from novelcomic.errors import NovelcomicError
from novelcomic.models import Camera, Character, Line, Location, Scene, Shot
from novelcomic.render.animatic import AnimaticBackend, _layout
from novelcomic.render.base import CharacterRef, ShotRequest
from novelcomic.render.lettering import SUBTITLE_BAND, check_safe_area, plan_lettering, shot_safe_area
from novelcomic.render.look import draw_character, head_box, look_for

SIZES = ("extreme_wide", "wide", "full", "medium", "close_up", "extreme_close_up")
CHILDREN = [
    Character(id="c01", name="林小雨", appearance="扎着两条乌黑的辫子，穿着红色的棉袄，十岁的小女孩"),
    Character(id="c02", name="阿青", appearance="瘦瘦的男孩，短短的头发，青色的短褂，十岁"),
]
ADULTS = [
    Character(id="a", name="阿青", appearance="青衣少年"),
    Character(id="b", name="老陈", appearance="白发老人，戴着斗笠"),
    Character(id="c", name="小六", appearance="矮胖的店小二"),
]


def windows(motion: str, seconds: float, mood: str | None, fps: int = 10) -> list[tuple[float, float, float, float]]:
    """Every window the composer shows of a still with ``motion`` visible for ``seconds``."""
    frames = max(2, round(seconds * fps))
    view = StillView(Path("x.png"), "h", motion, fps, frames, 0, motion_speed(mood))
    return [view.box_at(n) for n in range(frames)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("motion", ["auto", *MOTIONS])
@pytest.mark.parametrize("mood", [None, "action"])
def test_the_safe_area_is_in_every_frame_and_above_the_subtitles(size: str, motion: str, mood: str | None) -> None:
    l, t, r, b = safe_area(size, motion, mood, SUBTITLE_BAND)
    assert 0 <= l < r <= 1 and 0 <= t < b <= 1 - SUBTITLE_BAND
    # whatever place the shot has in its chapter, the timeline picks one of the possible moves
    picked = {resolve_motion(size, motion, first_in_scene=f, index=i) for f in (True, False) for i in range(4)}
    assert picked <= set(possible_motions(size, motion))
    for move in possible_motions(size, motion):
        for seconds in (0.4, 2.0, 3.5, 8.0, 60.0):
            for wl, wt, wr, wb in windows(move, seconds, mood):
                eps = 1e-9
                assert wl - eps <= l and r <= wr + eps and wt - eps <= t, (move, seconds)
                # the still's y = b lands above the band: (b - wt) / (wb - wt) <= 1 - band
                assert (b - wt) / (wb - wt) <= 1 - SUBTITLE_BAND + eps, (move, seconds)


def test_the_safe_area_is_tight() -> None:
    """Not just safe: a still shot keeps the whole frame above the band, and a push-in loses
    exactly what its largest zoom crops."""
    assert safe_area("medium", "static", None, SUBTITLE_BAND) == (0.0, 0.0, 1.0, 1.0 - SUBTITLE_BAND)
    l, t, r, b = safe_area("close_up", "auto", None, SUBTITLE_BAND)
    worst = windows("push_in", 60.0, None)[-1]
    assert (l, r) == pytest.approx((worst[0], worst[2]))
    assert b == pytest.approx(worst[1] + (1 - SUBTITLE_BAND) * (worst[3] - worst[1]))
    with pytest.raises(NovelcomicError, match="bottom_band"):
        safe_area("medium", "auto", None, 1.5)
    with pytest.raises(NovelcomicError, match="zoom_in"):
        safe_area("medium", "zoom_in", None)


def frame_request(cast: list[Character], size: str, lines: list[Line], w: int, h: int, motion: str = "auto",
                  mood: str = "calm") -> ShotRequest:
    shot = Shot(id="s02-03", characters=[c.id for c in cast], camera=Camera(size=size, motion=motion), lines=lines,
                mood=mood)
    scene = Scene(id="s02", location="l", shots=[shot])
    return ShotRequest(
        chapter="01", scene=scene, shot=shot, characters=[CharacterRef(c) for c in cast],
        location=Location(id="l", name="河边", description="黄昏的河岸"), props=[], style=[], width=w, height=h,
        seed=3, speaker_names={c.id: c.name for c in cast}, safe_area=shot_safe_area(scene, shot),
    )


@pytest.mark.parametrize("framing, box", [("full", (100, 200, 260, 620)), ("medium", (40, 300, 330, 640)),
                                          ("bust", (0, 220, 360, 640)), ("face", (20, 100, 340, 600))])
def test_head_box_predicts_where_the_head_is_drawn(framing: str, box: tuple[int, int, int, int]) -> None:
    from PIL import Image

    for person in (*CHILDREN, *ADULTS):
        look = look_for(person)
        canvas = Image.new("RGB", (360, 640), "white")
        drawn = draw_character(canvas, look, box, "front", framing=framing)  # type: ignore[arg-type]
        predicted = head_box(look, box, framing)  # type: ignore[arg-type]
        clipped = (max(0, predicted[0]), max(0, predicted[1]), min(360, predicted[2]), min(640, predicted[3]))
        assert np.allclose(drawn.head, clipped, atol=1.01), (person.name, framing, drawn.head, predicted)


@pytest.mark.parametrize("cast", [CHILDREN, ADULTS[:2], ADULTS, CHILDREN[:1]])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("frame", [(720, 1280), (1280, 720)])
def test_faces_stay_above_the_subtitles_through_the_move(
    cast: list[Character], size: str, frame: tuple[int, int]
) -> None:
    """The example's two-shot of two ten-year-olds in 9:16 used to put both faces where the
    subtitles burn in."""
    w, h = frame
    req = frame_request(cast, size, [Line(speaker=cast[0].id, text="阿青，今晚我们一起去看灯会吧！")], w, h)
    safe = check_safe_area(req.safe_area)
    looks = {c.id: look_for(c) for c in cast}
    ground = round(h * 0.55)
    faces = []
    for p in _layout(req.shot, looks, w, h, ground, safe):
        face = head_box(p.look, p.box, p.framing, p.pose)
        assert face[3] <= h * safe[3], (p.character_id, size, face, h * safe[3])
        assert face[1] >= 0, "a face pushed off the top of the frame"
        faces.append(face)
    for a, b in zip(faces, faces[1:]):  # neighbours side by side, never one face over another
        assert a[2] <= b[0] + 0.02 * w, (size, a, b)


@pytest.mark.parametrize("size, motion, mood", [("medium", "auto", "calm"), ("close_up", "auto", "action"),
                                                 ("wide", "pan_left", "calm"), ("full", "static", "calm")])
def test_animatic_lettering_stays_in_the_safe_area(size: str, motion: str, mood: str) -> None:
    """Pixels: everything lettered on the animatic frame lies inside the safe area, so no push-in
    or pan cuts a bubble or a caption, and none slides under the subtitles."""
    lines = [Line(text="元宵节的黄昏，小雨提着灯笼跑到河边，去找她的好朋友阿青。"),
             Line(speaker="c01", text="阿青，今晚我们一起去看灯会吧！"), Line(speaker="c02", text="好啊！")]
    w, h = 360, 640
    req = frame_request(CHILDREN, size, lines, w, h, motion, mood)
    on = AnimaticBackend(border=False).render_shot(req)
    off = AnimaticBackend(border=False, lettering=False).render_shot(req)
    assert on.meta["lettering"], "nothing was lettered"
    mask = np.abs(np.asarray(on.image).astype(int) - np.asarray(off.image).astype(int)).sum(axis=2) > 0
    ys, xs = np.nonzero(mask)
    l, t, r, b = check_safe_area(req.safe_area)
    assert xs.min() >= l * w - 1 and xs.max() <= r * w + 1, (xs.min(), xs.max(), l * w, r * w)
    assert ys.min() >= t * h - 1 and ys.max() <= b * h + 1, (ys.min(), ys.max(), t * h, b * h)


def test_lettering_respects_a_given_safe_area_and_rejects_a_bad_one() -> None:
    regions = {"a": (20, 240, 170, 620), "b": (190, 250, 340, 620)}
    lines = [Line(text="两人在桥头相遇，风很大。"), Line(speaker="a", text="老人家，请问这条河通向哪里？"),
             Line(speaker="b", text="往东走三天。")]
    shot = Shot(id="s", characters=["a", "b"], camera=Camera(size="medium"), lines=lines)
    names = {"a": "阿青", "b": "老陈"}
    default = plan_lettering((360, 640), shot, regions, names, "zh")
    assert default.items and all(i.footprint[3] <= 640 * (1 - SUBTITLE_BAND) for i in default.items)
    safe = (0.12, 0.06, 0.88, 0.7)
    plan = plan_lettering((360, 640), shot, regions, names, "zh", safe=safe)
    assert len(plan.items) == len(default.items) and not plan.dropped
    for item in plan.items:
        fl, ft, fr, fb = item.footprint
        assert fl >= 0.12 * 360 and fr <= 0.88 * 360 and ft >= 0.06 * 640 and fb <= 0.7 * 640, item
        for x, y in item.tail or ():
            assert 0.12 * 360 <= x <= 0.88 * 360 and y <= 0.7 * 640, (item.text, x, y)
    for bad in [(0.5, 0.0, 0.4, 1.0), (0, 0, 1), (-0.1, 0, 1, 1), "top"]:
        with pytest.raises(NovelcomicError, match="safe area"):
            plan_lettering((360, 640), shot, regions, names, "zh", safe=bad)  # type: ignore[arg-type]
