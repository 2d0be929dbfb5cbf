"""The style library: named looks (国漫, 水墨, cyberpunk …) and lens/view modifiers (特写, 逆光 …).

The built-in library is ``assets/styles.yaml`` in the source tree; a project may add or change
styles with a ``styles.yaml`` beside its ``project.yaml`` (same format, merged field by field over
the built-ins). ``project.yaml``'s ``style:`` list names styles and modifiers by key or alias;
:meth:`StyleLibrary.resolve` turns that list into one :class:`ResolvedStyle`, and
:func:`compose_prompt` combines a resolved style, the lens modifiers of a shot's camera and the
subject text into the prompt a render family (``sd15`` / ``sdxl`` / ``kolors``) expects, within
CLIP's 77-token window for the SD families.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from novelcomic.errors import NovelcomicError

Family = Literal["sd15", "sdxl", "kolors"]
FAMILIES: tuple[str, ...] = ("sd15", "sdxl", "kolors")
ModifierKind = Literal["size", "angle", "lens", "view", "effect", "light"]

BUILTIN_STYLES = Path(__file__).resolve().parents[1] / "assets" / "styles.yaml"
PROJECT_STYLES = "styles.yaml"

# CLIP's window is 77 tokens including the start and end tokens.
CLIP_BUDGET = 75
# Kolors' ChatGLM encoder takes 256 tokens; a Chinese character is about one.
KOLORS_BUDGET = 250
# How many leading fragments of a style's positive prompt name the style itself.
CORE_ITEMS = 2


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RenderSettings(_Model):
    """Suggested sampler settings; a render backend may use them where the project sets none."""

    steps: int = Field(30, ge=1, le=200)
    guidance_scale: float = Field(7.0, ge=0, le=30)
    scheduler: str = Field("DPMSolverMultistepScheduler", description="A diffusers scheduler class name")
    karras_sigmas: bool = True
    sampler: str = Field("dpmpp_2m_karras", description="The same sampler as ComfyUI / A1111 name it")
    sizes: dict[str, tuple[int, int]] = Field(
        default_factory=lambda: {"sd15": (512, 896), "sdxl": (768, 1344), "kolors": (768, 1344)},
        description="family → portrait (9:16) width, height; 16:9 swaps them",
    )

    def size(self, family: str, aspect: str = "9:16") -> tuple[int, int]:
        """The suggested image size for ``family`` in ``aspect`` ("9:16" or "16:9")."""
        _check_family(family)
        w, h = self.sizes.get(family) or RenderSettings().sizes[family]
        return (h, w) if aspect == "16:9" else (w, h)


class AnimaticHint(_Model):
    """How the offline animatic renderer may approximate the style."""

    saturation: float = Field(1.0, ge=0, le=3)
    contrast: float = Field(1.0, ge=0, le=3)
    line_weight: float = Field(1.0, ge=0, le=5, description="Outline width relative to the default; 0 = no outlines")
    monochrome: bool = False
    texture: str = Field("none", description="none | paper | canvas | grain | halftone | pixel")
    palette: list[str] = Field(default_factory=list, description="Dominant colours, #rrggbb")


class Style(_Model):
    name: str
    aliases: list[str] = Field(default_factory=list)
    description: str = ""
    positive: str = Field(min_length=1, description="English prompt fragment (SD 1.5 / SDXL)")
    negative: str = Field(min_length=1, description="English negative-prompt fragment")
    positive_zh: str = Field("", description="Chinese prompt fragment (Kolors); default: the English one")
    settings: RenderSettings = Field(default_factory=RenderSettings)
    animatic: AnimaticHint = Field(default_factory=AnimaticHint)


class LensModifier(_Model):
    name: str
    aliases: list[str] = Field(default_factory=list)
    kind: ModifierKind = "effect"
    camera: str | None = Field(None, description="'size:<ShotSize>' or 'angle:<CameraAngle>': applied to shots with that camera")
    positive: str = Field(min_length=1)
    positive_zh: str = ""
    negative: str = ""


class _Defaults(_Model):
    settings: dict[str, Any] = Field(default_factory=dict)
    animatic: dict[str, Any] = Field(default_factory=dict)
    common_negative: str = ""


@dataclass(frozen=True)
class ResolvedStyle:
    """Styles and modifiers named in a project, combined into one.

    ``positive``/``positive_zh`` put each style's leading words (its identity, the first
    ``CORE_ITEMS`` fragments) first and the rest after, so shortening a prompt drops the
    trailing quality words of every style before any style's identity; ``core_items`` counts
    those leading fragments. ``lenses`` is the library's camera-bound modifiers
    (``"size:close_up"`` → 特写 …), carried along so a prompt can be composed from the resolved
    style alone.
    """

    names: tuple[str, ...]
    positive: str
    negative: str
    positive_zh: str
    settings: RenderSettings
    animatic: AnimaticHint
    modifiers: tuple[LensModifier, ...] = ()
    core_items: int = 2
    lenses: Mapping[str, LensModifier] = field(default_factory=dict)

    def camera_modifiers(self, size: str | None, angle: str | None) -> list[LensModifier]:
        """The lens modifiers for a shot's camera size and angle (eye level adds none)."""
        out = []
        for key in (f"size:{size}" if size else None, f"angle:{angle}" if angle else None):
            if key and key in self.lenses:
                out.append(self.lenses[key])
        return out


