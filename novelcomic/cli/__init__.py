"""The ``novelcomic`` command line. Small on purpose; ``novelcomic COMMAND --help`` documents each.

Every user-facing failure is a :class:`~novelcomic.errors.NovelcomicError`, printed as one line
(``error: file:line: field: message``) with exit status 1.
"""

from __future__ import annotations

import sys

import click

from novelcomic.errors import NovelcomicError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--projects-dir",
    envvar="NOVELCOMIC_PROJECTS_DIR",
    type=click.Path(file_okay=False),
    default=None,
    help="Where projects live (default ./projects; env NOVELCOMIC_PROJECTS_DIR).",
)
@click.version_option(package_name="novelcomic")
@click.pass_context
def cli(ctx: click.Context, projects_dir: str | None) -> None:
    """Turn a novel into narrated comic videos, one per chapter."""
    ctx.obj = {"root": projects_dir}


def _register() -> None:
    from novelcomic.cli import edit_cmds, project_cmds, run_cmds, serve_cmds, style_cmds

    for module in (project_cmds, run_cmds, edit_cmds, style_cmds, serve_cmds):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, standalone_mode=False)
    except NovelcomicError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted: finished work is kept; run the same command again to resume", err=True)
        sys.exit(130)
