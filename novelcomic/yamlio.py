"""YAML in and out, with errors that point at file, line and field.

Reading: the text is parsed once into a node tree (which remembers line numbers) and once into
plain data; pydantic validates the data and every error's location path is looked up in the node
tree to find its line. Writing: a ``# yaml-language-server: $schema=…`` first line so editors
autocomplete and check the file, then block-style YAML with unicode kept readable.
"""

from __future__ import annotations

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
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or str(exc)
        raise NovelcomicError(f"YAML syntax error: {problem}", file=path, line=line) from None
    return data, node


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


def load_model(path: Path, model: type[M]) -> M:
    """Load and validate ``path``; the first error raises with file:line: field: message."""
    data, node = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise NovelcomicError(f"expected a mapping at the top level, found {type(data).__name__}", file=path, line=1)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        more = f" (and {exc.error_count() - 1} more errors)" if exc.error_count() > 1 else ""
        value = ""
        if err.get("type") not in ("missing",) and "input" in err and not isinstance(err["input"], dict | list):
            value = f" (got {err['input']!r})"
        raise NovelcomicError(
            f"{err['msg']}{value}{more}", file=path, line=line_of(node, loc), field=format_loc(loc) or None
        ) from None


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