@dataclass
class StyleLibrary:
    styles: dict[str, Style]
    modifiers: dict[str, LensModifier]
    common_negative: str = ""
    sources: list[Path] = field(default_factory=list)

    # ------------------------------------------------------------------ lookup

    def _index(self) -> dict[str, tuple[str, str]]:
        """normalised name or alias → ("style"|"modifier", canonical name)."""
        index: dict[str, tuple[str, str]] = {}
        for kind, table in (("modifier", self.modifiers), ("style", self.styles)):
            for name, item in table.items():
                for key in (name, *item.aliases):
                    index[_norm(key)] = (kind, name)
        return index

    def find(self, name: str) -> Style | LensModifier:
        """The style or modifier called ``name`` (key or alias, case/space/-/_ insensitive)."""
        hit = self._index().get(_norm(name))
        if hit is None:
            raise NovelcomicError(f"unknown style {name!r}{self._suggest(name)}; `novelcomic styles` lists them", field="style")
        kind, canonical = hit
        return self.styles[canonical] if kind == "style" else self.modifiers[canonical]

    def style(self, name: str) -> Style:
        item = self.find(name)
        if not isinstance(item, Style):
            raise NovelcomicError(f"{name!r} is a lens modifier, not a style", field="style")
        return item

    def _suggest(self, name: str) -> str:
        keys: dict[str, str] = {}
        for table in (self.styles, self.modifiers):
            for canonical, item in table.items():
                for key in (canonical, *item.aliases):
                    keys.setdefault(_norm(key), canonical)
        wanted = _norm(name)
        close = difflib.get_close_matches(wanted, list(keys), n=5, cutoff=0.5)
        close += [k for k in keys if wanted and len(wanted) >= 2 and (wanted in k or k in wanted) and k not in close]
        seen: list[str] = []
        for k in close:
            if keys[k] not in seen:
                seen.append(keys[k])
        return f" (did you mean {', '.join(seen[:4])}?)" if seen else ""

    # ------------------------------------------------------------------ combining

    def resolve(self, names: Sequence[str]) -> ResolvedStyle:
        """Combine styles and modifiers named in ``names`` (project.yaml ``style:``).

        Positives are joined in order, negatives unioned (without repeats, the library's common
        negative last), render settings and animatic hints come from the first style. Modifiers
        in the list apply to every shot. At least one style is needed; an unknown name raises
        NovelcomicError suggesting close matches.
        """
        if isinstance(names, str):
            names = [names]
        styles: list[Style] = []
        modifiers: list[LensModifier] = []
        for name in names:
            item = self.find(name)
            if isinstance(item, Style):
                if item not in styles:
                    styles.append(item)
            elif item not in modifiers:
                modifiers.append(item)
        if not styles:
            raise NovelcomicError(
                f"no style among {list(names)!r}: name at least one style (`novelcomic styles` lists them)", field="style"
            )
        lenses = {m.camera: m for m in self.modifiers.values() if m.camera}
        en = [split_fragment(s.positive) for s in styles]
        zh = [split_fragment(s.positive_zh or s.positive) for s in styles]
        core = [", ".join(items[:CORE_ITEMS]) for items in en]
        return ResolvedStyle(
            names=tuple(s.name for s in styles) + tuple(m.name for m in modifiers),
            positive=join_fragments(core + [", ".join(items[CORE_ITEMS:]) for items in en]),
            negative=_without_positives(
                join_fragments([s.negative for s in styles] + [m.negative for m in modifiers] + [self.common_negative]),
                [s.positive for s in styles] + [m.positive for m in modifiers],
            ),
            positive_zh=join_fragments(
                ["，".join(i[:CORE_ITEMS]) for i in zh] + ["，".join(i[CORE_ITEMS:]) for i in zh], sep="，"
            ),
            core_items=len(split_fragment(join_fragments(core))),
            settings=styles[0].settings,
            animatic=styles[0].animatic,
            modifiers=tuple(modifiers),
            lenses=lenses,
        )


