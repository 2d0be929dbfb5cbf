"""The animatic image backend and character looks, checked on real rendered pixels."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from novelcomic.errors import NovelcomicError
from novelcomic.models import Camera, Character, Line, Location, Prop, Scene, Shot, VoiceSpec
from novelcomic.registry import image_backends
from novelcomic.render.animatic import SUBTITLE_BAND, AnimaticBackend, key_line, wrap_text
from novelcomic.render.base import CharacterRef, ImageResult, SheetRequest, ShotRequest
from novelcomic.render.look import CharacterLook, draw_character, draw_head_and_shoulders, look_for

HERO = Character(id="hero", name="林小红", appearance="红衣少女，黑色长发，腰系金带")
ELDER = Character(id="elder", name="白胡子老人", appearance="白发老者，蓝色长袍，白胡子，拄着木杖")
STRANGER = Character(id="stranger", name="陌生人")
CAST = {c.id: c for c in (HERO, ELDER, STRANGER)}
RIVER = Location(id="river", name="河边小村", time_of_day="day")
HALL = Location(id="hall", name="大殿", interior=True, time_of_day="night")
WOOD = Location(id="bamboo", name="竹林", time_of_day="dusk")
W, H = 360, 640


def shot_request(
    cast: list[Character],
    size: str = "medium",
    location: Location | None = RIVER,
    lines: list[Line] | None = None,
    mood: str = "calm",
    width: int = W,
    height: int = H,
    seed: int = 1,
    props: list[Prop] | None = None,
) -> ShotRequest:
    props = props or []
    shot = Shot(
        id="s01-01", characters=[c.id for c in cast], props=[p.id for p in props], camera=Camera(size=size),
        lines=lines if lines is not None else [Line(speaker=cast[0].id if cast else "narrator", text="你好，朋友。")],
        mood=mood,
    )
    scene = Scene(id="s01", location=location.id if location else None, shots=[shot])
    return ShotRequest(
        chapter="ch1", scene=scene, shot=shot, characters=[CharacterRef(c) for c in cast], location=location,
        props=props, style=["国漫"], width=width, height=height, seed=seed,
        speaker_names={c.id: c.name for c in cast},
    )


def pixels(result: ImageResult) -> np.ndarray:
    return np.asarray(result.image.convert("RGB")).astype(int)


def crop(result: ImageResult, box: tuple[int, int, int, int]) -> np.ndarray:
    l, t, r, b = box
    return pixels(result)[t:b, l:r].reshape(-1, 3)


def near(region: np.ndarray, colour: tuple[int, int, int], tol: int = 40) -> float:
    """Fraction of the region's pixels within ``tol`` (sum of channel differences) of ``colour``."""
    return float((np.abs(region - np.array(colour)).sum(axis=1) < tol).mean())


def dominant(region: np.ndarray, ignore: tuple[int, int, int]) -> tuple[int, int, int]:
    """The most common exact colour of the region, leaving out pixels close to ``ignore``."""
    keep = region[np.abs(region - np.array(ignore)).sum(axis=1) > 30]
    (colour, _), = Counter(map(tuple, keep.tolist())).most_common(1)
    return colour


@pytest.fixture(scope="module")
def backend() -> AnimaticBackend:
    return AnimaticBackend()


# --------------------------------------------------------------------------- sizes and determinism


@pytest.mark.parametrize("size", [(1216, 832), (360, 640)])
def test_sheet_has_the_requested_size_and_a_region_per_pose(backend: AnimaticBackend, size: tuple[int, int]) -> None:
    result = backend.design_character(SheetRequest(HERO, ["国漫"], size[0], size[1], seed=3))
    assert result.image.size == size
    assert set(result.regions) >= {"front", "three_quarter", "side", "back"}
    for l, t, r, b in result.regions.values():
        assert 0 <= l < r <= size[0] and 0 <= t < b <= size[1]
    # the figure in the front cell wears the look's clothing, as its dominant colour
    front = crop(result, result.regions["front"])
    assert dominant(front, ignore=(251, 250, 247)) == look_for(HERO).clothing


@pytest.mark.parametrize("size", [(360, 640), (640, 360), (270, 480), (720, 1280)])
def test_shot_has_the_requested_size(backend: AnimaticBackend, size: tuple[int, int]) -> None:
    result = backend.render_shot(shot_request([HERO, ELDER], "full", width=size[0], height=size[1]))
    assert result.image.size == size
    assert result.image.mode == "RGB"
    assert set(result.regions) == {"hero", "elder"}


