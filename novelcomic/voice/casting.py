"""Casting: a concrete voice for the narrator and every character.

:func:`cast_voices` resolves each speaker's :class:`~novelcomic.models.VoiceSpec`: fields the user
set in characters.yaml are kept as they are; empty ``voice``/``pitch``/``rate`` are filled from the
speaker's gender, age and temperament so that every character sounds different from the others
and from the narrator. Casting is deterministic: it depends only on the file's content and order.

For espeak (and ``silent``, which shares its voice names) a voice is ``<language voice>+<variant>``,
e.g. ``cmn-latn-pinyin+f2``; a user voice that starts with ``+`` (``+f3``) gets the language voice
put in front. For edge-tts a voice is a neural voice name (``zh-CN-XiaoxiaoNeural``) picked from
gender, age and temperament, distinct per character while the language has voices left, then the
same voices again at distinct pitches (Hz offsets); ``rate`` is a percent change. Other backends get
the specs back with only gender guessed where unknown: they pick their own voices.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from novelcomic.models import NARRATOR, Character, CharactersFile, VoiceSpec

ESPEAK_BACKENDS = frozenset({"espeak", "silent"})
EDGE_BACKENDS = frozenset({"edge"})
LANGUAGE_VOICES: dict[str, str] = {"zh": "cmn-latn-pinyin", "en": "en-us"}
DEFAULT_RATES: dict[str, int] = {"zh": 210, "en": 160}  # wpm: ~4 syllables/s, ~2.7 words/s
DEFAULT_PITCH = 50
PITCH_RANGE = (0, 99)
RATE_RANGE = (80, 450)
PITCH_STEP = 7

# espeak-ng variants (see `espeak-ng --voices=variant`), in order of preference.
_MALE = {
    "child": ("m3", "m6", "m2"),
    "young": ("m3", "m6", "m2", "m5", "m4", "m7"),
    "adult": ("m4", "m7", "m2", "m6", "m3", "m5", "m8"),
    "old": ("m1", "grandpa", "m8", "croak"),
}
_FEMALE = {
    "child": ("f5", "f3"),
    "young": ("f5", "f2", "f3", "f4"),
    "adult": ("f2", "f4", "f3", "f5", "f1"),
    "old": ("f1", "grandma", "f4"),
}
_NARRATOR_POOL = ("m3", "m4", "m7")
_BASE_PITCH = {
    ("male", "child"): 80, ("male", "young"): 55, ("male", "adult"): 45, ("male", "old"): 38,
    ("female", "child"): 72, ("female", "young"): 60, ("female", "adult"): 52, ("female", "old"): 45,
}
_AGE_RATE = {"child": 10, "young": 5, "adult": 0, "old": -20, "unknown": 0}

# temperament keywords (Chinese or English) → (pitch change, rate change in wpm)
_TEMPERAMENTS: tuple[tuple[tuple[str, ...], int, int], ...] = (
    (("活泼", "开朗", "急躁", "暴躁", "冲动", "俏皮", "热情", "lively", "cheerful", "energetic",
      "impulsive", "hot-tempered", "playful", "excitable"), 5, 18),
    (("沉稳", "冷静", "稳重", "淡定", "温和", "温柔", "calm", "steady", "gentle", "composed", "soft"), -3, -12),
    (("严肃", "冷漠", "威严", "高冷", "阴沉", "冷酷", "stern", "serious", "cold", "grim", "gloomy",
      "authoritative"), -6, -6),
    (("胆小", "害羞", "怯", "timid", "shy", "nervous"), 4, -8),
)

_FEMALE_CUES = ("她", "姑娘", "小姐", "夫人", "娘", "妹", "姐", "婆", "嫂", "姨", "婶", "妃", "公主",
                "女", "母", "奶奶", "she", "her", "woman", "girl", "lady", "mother", "queen", "princess")
_MALE_CUES = ("他", "公子", "少爷", "先生", "哥", "兄", "弟", "叔", "伯", "爷", "和尚", "男", "父",
              "he", "his", "him", "man", "boy", "father", "king", "prince", "sir")
_WORD_RE = re.compile(r"[a-z]+")


def cast_voices(
    characters: CharactersFile, language: str, backend: str, speakers: Collection[str] | None = None
) -> dict[str, VoiceSpec]:
    """A resolved :class:`VoiceSpec` per speaker id, ``"narrator"`` included.

    ``language`` is the project's (``zh``/``en``); ``backend`` the voice stage's backend name.
    ``speakers``: the ids that speak (default: every character); only they are cast, so the
    characters who never say a line (a cast of hundreds, most of them named in passing) use up
    none of the distinct voices. The order stays the file's (main characters first).
    """
    cast: list[tuple[str, VoiceSpec]] = [(NARRATOR, characters.narrator)]
    cast += [(c.id, _with_guessed_gender(c)) for c in characters.characters if speakers is None or c.id in speakers]
    if backend in EDGE_BACKENDS:
        return _cast_edge(cast, language)
    if backend not in ESPEAK_BACKENDS:
        return {sid: spec.model_copy() for sid, spec in cast}
    return _cast_espeak(cast, language)


def language_voice(language: str) -> str:
    """The espeak-ng voice for a project language (``zh`` → Mandarin read as pinyin)."""
    return LANGUAGE_VOICES.get(language, language)


def default_rate(language: str) -> int:
    """The espeak-ng speaking rate (wpm) a voice gets when nothing else says otherwise."""
    return DEFAULT_RATES.get(language, DEFAULT_RATES["en"])


def expand_voice(voice: str, language: str) -> str:
    """``+f3`` → ``cmn-latn-pinyin+f3`` (for zh); a full voice name is returned unchanged."""
    voice = voice.strip()
    return language_voice(language) + voice if voice.startswith("+") else voice


def variant_of(voice: str) -> str:
    """The variant part of an espeak voice string (``en-us+f2`` → ``f2``; none → ``""``)."""
    return voice.partition("+")[2]


# --------------------------------------------------------------------------- espeak casting


def _cast_espeak(speakers: list[tuple[str, VoiceSpec]], language: str) -> dict[str, VoiceSpec]:
    base = language_voice(language)
    used_variants: dict[str, int] = {}
    for _, spec in speakers:  # user-chosen variants are taken before anything is picked
        if spec.voice:
            _count(used_variants, variant_of(expand_voice(spec.voice, language)))
    taken: set[tuple[str, int, int]] = set()
    cast: dict[str, VoiceSpec] = {}
    for sid, spec in speakers:
        if spec.voice:
            voice = expand_voice(spec.voice, language)
        else:
            variant = _pick_variant(_pool(sid, spec), used_variants)
            _count(used_variants, variant)
            voice = f"{base}+{variant}"
        pitch, rate = _pitch_and_rate(spec, language)
        if spec.pitch is None:
            pitch = _free_pitch(voice, pitch, rate, taken)
        taken.add((voice, pitch, rate))
        cast[sid] = spec.model_copy(update={"voice": voice, "pitch": pitch, "rate": rate})
    return cast


def _pool(speaker: str, spec: VoiceSpec) -> tuple[str, ...]:
    if speaker == NARRATOR and spec.gender == "unknown" and spec.age == "unknown":
        return _NARRATOR_POOL
    age = "adult" if spec.age == "unknown" else spec.age
    return (_FEMALE if spec.gender == "female" else _MALE)[age]


def _pick_variant(pool: tuple[str, ...], used: dict[str, int]) -> str:
    """The least-used variant of ``pool``; ties go to the earlier (preferred) one."""
    return min(pool, key=lambda v: (used.get(v, 0), pool.index(v)))


def _count(used: dict[str, int], variant: str) -> None:
    used[variant] = used.get(variant, 0) + 1


def _pitch_and_rate(spec: VoiceSpec, language: str) -> tuple[int, int]:
    """Pitch and rate from the spec, or from gender/age/temperament where the user left them empty."""
    gender = spec.gender if spec.gender != "unknown" else "male"
    age = spec.age if spec.age != "unknown" else "adult"
    pitch = _BASE_PITCH.get((gender, age), DEFAULT_PITCH)
    rate = default_rate(language) + _AGE_RATE[spec.age]
    dp, dr = _temperament_shift(spec.temperament)
    pitch = spec.pitch if spec.pitch is not None else _clamp(pitch + dp, PITCH_RANGE)
    rate = spec.rate if spec.rate is not None else _clamp(rate + dr, RATE_RANGE)
    return pitch, rate


def _temperament_shift(temperament: str) -> tuple[int, int]:
    text = temperament.lower()
    words = set(_WORD_RE.findall(text))
    dp = dr = 0
    for keys, pitch, rate in _TEMPERAMENTS:
        if any((k in words) if k.isascii() else (k in text) for k in keys):
            dp, dr = dp + pitch, dr + rate
    return dp, dr


def _free_pitch(voice: str, pitch: int, rate: int, taken: set[tuple[str, int, int]]) -> int:
    """``pitch``, or the nearest step away from it (+7, -7, +14, …) no other speaker uses."""
    used = {p for v, p, r in taken if v == voice and abs(r - rate) < 10}
    for k in range(0, 2 * (PITCH_RANGE[1] // PITCH_STEP) + 2):
        step = (k + 1) // 2 * PITCH_STEP * (1 if k % 2 else -1)
        candidate = _clamp(pitch + step, PITCH_RANGE)
        if all(abs(candidate - p) >= PITCH_STEP for p in used):
            return candidate
    return pitch


def _clamp(value: int, bounds: tuple[int, int]) -> int:
    return max(bounds[0], min(bounds[1], int(value)))


# --------------------------------------------------------------------------- edge-tts casting

# (voice, gender, ages it suits, lively?) — Microsoft Edge's free neural voices, preferred first.
_EDGE_VOICES: dict[str, tuple[tuple[str, str, tuple[str, ...], bool], ...]] = {
    "zh": (
        ("zh-CN-XiaoxiaoNeural", "female", ("young", "adult"), False),
        ("zh-CN-XiaoyiNeural", "female", ("child", "young"), True),
        ("zh-CN-YunxiNeural", "male", ("young", "adult"), True),
        ("zh-CN-YunjianNeural", "male", ("adult", "old"), False),
        ("zh-CN-YunxiaNeural", "male", ("child", "young"), True),
        ("zh-CN-liaoning-XiaobeiNeural", "female", ("adult", "old"), True),
        ("zh-CN-shaanxi-XiaoniNeural", "female", ("young", "adult"), True),
        ("zh-TW-HsiaoChenNeural", "female", ("young", "adult"), False),
        ("zh-TW-HsiaoYuNeural", "female", ("adult", "old"), False),
        ("zh-TW-YunJheNeural", "male", ("adult", "old"), False),
        ("zh-HK-HiuGaaiNeural", "female", ("adult",), False),
        ("zh-HK-WanLungNeural", "male", ("adult", "old"), False),
    ),
    "en": (
        ("en-US-JennyNeural", "female", ("young", "adult"), False),
        ("en-US-GuyNeural", "male", ("adult",), False),
        ("en-US-AriaNeural", "female", ("young", "adult"), True),
        ("en-US-DavisNeural", "male", ("adult", "old"), False),
        ("en-US-AnaNeural", "female", ("child",), True),
        ("en-US-EricNeural", "male", ("young", "adult"), True),
        ("en-US-MichelleNeural", "female", ("adult", "old"), False),
        ("en-US-RogerNeural", "male", ("old", "adult"), False),
        ("en-US-EmmaNeural", "female", ("young", "adult"), True),
        ("en-US-SteffanNeural", "male", ("young", "adult"), False),
        ("en-US-AvaNeural", "female", ("young",), True),
        ("en-US-BrianNeural", "male", ("young",), True),
    ),
}
EDGE_NARRATORS = {"zh": "zh-CN-YunyangNeural", "en": "en-US-ChristopherNeural"}
EDGE_PITCH_STEP = 6  # Hz between speakers that share a voice
_EDGE_AGE_RATE = {"child": 5, "young": 3, "adult": 0, "old": -8, "unknown": 0}


def edge_default_voice(language: str, gender: str = "unknown") -> str:
    """The edge voice for a speaker nothing else decides: the narrator's, or the first of ``gender``."""
    pool = _EDGE_VOICES.get(language, _EDGE_VOICES["en"])
    if gender in ("male", "female"):
        return next(v for v, g, _, _ in pool if g == gender)
    return EDGE_NARRATORS.get(language, EDGE_NARRATORS["en"])