# --------------------------------------------------------------------------- loading


def load_styles(project_dir: Path | None = None, builtin: Path | None = None) -> StyleLibrary:
    """The built-in library, with ``<project_dir>/styles.yaml`` merged over it when present.

    Raises NovelcomicError with file:line: field for a malformed file, and for an alias that two
    entries claim.
    """
    builtin = Path(builtin) if builtin else BUILTIN_STYLES
    if not builtin.is_file():
        raise NovelcomicError("the built-in style library is missing (reinstall novelcomic)", file=builtin)
    raw = _read_mapping(builtin)
    sources = [builtin]
    defaults = _validate(_Defaults, raw.get("defaults") or {}, builtin, ("defaults",))
    styles_raw = _section(raw, "styles", builtin)
    mods_raw = _section(raw, "modifiers", builtin)
    if project_dir is not None:
        user = Path(project_dir) / PROJECT_STYLES
        if user.is_file():
            over = _read_mapping(user)
            sources.append(user)
            unknown = set(over) - {"version", "defaults", "styles", "modifiers"}
            if unknown:
                raise NovelcomicError(f"unknown top-level key {sorted(unknown)[0]!r} (expected defaults, styles, modifiers)", file=user)
            user_defaults = _validate(_Defaults, over.get("defaults") or {}, user, ("defaults",))
            defaults = _Defaults(
                settings=_deep_merge(defaults.settings, user_defaults.settings),
                animatic=_deep_merge(defaults.animatic, user_defaults.animatic),
                common_negative=user_defaults.common_negative or defaults.common_negative,
            )
            for key, table in (("styles", styles_raw), ("modifiers", mods_raw)):
                for name, (body, _) in _section(over, key, user).items():
                    table[name] = (_deep_merge(table[name][0], body) if name in table else body, user)
    styles: dict[str, Style] = {}
    for name, (body, path) in styles_raw.items():
        data = dict(body)
        data["settings"] = _deep_merge(defaults.settings, data.get("settings") or {})
        data["animatic"] = _deep_merge(defaults.animatic, data.get("animatic") or {})
        styles[name] = _validate(Style, {"name": name, **data}, path, ("styles", name))
    modifiers = {
        name: _validate(LensModifier, {"name": name, **body}, path, ("modifiers", name)) for name, (body, path) in mods_raw.items()
    }
    library = StyleLibrary(styles, modifiers, defaults.common_negative, sources)
    _check_names(library, sources[-1])
    return library


