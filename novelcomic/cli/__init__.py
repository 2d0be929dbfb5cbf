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
    from novelcomic.cli import edit_cmds, estimate_cmds, project_cmds, run_cmds, serve_cmds, style_cmds, train_cmds

    for module in (project_cmds, run_cmds, edit_cmds, style_cmds, serve_cmds, train_cmds, estimate_cmds):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    from novelcomic import procs

    procs.COMMAND_PROCESS = procs.COMMAND_PROCESS or argv is None
    try:
        with procs.handle_signals():
            cli.main(args=argv, standalone_mode=False)
    except NovelcomicError as exc:
        click.echo(f"error: {exc}", err=True)
        if argv is None and "prefect" in sys.modules:  # the command itself (not a call from Python):
            procs.exit_within(5.0, 1)  # Prefect's exit hooks must not wait on an API that is gone
        sys.exit(1)
    except click.exceptions.Abort as exc:
        if exc.__cause__ is None or not procs.is_stop(exc.__cause__):  # a prompt answered with EOF
            click.echo("aborted", err=True)
            sys.exit(130)
        _stopped(exc.__cause__)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BaseException as exc:
        if not procs.is_stop(exc):
            raise
        _stopped(exc)


def _stopped(exc: BaseException) -> None:
    """SIGTERM or Ctrl-C: one line saying what was kept, and the signal's exit status."""
    from novelcomic import procs

    stopped = procs.as_interrupted(exc)
    procs.stop(grace=0.5)
    kept = f"; {stopped.summary}" if stopped.summary else "; finished work is kept"
    click.echo(f"stopped by {stopped}{kept}: run the same command again to resume", err=True)
    if procs.received() is not None:
        # a worker thread still inside a model call, or Prefect flushing events to a dead API,
        # must not hold the exit: out within 3 s whatever they do
        procs.exit_within(3.0, stopped.exit_code)
    sys.exit(stopped.exit_code)