def test_same_request_gives_identical_pixels(backend: AnimaticBackend) -> None:
    req = shot_request([HERO, ELDER, STRANGER], "wide", WOOD, mood="tense")
    a, b = backend.render_shot(req), AnimaticBackend().render_shot(req)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.regions == b.regions
    sheet = SheetRequest(ELDER, [], 608, 416, seed=1)
    assert backend.design_character(sheet).image.tobytes() == backend.design_character(sheet).image.tobytes()


def test_seed_moves_details_but_never_the_characters(backend: AnimaticBackend) -> None:
    one = backend.render_shot(shot_request([HERO, ELDER], "full", RIVER, seed=1))
    two = backend.render_shot(shot_request([HERO, ELDER], "full", RIVER, seed=2))
    assert one.regions == two.regions
    for cid, box in one.regions.items():
        clothing = np.array(look_for(CAST[cid]).clothing)
        where_one = (crop(one, box) == clothing).all(axis=1)
        assert where_one.mean() > 0.05
        assert np.array_equal(where_one, (crop(two, box) == clothing).all(axis=1))
    assert one.image.tobytes() != two.image.tobytes()  # clouds moved


def test_looks_do_not_depend_on_the_process_hash_seed() -> None:
    code = "from novelcomic.models import Character; from novelcomic.render.look import look_for; " \
           "print(look_for(Character(id='x7', name='x')))"
    outs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1
    assert outs.pop().strip() == repr(look_for(Character(id="x7", name="x")))


# --------------------------------------------------------------------------- consistency


CONSISTENCY_SHOTS = [
    ([HERO, ELDER], "full", RIVER, "calm"),
    ([HERO], "close_up", HALL, "tense"),
    ([STRANGER, HERO, ELDER], "wide", WOOD, "mysterious"),
    ([ELDER, HERO], "medium", RIVER, "joyful"),
    ([HERO, ELDER, STRANGER], "extreme_wide", HALL, "sad"),
    ([HERO, ELDER], "extreme_close_up", WOOD, "action"),
]


def test_a_character_wears_the_same_colours_in_every_shot(backend: AnimaticBackend) -> None:
    sheet = backend.design_character(SheetRequest(HERO, [], 1216, 832, seed=0))
    sheet_colour = dominant(crop(sheet, sheet.regions["front"]), ignore=(251, 250, 247))
    hero, elder = look_for(HERO), look_for(ELDER)
    assert sheet_colour == hero.clothing
    for cast, size, location, mood in CONSISTENCY_SHOTS:
        result = backend.render_shot(shot_request(cast, size, location, mood=mood))
        assert "hero" in result.regions, (size, result.regions)
        region = crop(result, result.regions["hero"])
        assert near(region, sheet_colour) > 0.12, f"hero's clothing missing in the {size} shot"
        exact = float((region == np.array(sheet_colour)).all(axis=1).mean())
        assert exact > 0.05, f"hero's clothing colour was altered in the {size} shot ({exact:.3f})"
        if "elder" in result.regions:
            other = crop(result, result.regions["elder"])
            assert near(other, elder.clothing) > 0.12
            assert near(other, hero.clothing) < 0.05, f"elder's region looks like the hero in the {size} shot"


def test_two_characters_get_clearly_different_palettes() -> None:
    looks = [look_for(Character(id=f"c{i}", name=f"c{i}")) for i in range(12)]
    assert len({lk.clothing for lk in looks}) >= 6
    hero, elder = look_for(HERO), look_for(ELDER)
    assert sum(abs(a - b) for a, b in zip(hero.clothing, elder.clothing)) > 150


def test_look_for_is_stable() -> None:
    assert look_for(HERO) == look_for(HERO.model_copy())
    assert isinstance(look_for(HERO), CharacterLook)


# --------------------------------------------------------------------------- appearance words


def _reddish(c: tuple[int, int, int]) -> bool:
    return c[0] > c[1] + 60 and c[0] > c[2] + 60


def _luma(c: tuple[int, int, int]) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


