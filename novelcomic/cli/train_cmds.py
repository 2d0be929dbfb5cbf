"""``novelcomic train-character``: a LoRA of one character, trained on its sheet(s) and reference images."""

from __future__ import annotations

import sys

import click

from novelcomic.project import Project


@click.command("train-character")
@click.argument("name")
@click.argument("character")
@click.option("--steps", type=int, default=None, help="Training steps (default: 600 for SD1.5, 800 for SDXL).")
@click.option("--rank", type=int, default=None, help="LoRA rank (default: 8 for SD1.5, 16 for SDXL).")
@click.option("--lr", type=float, default=None, help="Learning rate (default: 1e-4).")
@click.option("--resolution", type=int, default=None, help="Training image side in pixels (default: 512 SD1.5, 1024 SDXL).")
@click.option("--seed", type=int, default=None, help="Seed of the training run's randomness (default: 0).")
@click.option("--checkpoint-every", type=int, default=None, help="Steps between checkpoints (default: 100).")
@click.option("--device", default=None, help="cpu, cuda[:N], mps (default: stages.render.options.device, else auto).")
@click.option("--force", is_flag=True, help="Train again from step 0 even if the LoRA is up to date.")
@click.pass_obj
def train_character(
    obj: dict, name: str, character: str, steps: int | None, rank: int | None, lr: float | None,
    resolution: int | None, seed: int | None, checkpoint_every: int | None, device: str | None, force: bool,
) -> None:
    """Train a LoRA of CHARACTER of project NAME on its sheet and reference images.

    The model is the project's render model (stages.render.options.model, SD1.5 or SDXL). The LoRA
    is written to loras/CHARACTER.safetensors and characters.yaml points the character at it, with
    the trigger word nc_CHARACTER put first in its shots' prompts: the next run re-draws that
    character's shots, and only those. Stopped or killed, the same command resumes from the last
    checkpoint (.novelcomic/train/CHARACTER/); with unchanged inputs it trains nothing.
    """
    from novelcomic import procs
    from novelcomic.train.character import train_character as run

    project = Project.open(name, obj.get("root"))
    report = _Reporter()
    with project.lock():
        try:
            outcome = run(project, character, steps=steps, rank=rank, lr=lr, resolution=resolution, seed=seed,
                          checkpoint_every=checkpoint_every, device=device, force=force, progress=report)
        except KeyboardInterrupt as exc:
            report.end()
            if isinstance(exc, procs.Interrupted) and exc.summary:
                exc.summary = f"{exc.summary} in {project.rel(project.state_dir)}/train/{character}"
            raise
    report.end()
    where = project.rel(outcome.path)
    if outcome.trained:
        resumed = f", resumed from step {outcome.resumed_from}" if outcome.resumed_from else ""
        loss = f", loss {outcome.loss:.4f}" if outcome.loss is not None else ""
        click.echo(f"{character}: LoRA written to {where} ({outcome.steps} steps{resumed}{loss}); trigger {outcome.trigger}")
    else:
        click.echo(f"{character}: {where} is up to date (nothing trained; --force trains again)")
    yaml = outcome.yaml
    if yaml.status in ("kept", "proposal"):
        click.echo(f"warning: {yaml.message}", err=True)
    else:
        click.echo(yaml.message)
    if yaml.status == "written":
        click.echo(f"the next `novelcomic run {project.name}` re-draws the shots {character} is in")


class _Reporter:
    """One progress line, rewritten in place on a terminal; a line per ~5 % otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = -1
        self.open = False

    def __call__(self, p: object) -> None:
        step, total = p.step, p.total  # type: ignore[attr-defined]
        if step == p.resumed_from and step:  # type: ignore[attr-defined]
            click.echo(f"resuming from the checkpoint at step {step} of {total}", err=True)
        every = max(1, total // 20)
        if not self.tty and step != total and step % every and not p.checkpoint:  # type: ignore[attr-defined]
            return
        if step == self.last:
            return
        self.last = step
        loss = p.loss  # type: ignore[attr-defined]
        rate = p.seconds_per_step  # type: ignore[attr-defined]
        eta = f", {rate * (total - step):.0f} s left" if rate and step < total else ""
        text = (f"training: step {step}/{total}" + (f", loss {loss:.4f}" if loss == loss else "")
                + (f", {rate:.2f} s/step" if rate else "") + eta + (" (checkpoint)" if p.checkpoint else ""))  # type: ignore[attr-defined]
        if self.tty:
            click.echo("\r" + text.ljust(78), nl=False, err=True)
            self.open = True
        else:
            click.echo(text, err=True)

    def end(self) -> None:
        if self.open:
            click.echo("", err=True)
            self.open = False


COMMANDS = [train_character]
