"""``novelcomic estimate``: what a run still has to make, by the run's own hashes, and what a
paid image backend will charge for it; ``status`` says what was spent."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from novelcomic import pipeline
from novelcomic.cli import cli
from novelcomic.cli.estimate_cmds import estimate, spent
from novelcomic.project import Project
from tests.prefect_fixtures import tiny_project


def run(root: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--projects-dir", str(root), *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_estimate_counts_what_is_left_and_prices_it(root: Path) -> None:
    d = tiny_project(root, chapters=("01", "02"))
    out = run(root, "estimate", "tiny")
    assert "01: 4 of 4 shots to draw, 4 of 4 lines to speak" in out and "02: 4 of 4 shots" in out
    assert "sheets: 1 of 1 to draw" in out and "images to draw: 9" in out
    assert "cost: not known" in out  # the animatic has no price
    p = Project(d)
    pipeline.produce(p, chapters=["01"], stages=["design", "render"])
    est = estimate(p, ["01"])
    assert (est.shots_todo, est.sheets_todo, est.lines_todo) == (0, 0, 4)
    # a paid backend: every shot is drawn again (another backend), each at its price
    cfg = p.config()
    cfg.stages.render.backend = "openai"
    cfg.stages.render.options = {"model": "gpt-image-1", "price_per_image": 0.04}
    p.save_config(cfg)
    p.close()
    out = run(root, "estimate", "tiny", "--chapters", "1")
    assert "01: 4 of 4 shots to draw" in out and "02" not in out.split("\n", 1)[1]
    assert "cost: 0.16 (4 shots × 0.04, price_per_image)" in out


def test_status_prints_what_was_spent(root: Path) -> None:
    d = tiny_project(root)
    p = Project(d)
    assert "spent" not in run(root, "status", "tiny")
    image = d / "render" / "01" / "s01-01.png"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"png")
    p.store.record("shot", "01/s01-01", image, inputs_hash="x", chapter="01", meta={"cost": 0.04})
    p.store.record("shot", "01/s01-02", image, inputs_hash="y", chapter="01",
                   meta={"cost": 0.04, "history": {"1": {"meta": {"cost": 0.05}}}})
    total, n = spent(p)
    assert n == 3 and abs(total - 0.13) < 1e-9  # both images, and the earlier version one of them replaced
    p.close()
    assert "spent: 0.13 on 3 images (price_per_image)" in run(root, "status", "tiny")