def _read_mapping(path: Path) -> dict[str, Any]:
    from novelcomic.yamlio import read_yaml

    data, _ = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise NovelcomicError(f"expected a mapping at the top level, found {type(data).__name__}", file=path, line=1)
    return data


def _section(raw: dict[str, Any], key: str, path: Path) -> dict[str, tuple[dict[str, Any], Path]]:
    section = raw.get(key) or {}
    if not isinstance(section, dict):
        raise NovelcomicError(f"{key} must be a mapping of name → fields", file=path, field=key)
    out: dict[str, tuple[dict[str, Any], Path]] = {}
    for name, body in section.items():
        if not isinstance(body, dict):
            raise NovelcomicError(f"must be a mapping of fields, found {type(body).__name__}", file=path, field=f"{key}.{name}")
        out[str(name)] = (body, path)
    return out


def _validate(model: type[_Model], data: dict[str, Any], path: Path, where: tuple[str, ...]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        from novelcomic.yamlio import format_loc, line_of, read_yaml

        err = exc.errors()[0]
        loc = where + tuple(err["loc"])
        _, node = read_yaml(path)
        raise NovelcomicError(err["msg"], file=path, line=line_of(node, loc), field=format_loc(loc)) from None


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _check_names(library: StyleLibrary, path: Path) -> None:
    owner: dict[str, str] = {}
    for table in (library.styles, library.modifiers):
        for name, item in table.items():
            for key in {_norm(k) for k in (name, *item.aliases)}:
                if key in owner and owner[key] != name:
                    raise NovelcomicError(f"name or alias {key!r} is used by both {owner[key]!r} and {name!r}", file=path)
                owner[key] = name
    for name, mod in library.modifiers.items():
        if mod.camera and not re.fullmatch(r"(size|angle):[a-z_]+", mod.camera):
            raise NovelcomicError(f"camera {mod.camera!r} must look like 'size:close_up' or 'angle:high'", file=path, field=f"modifiers.{name}.camera")


def _without_positives(negative: str, positives: Sequence[str]) -> str:
    """Drop negative items a combined positive asks for (水墨's "neon" when 赛博朋克 wants neon)."""
    wanted = " , ".join(positives).casefold()
    keep = [n for n in split_fragment(negative) if not re.search(rf"(?<![a-z]){re.escape(n.casefold())}(?![a-z])", wanted)]
    return ", ".join(keep)


def _norm(name: str) -> str:
    return re.sub(r"[\s\-_]+", "", str(name)).casefold()


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise NovelcomicError(f"unknown render family {family!r} (expected one of {', '.join(FAMILIES)})")


# --------------------------------------------------------------------------- prompts


def join_fragments(fragments: Sequence[str], sep: str = ", ") -> str:
    """Comma-separated fragments joined without empty items or repeats (case-insensitive)."""
    seen: set[str] = set()
    out: list[str] = []
    for frag in fragments:
        for item in split_fragment(frag):
            key = item.casefold()
            if key not in seen:
                seen.add(key)
                out.append(item)
    return sep.join(out)


def split_fragment(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"[,，、;；\n]", text or "") if p.strip()]


_TOKEN_RE = re.compile(r"[a-z]+|\d|[\u3400-\u9fff\uf900-\ufaff]|[^\sa-z\d]", re.IGNORECASE)


def estimate_clip_tokens(text: str) -> int:
    """A close upper estimate of CLIP's BPE token count (no tokenizer files needed).

    Words count one token, long ones two; a digit, a punctuation mark one; a CJK character two
    (CLIP's vocabulary splits most of them into byte pieces).
    """
    n = 0
    for tok in _TOKEN_RE.findall(text):
        if tok[0].isascii() and tok[0].isalpha():
            n += 1 if len(tok) <= 9 else 2
        elif "\u3400" <= tok[0] <= "\u9fff" or "\uf900" <= tok[0] <= "\ufaff":
            n += 2
        else:
            n += 1
    return n


