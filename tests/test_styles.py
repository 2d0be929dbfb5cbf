"""The style library: built-in styles and modifiers, resolving, combining, project overrides,
prompt composition within CLIP's window, and the ``novelcomic styles`` command."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from novelcomic.cli.style_cmds import styles as styles_cmd
from novelcomic.errors import NovelcomicError
from novelcomic.styles import (
    BUILTIN_STYLES,
    CLIP_BUDGET,
    LensModifier,
    Style,
    compose_prompt,
    estimate_clip_tokens,
    load_styles,
)

REQUIRED = [
    "国漫", "日漫", "美漫", "韩漫", "水墨", "水彩", "赛博朋克", "像素", "3D 卡通", "黑白漫画", "油画", "版画", "剪纸",
    "浮世绘", "工笔", "蒸汽朋克", "低多边形", "黏土", "彩铅", "厚涂", "赛璐璐", "复古海报", "扁平插画", "暗黑哥特",
]
REQUIRED_MODIFIERS = ["特写", "近景", "中景", "全景", "远景", "广角", "鱼眼", "俯视", "仰视", "侧面", "背影", "运动模糊", "景深虚化", "逆光", "剪影"]


def test_builtin_library_has_every_required_style_complete() -> None:
    assert BUILTIN_STYLES.parts[-2:] == ("assets", "styles.yaml")
    lib = load_styles()
    assert len(lib.styles) >= 24
    for name in REQUIRED:
        style = lib.styles[name]
        assert isinstance(style, Style)
        assert style.positive.strip() and style.negative.strip() and style.positive_zh.strip(), name
        assert style.aliases, name
        # The Chinese fragment is Chinese, the English ones are not.
        assert any("\u4e00" <= ch <= "\u9fff" for ch in style.positive_zh), name
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in style.positive + style.negative), name
        assert 1 <= style.settings.steps <= 200 and style.settings.scheduler.endswith("Scheduler")
        assert set(style.settings.sizes) == {"sd15", "sdxl", "kolors"}
    for name in REQUIRED_MODIFIERS:
        mod = lib.modifiers[name]
        assert isinstance(mod, LensModifier) and mod.positive and mod.positive_zh, name
    # Style-specific settings override the defaults; unspecified ones inherit them.
    assert lib.styles["水墨"].settings.steps == 35 and lib.styles["国漫"].settings.steps == 30
    assert lib.styles["黑白漫画"].animatic.monochrome and not lib.styles["国漫"].animatic.monochrome
    assert lib.styles["水墨"].settings.size("sdxl", "16:9") == (1344, 768)


@pytest.mark.parametrize(
    ("alias", "name"),
    [("ink-wash", "水墨"), ("Ink Wash", "水墨"), ("CYBERPUNK", "赛博朋克"), ("3d-cartoon", "3D 卡通"), ("3D卡通", "3D 卡通"),
     ("ukiyo_e", "浮世绘"), ("close-up", "特写"), ("backlit", "逆光")],
)
def test_aliases_resolve_case_and_separator_insensitively(alias: str, name: str) -> None:
    assert load_styles().find(alias).name == name


def test_combining_styles_joins_positives_unions_negatives_settings_from_first() -> None:
    lib = load_styles()
    ink, cyber = lib.styles["水墨"], lib.styles["赛博朋克"]
    r = lib.resolve(["ink-wash", "cyberpunk", "逆光"])
    assert r.names == ("水墨", "赛博朋克", "逆光")
    for frag in (ink.positive, cyber.positive):
        for item in frag.split(", "):
            assert item in r.positive
    # Each style's identity comes before any style's trailing words.
    assert r.positive.index("cyberpunk style") < r.positive.index("monochrome ink")
    negatives = r.negative.split(", ")
    assert len(negatives) == len(set(negatives))  # a union: no repeats
    assert "photorealistic" in negatives and "medieval" in negatives and "watermark" in negatives
    # 水墨 rejects neon but 赛博朋克 asks for it: the combination must not fight itself.
    assert "neon" not in negatives
    assert r.settings == ink.settings and r.animatic == ink.animatic
    assert [m.name for m in r.modifiers] == ["逆光"]


def test_unknown_style_suggests_close_matches() -> None:
    lib = load_styles()
    with pytest.raises(NovelcomicError) as err:
        lib.resolve(["国漫", "赛博"])
    assert "'赛博'" in str(err.value) and "赛博朋克" in str(err.value)
    with pytest.raises(NovelcomicError, match="水彩"):
        lib.resolve(["watercolr"])
    with pytest.raises(NovelcomicError, match="at least one style"):
        lib.resolve(["逆光"])


def test_project_styles_yaml_merges_over_builtins(tmp_path: Path) -> None:
    (tmp_path / "styles.yaml").write_text(
        "styles:\n"
        "  国漫:\n"
        "    positive: my donghua look, thick lines\n"
        "    settings: {steps: 12}\n"
        "  我的风格:\n"
        "    aliases: [mine]\n"
        "    positive: pastel dreamscape\n"
        "    negative: dark\n"
        "modifiers:\n"
        "  雨夜:\n"
        "    positive: rainy night\n",
        encoding="utf-8",
    )
    lib = load_styles(tmp_path)
    builtin = load_styles()
    gm = lib.styles["国漫"]
    assert gm.positive == "my donghua look, thick lines" and gm.settings.steps == 12
    # Fields the override does not name keep the built-in values.
    assert gm.negative == builtin.styles["国漫"].negative and gm.aliases == builtin.styles["国漫"].aliases
    assert gm.settings.guidance_scale == builtin.styles["国漫"].settings.guidance_scale
    assert lib.find("mine").name == "我的风格" and lib.styles["我的风格"].settings.steps == 30
    assert "rainy night" in lib.resolve(["mine", "雨夜"]).modifiers[0].positive
    assert len(lib.styles) == len(builtin.styles) + 1


def test_bad_project_styles_yaml_names_file_line_field(tmp_path: Path) -> None:
    (tmp_path / "styles.yaml").write_text("styles:\n  新风格:\n    aliases: [x]\n    positive: a look\n", encoding="utf-8")
    with pytest.raises(NovelcomicError) as err:
        load_styles(tmp_path)
    msg = str(err.value)
    assert "styles.yaml:2" in msg and "negative" in msg
    (tmp_path / "styles.yaml").write_text("styles:\n  新风格:\n    aliases: [anime]\n    positive: a\n    negative: b\n", encoding="utf-8")
    with pytest.raises(NovelcomicError, match="'anime' is used by both"):
        load_styles(tmp_path)


def test_compose_prompt_sd15_fits_clip_window_and_keeps_looks_and_style() -> None:
    lib = load_styles()
    style = lib.resolve(["水墨", "赛博朋克"])
    subject = ", ".join(f"detail number {i} of a very long and elaborate scene description" for i in range(12))
    looks = "long black hair, white hanfu, jade hairpin"
    out = compose_prompt(style, subject, "sd15", size="close_up", angle="low", appearance=[looks], setting="riverbank, dusk", mood="melancholy")
    assert out.tokens <= CLIP_BUDGET and estimate_clip_tokens(out.prompt) <= CLIP_BUDGET
    assert looks in out.prompt
    assert "traditional chinese ink wash painting" in out.prompt and "cyberpunk style" in out.prompt
    assert out.prompt.startswith("close-up shot")  # the lens words of the camera
    assert "detail number 0" in out.prompt and "detail number 11" not in out.prompt
    assert "detail number 11 of a very long and elaborate scene description" in out.dropped
    # Short prompts are left whole.
    short = compose_prompt(style, "a cat on a roof", "sdxl", angle="high")
    assert "a cat on a roof" in short.prompt and "high angle shot" in short.prompt and not short.dropped


def test_compose_prompt_kolors_uses_chinese_fragments() -> None:
    style = load_styles().resolve(["国漫"])
    out = compose_prompt(style, "荷叶上的少女", "kolors", size="close_up")
    assert "国漫风格" in out.prompt and "特写" in out.prompt and "荷叶上的少女" in out.prompt
    assert "chinese donghua style" not in out.prompt
    with pytest.raises(NovelcomicError, match="render family 'sd3'"):
        compose_prompt(style, "x", "sd3")


def test_styles_command_lists_and_shows() -> None:
    runner = CliRunner()
    result = runner.invoke(styles_cmd, [])
    assert result.exit_code == 0, result.output
    for name in REQUIRED + REQUIRED_MODIFIERS:
        assert name in result.output
    assert "ink-wash" in result.output and "[size:close_up]" in result.output
    one = runner.invoke(styles_cmd, ["ink-wash"])
    assert one.exit_code == 0 and "水墨" in one.output and "sumi-e" in one.output and "steps 35" in one.output
    assert "sd15 512x896" in one.output
    mod = runner.invoke(styles_cmd, ["逆光"])
    assert mod.exit_code == 0 and "backlit" in mod.output
    bad = runner.invoke(styles_cmd, ["nope-style"])
    assert bad.exit_code != 0 and isinstance(bad.exception, NovelcomicError)


def test_styles_command_includes_project_styles(tmp_path: Path) -> None:
    from tests.fakes import make_project

    root = tmp_path / "projects"
    d = make_project(root, "p")
    (d / "styles.yaml").write_text("styles:\n  我的风格:\n    positive: pastel\n    negative: dark\n", encoding="utf-8")
    result = CliRunner().invoke(styles_cmd, ["--project", "p"], obj={"root": str(root)})
    assert result.exit_code == 0, result.output
    assert "我的风格" in result.output
