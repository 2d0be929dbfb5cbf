"""YAML in and out, with errors that point at file, line and field.

Reading: the text is parsed once into a node tree (which remembers line numbers) and once into
plain data; pydantic validates the data and every error's location path is looked up in the node
tree to find its line. Writing: a ``# yaml-language-server: $schema=…`` first line so editors
autocomplete and check the file, then block-style YAML with unicode kept readable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from novelcomic.errors import NovelcomicError
from novelcomic.fsutil import atomic_write_text

M = TypeVar("M", bound=BaseModel)

SCHEMA_DIR = ".novelcomic/schema"


class _Loader(yaml.SafeLoader):
    pass


def read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parse ``path`` into (data, node tree); syntax errors raise NovelcomicError with the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NovelcomicError("file not found", file=path) from None
    except UnicodeDecodeError as exc:
        raise NovelcomicError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=path) from None
    try:
        node = yaml.compose(text, Loader=_Loader)
        _check_duplicate_keys(path, node)
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or str(exc)
        raise NovelcomicError(f"YAML syntax error: {problem}", file=path, line=line) from None
    except yaml.YAMLError as exc:  # not marked (e.g. a reader error on odd characters)
        raise NovelcomicError(f"YAML error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=path) from None
    except RecursionError:
        raise NovelcomicError("YAML nested too deeply", file=path) from None
    return data, node


def _check_duplicate_keys(path: Path, node: yaml.Node | None) -> None:
    """Refuse a mapping that names the same key twice (YAML says keys are unique; PyYAML would
    silently keep the last one): ``file:line: field: duplicate key 'fps' (lines 5 and 9)``, for
    the first duplicate in the file.

    Walks the node tree without recursion, each node once (aliases share nodes, so a
    "billion laughs" document is walked in linear time)."""
    seen: set[int] = set()
    found: list[tuple[int, int, str, tuple[Any, ...]]] = []  # (line, first line, key, field path)
    stack: list[tuple[yaml.Node, tuple[Any, ...]]] = [(node, ())] if node is not None else []
    while stack:
        n, loc = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, value in n.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    line = key.start_mark.line + 1
                    if (key.tag, key.value) in first:
                        found.append((line, first[(key.tag, key.value)], key.value, (*loc, key.value)))
                    else:
                        first[(key.tag, key.value)] = line
                    stack.append((value, (*loc, key.value)))
                else:
                    stack.append((value, loc))
        elif isinstance(n, yaml.SequenceNode):
            stack.extend((item, (*loc, i)) for i, item in enumerate(n.value))
    if found:
        line, first_line, key, loc = min(found, key=lambda f: f[0])
        more = f"; {len(found) - 1} more duplicate key{'s' if len(found) > 2 else ''} in this file" if len(found) > 1 else ""
        raise NovelcomicError(
            f"duplicate key {key!r} (lines {first_line} and {line}: remove one{more})",
            file=path, line=line, field=format_loc(loc),
        )


def line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the value at ``loc`` (keys and list indices), or of its nearest parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    node = value
                    line = key.start_mark.line + 1
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


MAX_ERRORS = 10  # listed per file; the rest are counted
_DUPLICATE_RE = re.compile(r"duplicate (\w+) id '(.+)'")


def _id_lines(node: yaml.Node | None, value: str) -> list[int]:
    """Lines of every ``id: <value>`` in the node tree, in file order."""
    out: list[int] = []
    stack = [node] if node is not None else []
    while stack:
        n = stack.pop()
        if isinstance(n, yaml.MappingNode):
            for key, val in n.value:
                if isinstance(key, yaml.ScalarNode) and key.value == "id" and isinstance(val, yaml.ScalarNode) and val.value == value:
                    out.append(key.start_mark.line + 1)
                stack.append(val)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
    return sorted(out)


_KINDS = {"shots": "shot", "scenes": "scene", "characters": "character", "props": "prop", "locations": "location",
          "chapters": "chapter", "lines": "line"}


def owner_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> str:
    """" (shot s02-08)" for a path inside a list item that has an id (the innermost one), so a
    message still names the right shot after shots were added or deleted; else ""."""
    found = ""
    current = node
    parent_key: Any = None
    for part in loc:
        if isinstance(current, yaml.MappingNode):
            nxt = next((v for k, v in current.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)), None)
            parent_key, current = part, nxt
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int) and part < len(current.value):
            current = current.value[part]
            if isinstance(current, yaml.MappingNode) and parent_key in _KINDS:
                ident = next((v.value for k, v in current.value
                              if isinstance(k, yaml.ScalarNode) and k.value == "id" and isinstance(v, yaml.ScalarNode)), None)
                if ident:
                    found = f" ({_KINDS[parent_key]} {ident})"
        else:
            break
    return found


def _locate(node: yaml.Node | None, err: Any) -> tuple[int | None, str | None, str]:
    """(line, field path, message) of one pydantic error."""
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    message = str(err["msg"]).removeprefix("Value error, ")
    if err.get("type") not in ("missing",) and "input" in err and not isinstance(err["input"], dict | list):
        message += f" (got {err['input']!r})"
    line = line_of(node, loc)
    message += owner_of(node, loc)
    dup = _DUPLICATE_RE.match(message)
    if dup:  # a whole-file check: point at the second use of the id
        lines = _id_lines(node, dup.group(2))
        line = lines[1] if len(lines) > 1 else line
    return line, format_loc(loc) or None, message


def load_model(path: Path, model: type[M]) -> M:
    """Load and validate ``path``. Errors raise one NovelcomicError: the first as
    ``file:line: field: message``, then up to :data:`MAX_ERRORS` - 1 more, one per line."""
    data, node = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise NovelcomicError(f"expected a mapping at the top level, found {type(data).__name__}", file=path, line=1)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        found = [_locate(node, err) for err in exc.errors()]
        line, field, message = found[0]
        for more_line, more_field, more_message in found[1:MAX_ERRORS]:
            where = f"{path}:{more_line}" if more_line else str(path)
            message += f"\n  {where}: {more_field + ': ' if more_field else ''}{more_message}"
        if len(found) > MAX_ERRORS:
            message += f"\n  (and {len(found) - MAX_ERRORS} more errors)"
        raise NovelcomicError(message, file=path, line=line, field=field) from None


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, allow_unicode=True, sort_keys=False, default_flow_style=False, width=100)


def model_to_yaml(obj: BaseModel, schema_name: str | None = None, schema_ref: str | None = None) -> str:
    """Block YAML for ``obj`` (defaults left out), with the schema modeline first."""
    header = ""
    if schema_ref or schema_name:
        ref = schema_ref or f"{SCHEMA_DIR}/{schema_name}.schema.json"
        header = f"# yaml-language-server: $schema={ref}\n"
    data = obj.model_dump(mode="json", exclude_defaults=True)
    return header + dump_yaml(data)


def save_model(path: Path, obj: BaseModel, schema_name: str | None = None, schema_ref: str | None = None) -> Path:
    return atomic_write_text(path, model_to_yaml(obj, schema_name, schema_ref))


def write_schemas(out_dir: Path) -> Path:
    """Write the JSON Schema of every project file as ``<name>.schema.json`` into ``out_dir``."""
    import json

    from novelcomic.models import SCHEMA_MODELS

    for name, model in SCHEMA_MODELS.items():
        atomic_write_text(Path(out_dir) / f"{name}.schema.json", json.dumps(model.model_json_schema(), ensure_ascii=False, indent=2))
    return Path(out_dir)
