"""Commands about projects: new-project, status, validate, schema, backends."""

from __future__ import annotations

import json
from pathlib import Path

import click

from novelcomic.project import Project


@click.command("new-project")
@click.argument("name")
@click.option("--novel", "novel", type=click.Path(), default=None,
              help="The novel, a .txt file (a regular file or a link to one; at most 64 MB, or "
                   "NOVELCOMIC_MAX_NOVEL_MB megabytes). It is copied into the project, cleaned.")
@click.option("--theme", default=None, help="No novel? Have the configured LLM write one on this theme.")
@click.option("--chapters", "n_chapters", type=click.IntRange(1, 200), default=3, show_default=True,
              help="With --theme: how many chapters to write.")
@click.option("--words-per-chapter", type=click.IntRange(100, 20000), default=1500, show_default=True,
              help="With --theme: the length of each chapter.")
@click.option("--encoding", default=None, help="Text encoding (default: detected; utf-8, gb18030, big5, utf-16 …).")
@click.option("--title", default=None, help="Title (default: from the text or the file name).")
@click.option("--language", type=click.Choice(["zh", "en"]), default=None, help="Default: detected (zh with --theme).")
@click.option("--aspect", type=click.Choice(["9:16", "16:9"]), default="9:16", show_default=True)
@click.pass_obj
def new_project(obj: dict, name: str, novel: str | None, theme: str | None, n_chapters: int, words_per_chapter: int, encoding: str | None,
                title: str | None, language: str | None, aspect: str) -> None:
    """Create project NAME from a novel (decode, clean, split into chapters), or write the novel
    from a theme with an LLM (--theme; configure one with NOVELCOMIC_LLM_* variables).

    Never overwrites an existing project. NAME: at most 100 characters (200 bytes), no '/', '\\',
    '..', leading '.' or control characters.

    \b
    Environment:
      NOVELCOMIC_MAX_NOVEL_MB  the largest novel file read, in MB (default 64)
    """
    from novelcomic.errors import NovelcomicError

    root = Path(obj["root"]) if obj["root"] else None
    warnings: list[str] = []
    if (novel is None) == (theme is None):
        raise NovelcomicError("give either --novel FILE or --theme TEXT")
    if theme is not None:
        from novelcomic.ingest.write import create_project_from_theme

        project = create_project_from_theme(
            name, theme, n_chapters, root, language=language or "zh", aspect=aspect, words_per_chapter=words_per_chapter
        )
    else:
        from novelcomic.ingest.create import create_project

        assert novel is not None
        project = create_project(name, Path(novel), root, encoding=encoding, title=title, language=language, aspect=aspect,
                                 warnings=warnings)
    cfg = project.config()
    click.echo(f"created {project.dir} ({cfg.language}, {len(cfg.chapters)} chapter{'' if len(cfg.chapters) == 1 else 's'})")
    volume = ""
    for ch in cfg.chapters:
        if ch.volume and ch.volume != volume:
            volume = ch.volume
            click.echo(f"  {volume}")
        click.echo(f"  {'  ' if volume else ''}{ch.id}  {ch.title}")
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"next: novelcomic run {name}")


@click.command("status")
@click.argument("name")
@click.pass_obj
def status(obj: dict, name: str) -> None:
    """Show what has been made for each chapter of project NAME."""
    from novelcomic.status import project_status

    click.echo(project_status(Project.open(name, obj["root"])))


@click.command("validate")
@click.argument("name")
@click.pass_obj
def validate(obj: dict, name: str) -> None:
    """Check every YAML file of project NAME (errors give file:line: field), and create each
    configured backend with its options, as a run would (nothing is loaded or generated)."""
    from novelcomic.pipeline import check_backends, checked_storyboard

    project = Project.open(name, obj["root"])
    cfg = project.config()
    project.characters()
    project.props()
    project.locations()
    files = ["project.yaml"] + [p.name for p in (project.characters_yaml, project.props_yaml, project.locations_yaml) if p.exists()]
    planned, unplanned = 0, []
    for ch in cfg.chapters:
        if project.storyboard_path(ch.id).exists():
            checked_storyboard(project, ch.id)
            planned += 1
        else:
            unplanned.append(ch.id)
    backends = check_backends(project)
    from novelcomic.pipeline import advice

    for line in advice(project):
        click.echo(f"warning: {line}", err=True)
    click.echo(f"ok: {', '.join(files)}, {planned} storyboard{'s' if planned != 1 else ''}; backends {', '.join(backends)}")
    if unplanned:
        click.echo(f"not planned yet: chapter{'s' if len(unplanned) > 1 else ''} {', '.join(unplanned)} "
                   f"(novelcomic plan {project.name})")


@click.command("schema")
@click.argument("which", required=False, type=click.Choice(["project", "characters", "props", "locations", "storyboard"]))
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Write every schema as FILE.schema.json here.")
def schema(which: str | None, out: str | None) -> None:
    """Print the JSON Schema of a project file (or write them all with --out)."""
    from novelcomic.models import SCHEMA_MODELS
    from novelcomic.yamlio import write_schemas

    if out:
        write_schemas(Path(out))
        click.echo(f"wrote {len(SCHEMA_MODELS)} schemas to {out}")
        return
    models = {which: SCHEMA_MODELS[which]} if which else SCHEMA_MODELS
    payload = {k: m.model_json_schema() for k, m in models.items()}
    click.echo(json.dumps(payload[which] if which else payload, ensure_ascii=False, indent=2))


@click.command("backends")
def backends() -> None:
    """List the backends each stage can use (built-in and from plugins)."""
    from novelcomic.registry import REGISTRIES

    for stage, reg in REGISTRIES.items():
        click.echo(f"{stage:8} {', '.join(reg.names())}")


COMMANDS = [new_project, status, validate, schema, backends]
