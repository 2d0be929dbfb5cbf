"""Comic lettering over any backend's frame, checked on real pixels: bubbles never touch a face,
nothing enters the subtitle band, narration gets a caption, sound effects are drawn."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from novelcomic.errors import NovelcomicError
from novelcomic.models import Camera, Line, Shot
from novelcomic.render.lettering import (
    FACE_FRACTION,
    MAX_BUBBLES,
    SUBTITLE_BAND,
    LetterFonts,
    face_boxes,
    find_sound_effect,
    letter_panel,
    letter_shot,
    plan_lettering,
)

NAMES = {"a": "阿青", "b": "老陈", "c": "小六"}


def backdrop(w: int, h: int, seed: int = 0) -> Image.Image:
    """A busy picture such as a diffusion backend returns: a gradient with noise."""
    rng = np.random.default_rng(seed)
    y = np.linspace(40, 200, h)[:, None, None]
    x = np.linspace(0, 60, w)[None, :, None]
    base = np.broadcast_to(y + x, (h, w, 3)) + rng.integers(0, 30, (h, w, 3))
    return Image.fromarray(np.clip(base, 0, 255).astype("uint8"))


def diff_mask(a: Image.Image, b: Image.Image) -> np.ndarray:
    return np.abs(np.asarray(a.convert("RGB")).astype(int) - np.asarray(b.convert("RGB")).astype(int)).sum(axis=2) > 0


def shot(lines: list[Line], chars: list[str], size: str = "medium", source: str = "") -> Shot:
    return Shot(id="s01-01", characters=chars, camera=Camera(size=size), lines=lines, source=source)


# (frame size, regions, lines): one to three characters, wide and close framings, both orientations
LAYOUTS = [
    ((360, 640), {"a": (120, 260, 240, 600)}, [Line(speaker="a", text="你好，朋友。")]),
    ((360, 640), {"a": (20, 240, 170, 620), "b": (190, 250, 340, 620)},
     [Line(speaker="a", text="老人家，请问这条河通向哪里？"), Line(speaker="b", text="往东走三天。", emotion="angry")]),
    ((360, 640), {"a": (5, 230, 120, 620), "b": (125, 220, 240, 620), "c": (245, 240, 355, 620)},
     [Line(text="三人站在桥头。"), Line(speaker="a", text="走吧。"), Line(speaker="b", text="等等我！"),
      Line(speaker="c", text="我也去。")]),
    ((360, 640), {"a": (0, 200, 360, 640)}, [Line(speaker="a", text="站住！", emotion="angry")]),  # close-up
    ((640, 360), {"a": (80, 120, 260, 360), "b": (380, 110, 560, 360)},
     [Line(speaker="b", text="你终于来了。我等了你很多年。"), Line(speaker="a", text="Sorry, the road was long.")]),
    ((640, 360), {"a": (150, 60, 490, 360)}, [Line(speaker="a", text="Follow me, and don't look back.", emotion="whisper")]),
    ((270, 480), {"a": (30, 190, 130, 460), "b": (140, 200, 240, 460)},
     [Line(speaker="b", text="砰！门被撞开了。"), Line(speaker="a", text="谁？")]),
]


@pytest.mark.parametrize("size, regions, lines", LAYOUTS)
def test_bubbles_never_cover_a_face_nor_the_subtitle_band(size, regions, lines) -> None:  # type: ignore[no-untyped-def]
    w, h = size
    plain = backdrop(w, h)
    s = shot(lines, list(regions))
    plan = plan_lettering(size, s, regions, NAMES, "zh")
    lettered = letter_shot(plain, s, regions, NAMES, "zh")
    assert lettered.size == plain.size and plain.tobytes() == backdrop(w, h).tobytes()  # the input is untouched
    mask = diff_mask(lettered, plain)
    assert mask.any(), "nothing was lettered"
    faces = face_boxes(regions)
    for cid, (l, t, r, b) in faces.items():
        assert (l, t, r, b) == (regions[cid][0], regions[cid][1], regions[cid][2],
                                regions[cid][1] + (regions[cid][3] - regions[cid][1]) * FACE_FRACTION)
        touched = mask[int(t):int(np.ceil(b)), int(l):int(np.ceil(r))]
        assert not touched.any(), f"lettering drew over {cid}'s face"
        for item in plan.items:
            fl, ft, fr, fb = item.footprint
            assert fr <= l or fl >= r or fb <= t or ft >= b, f"{item.kind} {item.text!r} overlaps {cid}'s face"
    band = int(h * (1 - SUBTITLE_BAND))
    assert not mask[band:].any(), "lettering reached the subtitle band"
    # one bubble per on-screen dialogue line, up to the maximum; items never overlap each other
    dialogue = [ln for ln in lines if not ln.is_narration and ln.speaker in regions]
    assert len(plan.of_kind("bubble")) == min(len(dialogue), MAX_BUBBLES)
    assert not plan.dropped
    boxes = [i.footprint for i in plan.items]
    for i, a in enumerate(boxes):
        for b2 in boxes[i + 1:]:
            assert a[2] <= b2[0] or b2[2] <= a[0] or a[3] <= b2[1] or b2[3] <= a[1], "two lettering items overlap"


def test_each_tail_points_at_its_speaker() -> None:
    size, regions, lines = LAYOUTS[2]
    plan = plan_lettering(size, shot(lines, list(regions)), regions, NAMES, "zh")
    faces = face_boxes(regions)
    for item in plan.of_kind("bubble"):
        assert item.tail is not None
        (x, y) = item.tail[1]
        l, t, r, b = faces[item.speaker]
        # the tip lies just outside the speaker's face, nearer to it than to any other face
        others = [f for cid, f in faces.items() if cid != item.speaker]
        assert l - 0.06 * size[0] <= x <= r + 0.06 * size[0], (item.speaker, x, (l, r))
        assert _distance((x, y), faces[item.speaker]) < min(_distance((x, y), f) for f in others)


def _distance(p: tuple[float, float], box: tuple[float, float, float, float]) -> float:
    dx = max(box[0] - p[0], 0, p[0] - box[2])
    dy = max(box[1] - p[1], 0, p[1] - box[3])
    return float(np.hypot(dx, dy))


def test_narration_gets_a_caption_and_an_off_screen_voice_a_named_one() -> None:
    regions = {"a": (100, 300, 260, 620)}
    lines = [Line(text="夜深了，河边一片寂静。"), Line(speaker="b", text="谁在那里？")]
    plan = plan_lettering((360, 640), shot(lines, ["a"]), regions, NAMES, "zh")
    captions = plan.of_kind("caption")
    assert [c.text for c in captions] == ["夜深了，河边一片寂静。", "老陈：谁在那里？"]
    assert not plan.of_kind("bubble")
    first = captions[0].box
    assert first[0] < 0.15 * 360 and first[1] < 0.15 * 640, "narration starts in the top-left corner"
    # a caption is a filled rectangle: its inside is the caption paper colour, not the picture
    image = letter_shot(backdrop(360, 640), shot(lines, ["a"]), regions, NAMES, "zh")
    l, t, r, b = (int(v) for v in first)
    corner = np.asarray(image)[t + 3, l + 3].astype(int)
    assert np.abs(corner - np.array([255, 244, 206])).sum() < 10


@pytest.mark.parametrize("size", [(360, 640), (640, 360)])
def test_lettering_reads_top_to_bottom_in_the_order_it_is_heard(size: tuple[int, int]) -> None:
    """Narration first: its caption is above the bubble. Spoken first: the bubble is above."""
    w, h = size
    regions = {"a": (w * 0.3, h * 0.45, w * 0.6, h * 0.95)}
    said = Line(speaker="a", text="你来了。")
    told = Line(text="夜深了，河边一片寂静。")
    for lines, caption_first in (([told, said], True), ([said, told], False)):
        plan = plan_lettering(size, shot(lines, ["a"]), regions, NAMES, "zh")
        (caption,), (bubble,) = plan.of_kind("caption"), plan.of_kind("bubble")
        assert (caption.box[1] < bubble.box[1]) is caption_first, (size, lines[0].text, caption.box, bubble.box)


def test_a_sound_effect_is_drawn_when_the_text_has_one() -> None:
    regions = {"a": (40, 300, 200, 620)}
    quiet = shot([Line(speaker="a", text="门开了。")], ["a"])
    loud = shot([Line(speaker="a", text="门开了。")], ["a"], source="只听砰的一声，门被撞开了。")
    assert not plan_lettering((360, 640), quiet, regions, NAMES, "zh").of_kind("sfx")
    plan = plan_lettering((360, 640), loud, regions, NAMES, "zh")
    (sfx,) = plan.of_kind("sfx")
    assert sfx.text == "砰！"
    plain = backdrop(360, 640)
    with_sfx = letter_shot(plain, loud, regions, NAMES, "zh")
    without = letter_shot(plain, quiet, regions, NAMES, "zh")
    l, t, r, b = (int(v) for v in sfx.footprint)
    changed = diff_mask(with_sfx, without)[t:b, l:r]
    assert changed.mean() > 0.15, "the effect's letters are missing"
    assert not diff_mask(with_sfx, without)[int(640 * (1 - SUBTITLE_BAND)):].any()


@pytest.mark.parametrize("texts, expected", [
    (["只听砰的一声"], "砰！"), (["轰隆隆，雷声滚滚"], "轰隆！"), (["The door went BANG."], "BANG!"),
    (["boom"], "BOOM!"), (["消息轰动全城"], None), (["She banged the table; a bangle fell."], None),
    (["", "噼里啪啦的鞭炮声"], "噼里啪啦！"), (["平静的一天"], None),
])
def test_find_sound_effect(texts: list[str], expected: str | None) -> None:
    assert find_sound_effect(texts) == expected


def test_chinese_glyphs_render_inside_the_bubble() -> None:
    regions = {"a": (100, 300, 260, 620)}
    plain = backdrop(360, 640)
    one = letter_shot(plain, shot([Line(speaker="a", text="你好，朋友。")], ["a"]), regions, NAMES, "zh")
    two = letter_shot(plain, shot([Line(speaker="a", text="再见，江湖。")], ["a"]), regions, NAMES, "zh")
    (item,) = plan_lettering((360, 640), shot([Line(speaker="a", text="你好，朋友。")], ["a"]), regions, NAMES,
                             "zh").of_kind("bubble")
    l, t, r, b = (int(v) for v in item.box)
    inside = np.asarray(one).astype(int)[t:b, l:r]
    assert (inside.sum(axis=2) < 200).sum() > 100, "no dark glyph pixels inside the bubble"
    changed = diff_mask(one, two)[t:b, l:r].sum()
    assert changed > 100, "different characters drew the same pixels (tofu boxes?)"


def test_works_on_any_image_mode_and_without_regions() -> None:
    lines = [Line(speaker="a", text="Hello there."), Line(text="Night fell.")]
    for mode in ("RGB", "RGBA", "L", "P"):
        image = backdrop(320, 320).convert(mode)
        out = letter_shot(image, shot(lines, []), {}, NAMES, "en")
        assert out.size == (320, 320)
        assert diff_mask(out, image.convert("RGB")).any()
    plan = plan_lettering((320, 320), shot(lines, []), {}, NAMES, "en")
    assert [c.text for c in plan.of_kind("caption")] == ["Night fell.", "阿青: Hello there."]


def test_no_room_means_dropped_never_over_a_face() -> None:
    # faces fill the whole frame above the subtitle band: there is nowhere to put a bubble
    regions = {"a": (0, 0, 180, 2200), "b": (180, 0, 360, 2200)}
    lines = [Line(speaker="a", text="你好。"), Line(speaker="b", text="嗯。")]
    plan = plan_lettering((360, 640), shot(lines, ["a", "b"]), regions, NAMES, "zh")
    assert plan.items == [] and plan.dropped == ["你好。", "嗯。"]
    plain = backdrop(360, 640)
    assert letter_shot(plain, shot(lines, ["a", "b"]), regions, NAMES, "zh").tobytes() == plain.tobytes()


def test_letter_panel_frames_the_picture() -> None:
    plain = backdrop(200, 300)
    framed = letter_panel(plain)
    px = np.asarray(framed).astype(int)
    assert (px[0, :] == [248, 246, 240]).all() and (px[:, -1] == [248, 246, 240]).all()  # the gutter
    inner = max(2, round(200 * 0.012))
    assert np.abs(px[inner + 1, 100] - np.array([34, 28, 36])).sum() < 5  # the ink line
    assert (px[150, 100] == np.asarray(plain)[150, 100]).all()  # the picture itself is untouched


def test_bad_input_is_rejected_naming_the_value() -> None:
    with pytest.raises(NovelcomicError, match="region of 'a'"):
        plan_lettering((360, 640), shot([Line(speaker="a", text="x")], ["a"]), {"a": (10, 10, 5, 50)}, NAMES, "zh")
    with pytest.raises(NovelcomicError, match="0x640"):
        plan_lettering((0, 640), shot([], []), {}, NAMES, "zh")
    with pytest.raises(NovelcomicError, match="PIL image"):
        letter_shot("frame.png", shot([], []), {}, NAMES, "zh")  # type: ignore[arg-type]
    with pytest.raises(NovelcomicError, match="font"):
        LetterFonts(12, "zh")  # type: ignore[arg-type]


def test_animatic_frames_are_comic_panels_with_lettering() -> None:
    """The offline backend letters through this module: bubbles clear of the drawn heads."""
    from novelcomic.models import Character, Location, Scene
    from novelcomic.render.animatic import AnimaticBackend
    from novelcomic.render.base import CharacterRef, ShotRequest

    cast = [Character(id="a", name="阿青", appearance="青衣"), Character(id="b", name="老陈", appearance="白发")]
    lines = [Line(text="两人相遇。"), Line(speaker="a", text="你好。"), Line(speaker="b", text="好久不见！", emotion="excited")]
    s = shot(lines, ["a", "b"], "full")
    req = ShotRequest(chapter="01", scene=Scene(id="s01", location="l", shots=[s]), shot=s,
                      characters=[CharacterRef(c) for c in cast], location=Location(id="l", name="河边"), props=[],
                      style=[], width=360, height=640, seed=1, speaker_names=NAMES)
    on = AnimaticBackend().render_shot(req)
    off = AnimaticBackend(lettering=False).render_shot(req)
    assert on.meta["lettered"] and sorted(on.meta["lettering"]) == sorted(ln.text for ln in lines)
    mask = diff_mask(on.image, off.image)
    assert not mask[int(640 * (1 - SUBTITLE_BAND)):].any()
    for l, t, r, b in face_boxes(on.regions).values():
        assert not mask[int(t):int(np.ceil(b)), int(l):int(np.ceil(r))].any()
    px = np.asarray(on.image).astype(int)
    assert np.abs(px[0, 0] - np.array([248, 246, 240])).sum() < 10  # the panel gutter


def test_caption_lines_break_between_chinese_words() -> None:
    """Caption boxes wrap like the subtitles: never 灯|笼 or 好朋|友 (seen in the example's first shot)."""
    from novelcomic.fonts import pil_font
    from novelcomic.render.lettering import wrap_text

    text = "元宵节的黄昏，小雨提着灯笼跑到河边，去找她的好朋友阿青。"
    font = pil_font(30)
    for chars in range(6, 20):
        lines = wrap_text(text, font, font.getlength("字") * chars)
        assert "".join(lines) == text
        for a, b in zip(lines, lines[1:]):
            assert a[-1] + b[0] not in ("灯笼", "朋友", "黄昏", "河边"), (chars, lines)
            assert not ("好朋" in a[-2:] and b.startswith("友")), (chars, lines)
    english = wrap_text("The lantern drifted down the river, past the old mill.", font, font.getlength("M") * 12)
    assert " ".join(english) == "The lantern drifted down the river, past the old mill."