def default_budget(family: str) -> int:
    _check_family(family)
    return KOLORS_BUDGET if family == "kolors" else CLIP_BUDGET


@dataclass(frozen=True)
class ComposedPrompt:
    prompt: str
    negative: str
    tokens: int  # estimated (or counted by ``count_tokens``) length of ``prompt``
    dropped: tuple[str, ...] = ()  # parts left out to stay within the budget


@dataclass
class _Part:
    items: list[str]
    keep: int  # items never dropped
    rank: int  # lower ranks are dropped first


def compose_prompt(
    style: ResolvedStyle,
    subject: str,
    family: str = "sdxl",
    *,
    size: str | None = None,
    angle: str | None = None,
    appearance: Sequence[str] = (),
    setting: str = "",
    mood: str = "",
    extra_negative: Sequence[str] = (),
    max_tokens: int | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> ComposedPrompt:
    """The image prompt for ``family``: subject, characters' fixed looks, setting, lens, mood, style.

    ``size``/``angle`` are the shot's camera values (their lens modifiers are added). English
    fragments for ``sd15``/``sdxl``, the Chinese style fragments for ``kolors``. When the
    prompt is over ``max_tokens`` (default: 75 CLIP tokens for SD, 250 for Kolors), the least
    important parts go first: the style's trailing quality words, mood, setting, the subject's
    later clauses, lens words (the framing matters for a storyboard). The characters'
    appearance, the subject's first clause and each style's leading words stay.
    ``count_tokens`` may be a real tokenizer's counter; the default estimates.
    """
    _check_family(family)
    zh = family == "kolors"
    sep = "，" if zh else ", "
    budget = max_tokens if max_tokens is not None else default_budget(family)
    count = count_tokens or (len if zh else estimate_clip_tokens)
    lens = [*style.camera_modifiers(size, angle), *style.modifiers]
    lens_items = [(m.positive_zh or m.positive) if zh else m.positive for m in lens]
    style_items = split_fragment(style.positive_zh or style.positive) if zh else split_fragment(style.positive)
    subject_items = split_fragment(subject)
    parts = {
        "subject": _Part(subject_items, 1, 4),
        "appearance": _Part([a.strip() for a in appearance if a and a.strip()], 10**6, 99),
        "setting": _Part(split_fragment(setting), 0, 3),
        "lens": _Part(lens_items, 0, 5),
        "mood": _Part(split_fragment(mood), 0, 2),
        "style": _Part(style_items, style.core_items, 1),
    }
    order = ["lens", "subject", "appearance", "setting", "mood", "style"]
    dropped: list[str] = []

    def render() -> str:
        # Items are joined as they are (an appearance keeps its own commas), without repeats.
        seen: set[str] = set()
        out: list[str] = []
        for key in order:
            for item in parts[key].items:
                if item and item.casefold() not in seen:
                    seen.add(item.casefold())
                    out.append(item)
        return sep.join(out)

    text = render()
    for key in sorted(parts, key=lambda k: parts[k].rank):
        part = parts[key]
        while count(text) > budget and len(part.items) > part.keep:
            dropped.append(part.items.pop())
            text = render()
    if count(text) > budget and parts["subject"].items:
        # Still over: shorten the subject's first clause word by word (never the looks or style core).
        first = parts["subject"].items[0]
        words = list(first) if zh else first.split()
        while words and count(text) > budget:
            words.pop()
            parts["subject"].items[0] = ("" if zh else " ").join(words)
            text = render()
    negative_parts = [style.negative, *(m.negative for m in lens), *extra_negative]
    negative = join_fragments(negative_parts, sep=", ")
    return ComposedPrompt(text, negative, count(text), tuple(dropped))