def _cast_edge(speakers: list[tuple[str, VoiceSpec]], language: str) -> dict[str, VoiceSpec]:
    pool = _EDGE_VOICES.get(language, _EDGE_VOICES["en"])
    narrator_voice = EDGE_NARRATORS.get(language, EDGE_NARRATORS["en"])
    used: dict[str, int] = {}
    for _, spec in speakers:
        if spec.voice:
            _count(used, spec.voice)
    cast: dict[str, VoiceSpec] = {}
    for sid, spec in speakers:
        dp, dr = _temperament_shift(spec.temperament)
        if spec.voice:
            voice = spec.voice
        elif sid == NARRATOR and spec.gender == "unknown":
            voice = narrator_voice
            _count(used, voice)
        else:
            voice = _pick_edge_voice(pool, spec, lively=dr > 0, used=used)
            _count(used, voice)
        rate = spec.rate if spec.rate is not None else max(-30, min(30, _EDGE_AGE_RATE[spec.age] + dr // 3))
        if spec.pitch is not None:
            pitch = spec.pitch
        else:
            # the n-th speaker on a voice gets 0, +6, -6, +12 … Hz, so shared voices still differ
            n = used.get(voice, 1) - 1
            pitch = max(-30, min(30, dp + (n + 1) // 2 * EDGE_PITCH_STEP * (1 if n % 2 else -1)))
        cast[sid] = spec.model_copy(update={"voice": voice, "pitch": pitch, "rate": rate})
    return cast


def _pick_edge_voice(
    pool: tuple[tuple[str, str, tuple[str, ...], bool], ...], spec: VoiceSpec, *, lively: bool, used: dict[str, int]
) -> str:
    """The least-used voice of the speaker's gender, preferring ones that suit its age and temperament."""
    gender = spec.gender if spec.gender != "unknown" else "male"
    age = spec.age if spec.age != "unknown" else "adult"
    candidates = [entry for entry in pool if entry[1] == gender] or list(pool)

    def score(item: tuple[int, tuple[str, str, tuple[str, ...], bool]]) -> tuple[int, int, int, int]:
        i, (voice, _, ages, is_lively) = item
        return (used.get(voice, 0), age not in ages, is_lively != lively, i)

    return min(enumerate(candidates), key=score)[1][0]


# --------------------------------------------------------------------------- gender guess


def _with_guessed_gender(character: Character) -> VoiceSpec:
    """The character's voice spec, with ``gender`` guessed from its text when it is unknown."""
    spec = character.voice
    if spec.gender != "unknown":
        return spec
    guess = guess_gender(character)
    return spec.model_copy(update={"gender": guess}) if guess != "unknown" else spec


def guess_gender(character: Character) -> str:
    """``male``/``female`` when the name, aliases or description clearly say so, else ``unknown``.

    Conservative: a title in the name (姑娘, 公子, …) decides; otherwise the pronouns and cue
    words of the description must lean at least two to one.
    """
    for name in [character.name, *character.aliases]:
        female = any(name.endswith(c) for c in _FEMALE_CUES if not c.isascii())
        male = any(name.endswith(c) for c in _MALE_CUES if not c.isascii())
        if female != male:
            return "female" if female else "male"
    text = f"{character.description} {character.appearance}".lower()
    words = _WORD_RE.findall(text)
    female = _cue_count(text, words, _FEMALE_CUES)
    male = _cue_count(text, words, _MALE_CUES)
    if female >= 2 * male and female > 0:
        return "female"
    if male >= 2 * female and male > 0:
        return "male"
    return "unknown"


def _cue_count(text: str, words: list[str], cues: tuple[str, ...]) -> int:
    return sum(words.count(c) if c.isascii() else text.count(c) for c in cues)
