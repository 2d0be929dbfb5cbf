"""Pointing a character at its trained LoRA in characters.yaml (the YAML is the user's).

:func:`point_at_lora` sets the character's ``lora`` and ``lora_trigger``:

- characters.yaml as novelcomic last wrote it: written again through
  :meth:`Project.write_generated` (which records it as generated, as the plan stage does);
- characters.yaml edited by the user: only those two keys of that one character are written into
  the text (a value replaced in place, or a line added after the character's last key), so every
  other byte, comments included, stays; the result must load to exactly the old cast with the two
  fields set, else nothing is written and ``characters.proposed.yaml`` holds the change;
- a ``lora`` (or ``lora_trigger``) the user set to something else is left alone and reported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml

from novelcomic.errors import NovelcomicError

if TYPE_CHECKING:
    from novelcomic.models import CharactersFile
    from novelcomic.project import Project

_PLAIN = re.compile(r"^[A-Za-z0-9_./\-]+$")


@dataclass(frozen=True)
class YamlChange:
    status: Literal["written", "unchanged", "kept", "proposal"]
    path: Path
    message: str


def _scalar(value: str) -> str:
    """``value`` as a YAML scalar: plain when it is a simple path/word, else double-quoted."""
    if _PLAIN.match(value) and value.lower() not in ("null", "true", "false", "yes", "no", "on", "off", "~"):
        return value
    return json.dumps(value, ensure_ascii=False)


def _same_path(a: str, b: str, project: Project) -> bool:
    from novelcomic.paths import resolve_weight

    try:
        return resolve_weight(a, project.dir) == resolve_weight(b, project.dir)
    except NovelcomicError:
        return a == b


def point_at_lora(project: Project, character_id: str, lora: str, trigger: str) -> YamlChange:
    """Make ``character_id`` use the LoRA at ``lora`` (relative to the project) with ``trigger``."""
    path = project.characters_yaml
    cast = project.characters()
    index = next((i for i, c in enumerate(cast.characters) if c.id == character_id), None)
    if index is None:
        raise NovelcomicError(f"no character {character_id!r} in characters.yaml", file=path)
    ch = cast.characters[index]
    where = f"characters[{index}]"
    if ch.lora and not _same_path(ch.lora, lora, project):
        return YamlChange("kept", path, f"{path.name}: {where}.lora is {ch.lora!r} (yours) and was left alone; set it to "
                                        f"{lora!r} and lora_trigger to {trigger!r} to draw {character_id} with the trained LoRA")
    if ch.lora and ch.lora_trigger and ch.lora_trigger != trigger:
        return YamlChange("kept", path, f"{path.name}: {where}.lora_trigger is {ch.lora_trigger!r} (yours) and was left "
                                        f"alone; the LoRA was trained with {trigger!r}")
    if ch.lora and ch.lora_trigger == trigger:
        return YamlChange("unchanged", path, f"{path.name}: {character_id} already uses {ch.lora}")
    updates = {"lora": ch.lora or lora, "lora_trigger": trigger}
    new = cast.model_copy(update={"characters": [
        c.model_copy(update=updates) if i == index else c for i, c in enumerate(cast.characters)]})
    if _ours(project, path):
        wr = project.write_generated(path, new, "characters")
        if not wr.proposal:
            return YamlChange("written", wr.path, f"{path.name}: {character_id} now uses {updates['lora']}")
    text = path.read_text(encoding="utf-8")
    edited = _edit_text(text, index, updates)
    if edited is not None and _loads_as(edited, new):
        from novelcomic.fsutil import atomic_write_text

        atomic_write_text(path, edited)
        return YamlChange("written", path, f"{path.name}: {character_id} now uses {updates['lora']} "
                                           f"(only its lora and lora_trigger were written)")
    wr = project.write_generated(path, new, "characters", proposal_only=True)
    return YamlChange("proposal", wr.path, f"{path.name} could not be changed without rewriting your edits: the cast with "
                                           f"{character_id}'s LoRA is in {wr.path.name}")


def _ours(project: Project, path: Path) -> bool:
    """Whether characters.yaml is as novelcomic last wrote it (no user edit since)."""
    from novelcomic.fsutil import sha256_file

    record = project.store.asset("yaml", project.rel(path))
    return record is not None and record.content_hash == sha256_file(path)


def _loads_as(text: str, expected: CharactersFile) -> bool:
    from pydantic import ValidationError

    from novelcomic.models import CharactersFile

    try:
        return CharactersFile.model_validate(yaml.safe_load(text) or {}) == expected
    except (yaml.YAMLError, ValidationError):
        return False


def _edit_text(text: str, index: int, updates: dict[str, str]) -> str | None:
    """``text`` with ``updates`` set in the block mapping of ``characters[index]``; None when that
    mapping cannot be edited in place (flow style, not found)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if not isinstance(root, yaml.MappingNode):
        return None
    seq = next((v for k, v in root.value if getattr(k, "value", None) == "characters"), None)
    if not isinstance(seq, yaml.SequenceNode) or index >= len(seq.value):
        return None
    node = seq.value[index]
    if not isinstance(node, yaml.MappingNode) or node.flow_style or not node.value:
        return None
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement), applied from the end
    column = node.value[0][0].start_mark.column
    missing = []
    for key, value in updates.items():
        pair = next(((k, v) for k, v in node.value if getattr(k, "value", None) == key), None)
        if pair is None:
            missing.append(f"{' ' * column}{key}: {_scalar(value)}\n")
        elif not isinstance(pair[1], yaml.ScalarNode):
            return None
        else:
            start, end = pair[1].start_mark.index, pair[1].end_mark.index
            edits.append((start, end, ("" if end > start else " ") + _scalar(value)))
    if missing:
        end = node.value[-1][1].end_mark.index
        if end > 0 and text[end - 1] == "\n":
            at = end
        else:
            nl = text.find("\n", end)
            at = len(text) if nl < 0 else nl + 1
        prefix = "" if at == 0 or text[at - 1] == "\n" else "\n"
        edits.append((at, at, prefix + "".join(missing)))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


__all__ = ["YamlChange", "point_at_lora"]
