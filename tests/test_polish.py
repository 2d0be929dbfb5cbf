"""Image prompts for shots: through a scripted LLM and by the offline rules, with negated things
moved to the negative prompt, the characters' looks always present and CLIP's window respected."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.llm.base import Message
from novelcomic.models import Camera, Character, Line, Location, Scene, Shot, VoiceSpec
from novelcomic.plan.polish import PolishedPrompt, gloss, heuristic_prompt, polish_prompt, split_negations
from novelcomic.styles import CLIP_BUDGET, estimate_clip_tokens, load_styles


class ScriptedLLM:
    """An LLMBackend whose answers come from a function of the messages (or a fixed list)."""

    name = "scripted"
    context_tokens = 8192

    def __init__(self, answer: Callable[[list[Message]], str] | list[str]) -> None:
        self.answer = answer
        self.calls: list[tuple[list[Message], dict | None]] = []

    def complete(self, messages, *, json_schema=None, temperature=0.2, max_tokens=None):  # type: ignore[no-untyped-def]
        self.calls.append((list(messages), json_schema))
        if callable(self.answer):
            return self.answer(messages)
        return self.answer[len(self.calls) - 1]


def _honouring_llm(messages: list[Message]) -> str:
    """Answers like a model that follows the instructions: negated things go to `negative`."""
    shot = messages[1].content
    chinese = "Write the prompt in Chinese" in messages[0].content
    if "没有青蛙的荷叶" in shot:
        if chinese:
            return json.dumps({"prompt": "池塘里的荷叶，清晨薄雾，少女蹲在岸边", "negative": ["青蛙"]}, ensure_ascii=False)
        return json.dumps({"prompt": "lotus leaves on a still pond, morning mist, a girl crouching on the bank", "negative": ["frog"],
                           "notes": "the frog is absent"})
    return json.dumps({"prompt": "a quiet pond"})


CHARS = {
    "xiaoyu": Character(id="xiaoyu", name="林小雨", appearance="long black hair, green hanfu, jade hairpin",
                        voice=VoiceSpec(gender="female", age="young")),
    "chen": Character(id="chen", name="陈伯", appearance="white beard, straw hat, grey robe", voice=VoiceSpec(gender="male", age="old")),
}
POND = Location(id="pond", name="荷塘", description="村口的池塘", time_of_day="dawn")


def _shot(text: str, characters: list[str] | None = None, size: str = "medium") -> tuple[Shot, Scene]:
    shot = Shot(id="s01-01", characters=characters if characters is not None else ["xiaoyu"], camera=Camera(size=size),  # type: ignore[arg-type]
                lines=[Line(text=text), Line(speaker="xiaoyu", text="青蛙都去哪儿了？")], source=text)
    return shot, Scene(id="s01", location="pond", mood="calm", shots=[shot])


STYLE = load_styles().resolve(["水墨"])


def test_llm_prompt_moves_negated_thing_to_negative_and_keeps_looks() -> None:
    llm = ScriptedLLM(_honouring_llm)
    shot, scene = _shot("清晨，林小雨蹲在池塘边，看着没有青蛙的荷叶。")
    out = polish_prompt(llm, shot, scene, CHARS, POND, STYLE, "sdxl", "zh")
    assert isinstance(out, PolishedPrompt)
    assert "lotus leaves on a still pond" in out.prompt and "frog" not in out.prompt
    assert "frog" in out.negative.split(", ")
    assert CHARS["xiaoyu"].appearance in out.prompt  # the fixed looks, always
    assert "young woman" in out.prompt and "traditional chinese ink wash painting" in out.prompt
    assert "photorealistic" in out.negative  # the style's negative
    assert "the frog is absent" in out.notes
    # What the model was shown: the passage, the looks, the camera; and the schema was requested.
    messages, schema = llm.calls[0]
    sent = "\n".join(m.content for m in messages)
    assert "没有青蛙的荷叶" in sent and CHARS["xiaoyu"].appearance in sent and '"medium"' in sent
    assert schema is not None and "prompt" in schema["properties"]
    assert "Write the prompt in English" in messages[0].content


def test_llm_leftover_negation_is_caught_by_rules() -> None:
    llm = ScriptedLLM([json.dumps({"prompt": "a pond without frogs, lotus leaves, reeds", "negative": []})])
    shot, scene = _shot("荷塘里一只青蛙也没有。")
    out = polish_prompt(llm, shot, scene, CHARS, POND, STYLE, "sd15", "zh")
    assert "frogs" in out.negative and "frog" not in out.prompt
    assert "a pond" in out.prompt and "lotus leaves" in out.prompt


def test_llm_kolors_prompt_may_be_chinese() -> None:
    llm = ScriptedLLM(_honouring_llm)
    shot, scene = _shot("林小雨看着没有青蛙的荷叶。", size="close_up")
    out = polish_prompt(llm, shot, scene, CHARS, POND, STYLE, "kolors", "zh")
    assert "Write the prompt in Chinese" in llm.calls[0][0][0].content
    assert "池塘里的荷叶" in out.prompt and "中国传统水墨画" in out.prompt and "特写" in out.prompt
    assert "青蛙" not in out.prompt and "青蛙" in out.negative
    assert "少女" in out.prompt and CHARS["xiaoyu"].appearance in out.prompt


def test_llm_malformed_answer_is_repaired() -> None:
    llm = ScriptedLLM(["Sure! Here is the prompt: lotus leaves, dawn", '```json\n{"prompt": "lotus leaves at dawn", "negative": ["frog"],}\n```'])
    shot, scene = _shot("没有青蛙的荷叶。")
    out = polish_prompt(llm, shot, scene, CHARS, POND, STYLE, "sdxl", "zh")
    assert len(llm.calls) == 2
    repair = llm.calls[1][0][-1]
    assert repair.role == "user" and "not valid" in repair.content
    assert "lotus leaves at dawn" in out.prompt and "frog" in out.negative


def test_llm_never_valid_is_reported() -> None:
    from novelcomic.llm.structured import LLMOutputError

    llm = ScriptedLLM(lambda messages: '{"negative": ["frog"]}')
    shot, scene = _shot("没有青蛙的荷叶。")
    with pytest.raises(LLMOutputError) as err:
        polish_prompt(llm, shot, scene, CHARS, POND, STYLE, "sdxl", "zh")
    assert isinstance(err.value, BackendError) and "s01-01" in str(err.value) and "prompt" in str(err.value)
    assert len(llm.calls) == 3


def test_heuristic_moves_negation_to_negative_by_rule() -> None:
    shot, scene = _shot("林小雨蹲在池塘边，看着没有青蛙的荷叶。")
    sd = heuristic_prompt(shot, scene, CHARS, POND, STYLE, "sd15", "zh")
    assert "lotus leaf" in sd.prompt and "frog" not in sd.prompt
    assert "frog" in sd.negative.split(", ")
    assert CHARS["xiaoyu"].appearance in sd.prompt and "young woman" in sd.prompt
    assert "dawn" in sd.prompt and "pond" in sd.prompt  # the location, glossed
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in sd.prompt + sd.negative)  # English only for SD
    ko = heuristic_prompt(shot, scene, CHARS, POND, STYLE, "kolors", "zh")
    assert "荷叶" in ko.prompt and "青蛙" not in ko.prompt
    assert "青蛙" in ko.negative and "frog" in ko.negative
    assert "荷塘" in ko.prompt and "清晨" in ko.prompt and "少女" in ko.prompt


def test_the_shots_image_prompt_decides_the_subject() -> None:
    """A user who rewrites a shot's image_prompt gets that picture (names dropped: looks are added
    from characters.yaml); a planner-written one ("地点（时间），名字（外貌），动作") leaves its action."""
    shot, scene = _shot("林小雨蹲在池塘边，看着没有青蛙的荷叶。")
    mine = shot.model_copy(update={"image_prompt": "a red panda eating noodles on the moon"})
    sd = heuristic_prompt(mine, scene, CHARS, POND, STYLE, "sdxl", "zh")
    assert "red panda eating noodles on the moon" in sd.prompt and "lotus" not in sd.prompt
    planned = shot.model_copy(update={"image_prompt": "荷塘（清晨），林小雨（long black hair, green hanfu），林小雨抬头望着远处的山"})
    ko = heuristic_prompt(planned, scene, CHARS, POND, STYLE, "kolors", "zh")
    assert "抬头望着远处的山" in ko.prompt and "林小雨" not in ko.prompt and "荷叶" not in ko.prompt
    llm = ScriptedLLM(lambda messages: json.dumps({"prompt": "a red panda on the moon"}))
    polish_prompt(llm, mine, scene, CHARS, POND, STYLE, "sdxl", "zh")
    facts = json.loads(llm.calls[0][0][1].content.split("\n", 1)[1])
    assert facts["image_prompt"] == "a red panda eating noodles on the moon"
    assert "image_prompt" in llm.calls[0][0][0].content  # the system prompt says it is the picture wanted


def test_heuristic_english_and_deterministic() -> None:
    chars = {"pip": Character(id="pip", name="Pip", appearance="red scarf, freckles, brown coat")}
    shot = Shot(id="a", characters=["pip"], camera=Camera(size="wide", angle="low"),
                lines=[Line(text="Pip walked down a quiet street with no cars, under a sky without stars.")])
    scene = Scene(id="s", mood="mysterious", shots=[shot])
    out = heuristic_prompt(shot, scene, chars, None, STYLE, "sdxl", "en")
    assert "cars" in out.negative and "stars" in out.negative
    assert "cars" not in out.prompt and "stars" not in out.prompt
    assert "red scarf, freckles, brown coat" in out.prompt and "wide shot" in out.prompt and "low angle shot" in out.prompt
    assert heuristic_prompt(shot, scene, chars, None, STYLE, "sdxl", "en") == out


def test_sd15_prompt_length_is_bounded_and_looks_survive() -> None:
    long = "Pip walked past " + ", ".join(f"the {w} old house with a crooked chimney and broken shutters" for w in
                                       ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"])
    chars = {"pip": Character(id="pip", name="Pip", appearance="red scarf, freckles, brown coat")}
    shot = Shot(id="a", characters=["pip"], lines=[Line(text=long)])
    scene = Scene(id="s", mood="tense", shots=[shot])
    style = load_styles().resolve(["国漫", "赛博朋克", "逆光"])
    out = heuristic_prompt(shot, scene, chars, None, style, "sd15", "en")
    assert estimate_clip_tokens(out.prompt) <= CLIP_BUDGET
    assert "red scarf, freckles, brown coat" in out.prompt and "chinese donghua style" in out.prompt
    assert "left out to fit the token budget" in out.notes
    llm = ScriptedLLM([json.dumps({"prompt": long})])
    polished = polish_prompt(llm, shot, scene, chars, None, style, "sd15", "en")
    assert estimate_clip_tokens(polished.prompt) <= CLIP_BUDGET and "red scarf, freckles, brown coat" in polished.prompt


def test_bad_family_or_language_is_a_user_error() -> None:
    shot, scene = _shot("荷叶。")
    with pytest.raises(NovelcomicError, match="render family 'flux'"):
        heuristic_prompt(shot, scene, CHARS, POND, STYLE, "flux", "zh")
    with pytest.raises(NovelcomicError, match="language 'fr'"):
        polish_prompt(ScriptedLLM([]), shot, scene, CHARS, POND, STYLE, "sdxl", "fr")


@pytest.mark.parametrize(
    ("text", "kept", "negated"),
    [
        ("没有青蛙的荷叶", "荷叶", ["青蛙"]),
        ("天空中没有一片云。", "天空中。", ["云"]),
        ("没有人知道他来自哪里。", "没有人知道他来自哪里。", []),  # "nobody knows": not an absence in the picture
        ("池塘里不见鱼。", "池塘里。", ["鱼"]),
        ("a pond without frogs, reeds", "a pond, reeds", ["frogs"]),
        ("He had no doubt.", "He had no doubt.", []),
    ],
)
def test_split_negations(text: str, kept: str, negated: list[str]) -> None:
    assert split_negations(text) == (kept, negated)


def test_gloss_prefers_longest_match_and_idioms() -> None:
    assert gloss("月黑风高，荷叶上") == ["dark moonless night, strong wind", "lotus leaf"]