@pytest.mark.parametrize("ident", ["a", "b", "c", "d", "e"])
def test_appearance_words_set_the_look(ident: str) -> None:
    red = look_for(Character(id=ident, name="x", appearance="一身红衣"))
    assert _reddish(red.clothing)
    assert _reddish(look_for(Character(id=ident, name="x", appearance="wears a crimson robe")).clothing)
    white_hair = look_for(Character(id=ident, name="x", appearance="白发，青衫"))
    assert _luma(white_hair.hair) > 200
    assert white_hair.clothing[1] > white_hair.clothing[0] + 40  # 青 is green-blue
    assert _luma(look_for(Character(id=ident, name="x", appearance="long white hair, green dress")).hair) > 200
    blue = look_for(Character(id=ident, name="x", appearance="蓝色长袍，金色腰带"))
    assert blue.clothing[2] > blue.clothing[0] + 60 and blue.accent[0] > 150 and blue.accent[2] < 100
    elder = look_for(Character(id=ident, name="x", appearance="白胡子老头，矮胖"))
    assert elder.beard and elder.age == "old" and elder.width > 1.1 and elder.height < 0.95
    assert _luma(elder.beard_colour) > 200
    tall = look_for(Character(id=ident, name="x", appearance="身材高大，头戴斗笠，戴着眼镜，背着长剑"))
    assert tall.height > 1.05 and tall.hat == "conical" and tall.glasses and tall.held == "sword"
    styles = {
        "长发": "long", "短发": "short", "扎着马尾": "ponytail", "梳着发髻": "bun", "光头和尚": "bald",
        "两条辫子": "braid", "short black hair": "short",
    }
    for words, style in styles.items():
        assert look_for(Character(id=ident, name="x", appearance=words)).hair_style == style, words
    child = look_for(Character(id=ident, name="x", appearance="小孩", voice=VoiceSpec(age="child")))
    assert child.age == "child" and child.height < 0.8


def test_short_hair_is_not_a_short_body() -> None:
    assert look_for(Character(id="q", name="q", appearance="short brown hair")).height > 0.95


def test_red_clothing_renders_reddish_and_white_hair_light(backend: AnimaticBackend) -> None:
    who = Character(id="zz", name="某人", appearance="红衣，白发")
    result = backend.render_shot(shot_request([who], "close_up", HALL))
    region = crop(result, result.regions["zz"])
    assert near(region, look_for(who).clothing) > 0.12 and _reddish(look_for(who).clothing)
    assert near(region, look_for(who).hair, tol=30) > 0.05


# --------------------------------------------------------------------------- framing and layout


def test_camera_size_scales_the_figures(backend: AnimaticBackend) -> None:
    heights = {}
    for size in ("extreme_wide", "wide", "full"):
        l, t, r, b = backend.render_shot(shot_request([HERO], size)).regions["hero"]
        heights[size] = b - t
    assert heights["extreme_wide"] < heights["wide"] < heights["full"]
    cast = [HERO, ELDER, STRANGER]
    close = backend.render_shot(shot_request(cast, "close_up", lines=[Line(speaker="elder", text="嗯。")]))
    assert "elder" in close.regions and len(close.regions) == 2
    extreme = backend.render_shot(shot_request(cast, "extreme_close_up", lines=[Line(speaker="stranger", text="嗯。")]))
    assert list(extreme.regions) == ["stranger"]
    l, t, r, b = extreme.regions["stranger"]
    assert (r - l) * (b - t) > 0.3 * W * H  # large


def test_characters_are_arranged_left_to_right(backend: AnimaticBackend) -> None:
    result = backend.render_shot(shot_request([STRANGER, HERO, ELDER], "full"))
    centres = [(result.regions[c][0] + result.regions[c][2]) / 2 for c in ("stranger", "hero", "elder")]
    assert centres == sorted(centres)


def test_a_shot_without_characters_is_backdrop_only(backend: AnimaticBackend) -> None:
    empty = backend.render_shot(shot_request([], "wide", WOOD, lines=[Line(text="竹林深处，一片寂静。")]))
    assert empty.regions == {}
    assert empty.image.size == (W, H)
    sword = Prop(id="sword", name="青锋剑")
    with_prop = backend.render_shot(shot_request([], "wide", WOOD, props=[sword]))
    assert with_prop.regions == {} and "sword" in with_prop.meta["props"]
    l, t, r, b = with_prop.meta["props"]["sword"]
    plain = backend.render_shot(shot_request([], "wide", WOOD))
    assert not np.array_equal(pixels(with_prop)[t:b, l:r], pixels(plain)[t:b, l:r])


def test_locations_change_the_backdrop_and_the_look_stays(backend: AnimaticBackend) -> None:
    images = [pixels(backend.render_shot(shot_request([], "wide", loc, lines=[]))) for loc in (RIVER, HALL, WOOD)]
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.abs(images[i] - images[j]).mean() > 10
    night, day = (
        pixels(backend.render_shot(shot_request([], "wide", Location(id="n", name="山", time_of_day=t), lines=[])))
        for t in ("night", "day")
    )
    assert night[: H // 3].mean() < day[: H // 3].mean() - 60  # night sky is dark


# --------------------------------------------------------------------------- lettering


def _lettering_mask(req: ShotRequest) -> tuple[np.ndarray, ImageResult, ImageResult]:
    on = AnimaticBackend(lettering=True).render_shot(req)
    off = AnimaticBackend(lettering=False).render_shot(req)
    return np.abs(pixels(on) - pixels(off)).sum(axis=2) > 0, on, off


@pytest.mark.parametrize(
    "cast, size, lines, width, height",
    [
        ([HERO, ELDER], "full", [Line(speaker="hero", text="老人家，请问这条河通向哪里？我已经走了三天三夜了，实在是走不动了。")], W, H),
        ([HERO], "close_up", [Line(speaker="hero", text="站住！", emotion="angry")], W, H),
        ([ELDER, HERO], "extreme_close_up", [Line(speaker="hero", text="Follow me, and don't look back.")], W, H),
        ([HERO, ELDER], "wide", [Line(text="夕阳西下，两人沿着河岸慢慢走着，谁也没有说话。" * 4)], W, H),
        ([HERO, ELDER], "medium", [Line(speaker="elder", text="你终于来了。我等了你很多年。")], 640, 360),
        ([], "wide", [Line(text="竹林深处。")], 270, 480),
    ],
)
def test_lettering_stays_in_the_top_part(cast, size, lines, width, height) -> None:  # type: ignore[no-untyped-def]
    mask, on, _ = _lettering_mask(shot_request(cast, size, lines=lines, width=width, height=height))
    rows = np.nonzero(mask.any(axis=1))[0]
    assert rows.size, "nothing was lettered"
    band = int(height * (1 - SUBTITLE_BAND))
    assert not mask[band:].any(), "lettering reached the subtitle band"
    # the bubble or caption body is near the top: most lettered pixels are in the top third
    assert mask[: height // 3].sum() > 0.8 * mask.sum()
    assert on.meta["key_line"] == lines[0].text


def test_bubble_tail_points_at_the_speaker(backend: AnimaticBackend) -> None:
    for speaker in ("hero", "elder"):
        text = "老人家，请问这条河通向哪里？我已经走了三天三夜了。"  # a bubble as wide as the frame
        req = shot_request([HERO, ELDER], "full", lines=[Line(speaker=speaker, text=text)])
        mask, on, _ = _lettering_mask(req)
        rows = np.nonzero(mask.any(axis=1))[0]
        tip_x = np.nonzero(mask[rows[-1]])[0].mean()
        l, _, r, _ = on.regions[speaker]
        assert l <= tip_x <= r, f"tail tip at x={tip_x:.0f}, {speaker} is drawn at {l}..{r}"


def test_chinese_glyphs_render(backend: AnimaticBackend) -> None:
    one, on, off = _lettering_mask(shot_request([HERO], "full", lines=[Line(speaker="hero", text="你好，朋友。")]))
    two, on2, _ = _lettering_mask(shot_request([HERO], "full", lines=[Line(speaker="hero", text="再见，江湖。")]))
    assert one.sum() > 500
    ys, xs = np.nonzero(one)
    bubble = (slice(ys.min(), ys.max()), slice(xs.min(), xs.max()))
    ink = (pixels(on)[bubble].sum(axis=2) < 200).sum()
    assert ink > 100, "no dark glyph pixels inside the bubble"
    # different characters of the same count draw different pixels: real glyphs, not tofu boxes
    changed = (np.abs(pixels(on)[bubble] - pixels(on2)[bubble]).sum(axis=2) > 100).sum()
    assert changed > 100


def test_key_line_prefers_dialogue_by_someone_in_the_shot() -> None:
    shot = Shot(id="k", characters=["hero"], lines=[
        Line(text="旁白。"), Line(speaker="ghost", text="我不在画面里。"), Line(speaker="hero", text="我在。"),
    ])
    assert key_line(shot).text == "我在。"
    assert key_line(Shot(id="k", lines=[Line(text="只有旁白。")])).text == "只有旁白。"
    assert key_line(Shot(id="k")) is None


def test_wrap_text_fits_and_keeps_punctuation_off_line_starts() -> None:
    from novelcomic.fonts import pil_font

    font = pil_font(20)
    lines = wrap_text("夕阳西下，三人沿着山路慢慢走向古寺，谁也没有说话。And then, quite suddenly, it rained.", font, 150)
    assert len(lines) > 3
    assert all(font.getlength(s) <= 150 * 1.15 for s in lines)
    assert not any(s[0] in "，。,." for s in lines)


# --------------------------------------------------------------------------- bad input


def test_bad_sizes_are_rejected_naming_the_value(backend: AnimaticBackend) -> None:
    with pytest.raises(NovelcomicError, match="361x640"):
        backend.render_shot(shot_request([HERO], width=361))
    with pytest.raises(NovelcomicError, match="0x640"):
        backend.render_shot(shot_request([HERO], width=0))
    with pytest.raises(NovelcomicError, match="32x32"):
        backend.design_character(SheetRequest(HERO, [], 32, 32, seed=0))


def test_mismatched_characters_are_rejected(backend: AnimaticBackend) -> None:
    req = shot_request([HERO, ELDER])
    req.characters = req.characters[:1]
    with pytest.raises(NovelcomicError, match="elder"):
        backend.render_shot(req)
    req = shot_request([HERO])
    req.characters = [CharacterRef(STRANGER)]
    with pytest.raises(NovelcomicError, match="stranger"):
        backend.render_shot(req)
    req = shot_request([HERO], location=RIVER)
    req.location = HALL
    with pytest.raises(NovelcomicError, match="hall"):
        backend.render_shot(req)


def test_bad_options_are_rejected() -> None:
    with pytest.raises(NovelcomicError, match="7"):
        AnimaticBackend(supersample=7)
    with pytest.raises(NovelcomicError, match="lettering"):
        AnimaticBackend(lettering="yes")  # type: ignore[arg-type]
    with pytest.raises(NovelcomicError, match="pose 'upside_down'"):
        pose = "upside_down"
        draw_character(Image.new("RGB", (100, 200)), look_for(HERO), (0, 0, 100, 200), pose)  # type: ignore[arg-type]


def test_registered_as_animatic_with_options() -> None:
    backend = image_backends.create("animatic", {"lettering": False, "supersample": 1})
    assert isinstance(backend, AnimaticBackend) and backend.name == "animatic" and not backend.lettering
    assert backend.render_shot(shot_request([HERO])).image.size == (W, H)


# --------------------------------------------------------------------------- drawing API and speed


def test_draw_character_fills_its_box_and_reports_it() -> None:
    image = Image.new("RGB", (300, 600), (255, 255, 255))
    look = look_for(ELDER)
    fig = draw_character(image, look, (50, 50, 250, 550), "side", "happy", facing=-1)
    l, t, r, b = fig.box
    assert 50 <= l < r <= 250 and 50 <= t < b <= 550 and b - t > 400
    hl, ht, hr, hb = fig.head
    assert t <= ht < hb < t + (b - t) * 0.3
    region = np.asarray(image).astype(int)[t:b, l:r].reshape(-1, 3)
    assert near(region, look.clothing) > 0.1
    bust = Image.new("RGB", (300, 300), (255, 255, 255))
    fig = draw_head_and_shoulders(bust, look, (0, 0, 300, 300), "three_quarter")
    assert fig.box[3] == 300 and (fig.head[3] - fig.head[1]) > 100


def test_a_720x1280_shot_renders_fast(backend: AnimaticBackend) -> None:
    req = shot_request([HERO, ELDER], "medium", HALL, mood="tense", width=720, height=1280,
                       lines=[Line(speaker="elder", text="你终于来了。我在这里等了你整整十年。")])
    backend.render_shot(req)  # fonts and caches warm
    best = min(_timed(lambda: backend.render_shot(req)) for _ in range(3))
    assert best < 0.5, f"{best:.3f}s"


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --------------------------------------------------------------------------- places, periods, species


def _backdrop(loc: Location, period: str | None = None, language: str = "zh") -> np.ndarray:
    req = shot_request([], "wide", loc, lines=[])
    req.language = language
    if period:
        req.period = period  # type: ignore[attr-defined]  # the field the pipeline may add
    return pixels(AnimaticBackend(lettering=False).render_shot(req))


def _hist_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Half the L1 distance of the two images' 4×4×4 colour histograms (0 same … 1 disjoint)."""
    def hist(x: np.ndarray) -> np.ndarray:
        q = (x // 64).reshape(-1, 3)
        h = np.bincount(q[:, 0] * 16 + q[:, 1] * 4 + q[:, 2], minlength=64).astype(float)
        return h / h.sum()
    return float(np.abs(hist(a) - hist(b)).sum() / 2)


KINDS = ("sea", "mountain", "cave", "forest", "river", "palace", "temple", "city_street", "village", "interior",
         "battlefield", "sky", "field")


def test_every_kind_of_place_has_its_own_backdrop() -> None:
    images = {k: _backdrop(Location(id="p", name="某地", kind=k, interior=k == "interior")) for k in KINDS}
    for i, a in enumerate(KINDS):
        for b in KINDS[i + 1:]:
            diff = np.abs(images[a] - images[b]).mean()
            assert diff > 8 or _hist_distance(images[a], images[b]) > 0.15, (a, b, diff)
    sea, cave = images["sea"], images["cave"]
    assert sea[H // 2:, :, 2].mean() > sea[H // 2:, :, 0].mean() + 30  # the sea is blue below the horizon
    assert cave.mean() < images["field"].mean() - 30  # a cave is dark


def test_two_places_of_one_kind_never_look_the_same() -> None:
    for kind in ("sea", "mountain", "village", "interior"):
        a = _backdrop(Location(id="a1", name="东村", kind=kind, interior=kind == "interior"))
        b = _backdrop(Location(id="b2", name="西村", kind=kind, interior=kind == "interior"))
        assert np.abs(a - b).mean() > 6, kind


def test_the_period_styles_the_buildings() -> None:
    street = Location(id="st", name="Main Street", kind="city_street")
    china, england, modern = (_backdrop(street, p, "en") for p in ("ancient_china", "victorian_england", "modern_city"))
    assert np.abs(china - england).mean() > 6 and np.abs(england - modern).mean() > 6
    room = Location(id="rm", name="the drawing-room", kind="interior", interior=True)
    assert np.abs(_backdrop(room, "victorian_england", "en") - _backdrop(room, "ancient_china", "en")).mean() > 10


def test_weather_only_when_set() -> None:
    plain = Location(id="w", name="the moor", kind="field")
    rain = plain.model_copy(update={"weather": "rain"})
    unknown, rainy = _backdrop(plain, language="en"), _backdrop(rain, language="en")
    assert np.abs(unknown - rainy).mean() > 8
    sky = unknown[: H // 4]
    assert sky[..., 2].mean() > sky[..., 0].mean() + 40  # unknown: a blue daylight sky, no grey rain
    night = _backdrop(plain.model_copy(update={"time_of_day": "night"}), language="en")
    assert night[: H // 3].mean() < unknown[: H // 3].mean() - 60
    meta = AnimaticBackend().render_shot(shot_request([], "wide", rain, lines=[])).meta
    assert meta["kind"] == "field" and meta["weather"] == "rain"
    assert AnimaticBackend().render_shot(shot_request([], "wide", plain, lines=[])).meta["weather"] == "unknown"


def test_a_monkey_sheet_differs_from_a_humans() -> None:
    person = Character(id="same", name="石头", appearance="黄袍")
    monkey = person.model_copy(update={"species": "monkey"})
    backend = AnimaticBackend()
    a, b = (pixels(backend.design_character(SheetRequest(c, ["国漫"], 608, 416, seed=1))) for c in (person, monkey))
    front = backend.design_character(SheetRequest(monkey, ["国漫"], 608, 416, seed=1)).regions["front"]
    l, t, r, btm = front
    assert np.abs(a[t:btm, l:r] - b[t:btm, l:r]).mean() > 5
    result = backend.design_character(SheetRequest(monkey, ["国漫"], 608, 416, seed=1))
    assert result.meta["look"]["species"] == "monkey"


def test_a_victorian_sheet_is_not_hanfu() -> None:
    girl = Character(id="eliza", name="Elizabeth", appearance="dark hair", voice=VoiceSpec(gender="female"))
    req = SheetRequest(girl, [], 608, 416, seed=1, language="en")
    req.period = "victorian_england"  # type: ignore[attr-defined]
    meta = AnimaticBackend().design_character(req).meta["look"]
    assert meta["garment"] == "dress" and meta["region"] == "england"


def _calls(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> list:
    """Record the calls of ``cls.name`` (still drawing) and return the list they land in."""
    seen: list = []
    original = getattr(cls, name)

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, spy)
    return seen


def test_an_english_place_of_unknown_kind_has_no_chinese_roofs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A place whose kind nobody knows is painted by its words (a village, a church …): in an
    English book with brick houses and a spire, never the flicked-up eaves of a Chinese roof."""
    from novelcomic.render import animatic

    roofs = _calls(monkeypatch, animatic._Backdrop, "_roof")
    village = Location(id="lb", name="Longbourn village church")
    england = _backdrop(village, "victorian_england", "en")
    assert roofs == []
    china = _backdrop(village, "ancient_china", "en")
    assert roofs and np.abs(england - china).mean() > 3


def test_a_library_has_books_and_a_western_book_is_not_a_scroll(monkeypatch: pytest.MonkeyPatch) -> None:
    from novelcomic.render import animatic

    cases = _calls(monkeypatch, animatic._Place, "_bookcase")
    library = Location(id="lib", name="the library", kind="interior", interior=True)
    room = Location(id="lib", name="the drawing-room", kind="interior", interior=True)
    _backdrop(room, "victorian_england", "en")
    assert cases == []
    with_books = _backdrop(library, "victorian_england", "en")
    assert len(cases) == 1
    _backdrop(Location(id="sf", name="书房", kind="interior", interior=True), "ancient_china")
    assert len(cases) == 2
    assert np.abs(with_books - _backdrop(room, "victorian_england", "en")).mean() > 3

    icons: list = []
    original = animatic._prop_icon
    monkeypatch.setattr(animatic, "_prop_icon", lambda draw, kind, box, colour: (icons.append(kind), original(draw, kind, box, colour)))
    for period, language in (("victorian_england", "en"), ("ancient_china", "zh")):
        req = shot_request([], "wide", RIVER, lines=[], props=[Prop(id="bk", name="book"), Prop(id="lt", name="a letter")])
        req.language, req.period = language, period  # type: ignore[attr-defined]
        AnimaticBackend().render_shot(req)
    assert icons == ["book", "letter", "scroll", "scroll"]


def test_a_group_is_drawn_as_a_crowd_in_its_colours() -> None:
    """黄巾 (a group, named for its yellow headbands) is three figures with yellow bands round the
    brow, not one person; the same character when not a group is one figure."""
    band = Character(id="hj", name="黄巾", role="extra", group=True)
    look = look_for(band, "ancient_china", "zh")
    assert look.hat == "band" and look.hat_colour[0] > 150 and look.hat_colour[2] < 100  # yellow
    one = band.model_copy(update={"group": False, "role": "supporting"})
    backend = AnimaticBackend(lettering=False)
    crowd, single = (backend.render_shot(shot_request([c], "full", RIVER, lines=[])) for c in (band, one))
    from novelcomic.render.look import shade

    behind = shade(look.clothing, 0.82)  # the two behind stand a step back, in shade
    assert near(pixels(crowd).reshape(-1, 3), behind, 12) > 0.01 > near(pixels(single).reshape(-1, 3), behind, 12)
    assert set(crowd.regions) == {"hj"} and crowd.regions["hj"] == single.regions["hj"]


def test_a_scene_that_names_no_place_is_drawn_where_its_words_put_it() -> None:
    """No location at all: a conversation is in a room (the Bennets' opening talk, not a random
    mountain), a battle's narration on a battlefield, a bare line of narration as before."""
    backend = AnimaticBackend(lettering=False)
    talk = [Line(speaker="hero", text="My dear, have you heard?"), Line(speaker="elder", text="I have not.")]
    meta = backend.render_shot(shot_request([HERO, ELDER], "medium", None, lines=talk)).meta
    assert meta["kind"] == "interior" and meta["interior"] is True
    battle = [Line(text="两军相对，擂鼓列阵，阵前厮杀。")]
    assert backend.render_shot(shot_request([], "wide", None, lines=battle)).meta["kind"] == "battlefield"
    assert backend.render_shot(shot_request([], "wide", None, lines=[Line(text="夜深了。")])).meta["kind"] == "unknown"
