"""The ``openai`` image backend against a 127.0.0.1 server following OpenAI's Images API
(:class:`tests.test_remote.OpenAIStub`): edits with ``image[]`` parts, b64 and URL answers, 429
with Retry-After, an asynchronous relay, and whole runs through the CLI."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from PIL import Image

from novelcomic.errors import NovelcomicError
from novelcomic.models import Character, Scene, Shot
from novelcomic.registry import image_backends
from novelcomic.render.base import CharacterRef, ShotRequest
from novelcomic.render.openai_images import OpenAIImages, fit_to_frame, nearest_size
from tests.test_remote import Failure, OpenAIStub, png_bytes, stub  # noqa: F401  (fixture)

NOVEL = ("第一章 开始\n\n阿青说：“你好。”河水静静地流。\n\n老陈看着远山，叹了口气。\n\n天色渐暗，阿青点起一盏灯笼，走进村子。\n\n"
         "第二章 结束\n\n老陈笑道：“再见。”阿青挥手。\n\n夜色降临，村子里一片寂静。\n\n远处传来钟声。\n")


def backend(url: str, **options: object) -> OpenAIImages:
    return image_backends.create("openai", {"base_url": url, "model": "gpt-image-1", "api_key_env": "none",
                                            "retries": 2, "backoff": 0.01, **options})


def request(refs: list[list[Path]], width: int = 320, height: int = 180) -> ShotRequest:
    chars = [Character(id=f"c{i}", name=f"C{i}") for i in range(len(refs))]
    shot = Shot(id="s01-01", characters=[c.id for c in chars])
    return ShotRequest(chapter="01", scene=Scene(id="s01", shots=[shot]), shot=shot,
                       characters=[CharacterRef(c, r) for c, r in zip(chars, refs)], location=None, props=[],
                       style=[], width=width, height=height, seed=7, prompt="a fox by the river")


def refs(tmp_path: Path, n: int) -> list[Path]:
    out = []
    for i in range(n):
        p = tmp_path / f"ref{i}.png"
        p.write_bytes(png_bytes(16, 16, (i * 10, 0, 0)))
        out.append(p)
    return out


def test_shot_with_characters_goes_to_edits_with_image_parts(stub: OpenAIStub, tmp_path: Path) -> None:
    a, b, c = refs(tmp_path, 3)
    result = backend(stub.url, max_references=2).render_shot(request([[a, c], [b]]))
    seen = stub.requests("/v1/images/edits")
    assert len(seen) == 1 and not stub.requests("/v1/images/generations")
    # the first reference of each character first, at most max_references
    assert [name for name, _ in seen[0].files["image[]"]] == ["ref0.png", "ref1.png"]
    assert Image.open(io.BytesIO(seen[0].files["image[]"][1][1])).getpixel((0, 0)) == (10, 0, 0)
    assert seen[0].fields["model"] == ["gpt-image-1"] and seen[0].fields["prompt"] == ["a fox by the river"]
    assert seen[0].fields["size"] == ["1536x1024"]  # the gpt-image size nearest 16:9
    assert result.image.size == (320, 180)
    assert result.image.getpixel((160, 90)) == (200, 80, 30)  # the server's answer for 2 references
    assert result.meta["endpoint"] == "images/edits" and result.meta["references"] == ["ref0.png", "ref1.png"]


def test_shot_without_characters_goes_to_generations_and_url_answers_are_fetched(stub: OpenAIStub) -> None:
    stub.mode = "url"
    result = backend(stub.url, quality="low", price_per_image=0.04).render_shot(request([], 180, 320))
    gen = stub.requests("/v1/images/generations")
    assert len(gen) == 1 and not stub.requests("/v1/images/edits")
    assert gen[0].json == {"model": "gpt-image-1", "prompt": "a fox by the river", "n": 1, "size": "1024x1536", "quality": "low"}
    assert len(stub.requests("/files/img0.png")) == 1
    assert result.image.size == (180, 320) and result.image.getpixel((90, 160)) == (20, 60, 200)
    assert result.meta["cost"] == 0.04


def test_429_with_retry_after_is_waited_out(stub: OpenAIStub) -> None:
    stub.fail.append(Failure(429, "0.7"))
    start = time.monotonic()
    result = backend(stub.url).render_shot(request([]))
    gen = stub.requests("/v1/images/generations")
    assert len(gen) == 2 and gen[1].at - gen[0].at >= 0.7
    assert time.monotonic() - start < 3 and result.image.size == (320, 180)


def test_async_relay_is_polled(stub: OpenAIStub, tmp_path: Path) -> None:
    stub.mode = "async"
    be = backend(stub.url, **{"async": {"poll": "/v1/tasks/{id}", "interval": 0.02}})
    result = be.render_shot(request([refs(tmp_path, 1)]))
    polls = [s for s in stub.seen if s.path.startswith("/v1/tasks/")]
    assert [s.path for s in polls] == ["/v1/tasks/task-unified-0"] * 3
    assert result.meta["task"] == "task-unified-0" and result.image.getpixel((10, 10)) == (200, 40, 30)
    # without async configured, a task id is a one-line error saying what to set
    with pytest.raises(NovelcomicError, match=r"sent no image \(the server answered with a task id: set async"):
        backend(stub.url).render_shot(request([]))


def test_options_are_checked_with_their_field() -> None:
    for options, needle in (
        ({"model": None}, "stages.render.options.model: the openai image backend needs a model"),
        ({"size": "big"}, "stages.render.options.size: size 'big' must be WIDTHxHEIGHT"),
        ({"concurrency": 0}, "stages.render.options.concurrency: concurrency 0 must be a whole number"),
        ({"async": {"poll": "/v1/tasks"}}, "stages.render.options.async: async"),
        ({"api_key": "sk-1"}, "stages.render.options.api_key: a key does not belong in project.yaml"),
        ({"api_key_env": "NC_NOT_SET_ANYWHERE"}, "stages.render.options.api_key_env: the environment variable NC_NOT_SET_ANYWHERE is not set"),
        ({"stpes": 3}, "stages.render.options.stpes: unknown option(s) stpes"),
    ):
        with pytest.raises(NovelcomicError) as info:
            backend("http://127.0.0.1:9/v1", **options)
        assert str(info.value).startswith(needle), str(info.value)


def test_sizes_and_crop() -> None:
    assert nearest_size(1920, 1080, ("1024x1024", "1536x1024", "1024x1536")) == "1536x1024"
    assert nearest_size(1080, 1920, ("1024x1024", "1792x1024", "1024x1792")) == "1024x1792"
    assert nearest_size(500, 500, ("256x256", "512x512", "1024x1024")) == "1024x1024"
    img = Image.new("RGB", (300, 100), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 50, 100))  # a blue strip on the left is cropped away
    out = fit_to_frame(img, 100, 100)
    assert out.size == (100, 100) and out.getpixel((0, 50)) == (255, 0, 0)


# --------------------------------------------------------------------------- the CLI, end to end


def _cli(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "NOVELCOMIC_PROJECTS_DIR": str(root), **(env or {})}
    return subprocess.run([sys.executable, "-m", "novelcomic", *args], capture_output=True, text=True, env=full, timeout=300)


def _project(root: Path, tmp_path: Path, url: str, **options: object) -> Path:
    novel = tmp_path / "novel.txt"
    novel.write_text(NOVEL, encoding="utf-8")
    assert _cli(root, "new-project", "story", "--novel", str(novel)).returncode == 0
    project = root / "story"
    cfg = yaml.safe_load((project / "project.yaml").read_text(encoding="utf-8"))
    cfg["resolution"] = [320, 180]
    cfg.setdefault("stages", {})["render"] = {"backend": "openai", "options": {
        "base_url": url, "model": "gpt-image-1", "retries": 1, "backoff": 0.01, **options}}
    cfg["stages"]["design"] = {"backend": "animatic"}
    (project / "project.yaml").write_text(yaml.dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    r = _cli(root, "run", "story", "--stage", "plan", "--stage", "design", "--no-prefect")
    assert r.returncode == 0, r.stderr
    return project


def _shots(project: Path) -> list[Path]:
    return sorted(p for p in (project / "render").rglob("*.png") if ".v" not in p.name)


def test_cli_key_missing_is_one_line(stub: OpenAIStub, root: Path, tmp_path: Path) -> None:
    project = _project(root, tmp_path, stub.url, api_key_env="NC_STUB_KEY")
    env = {k: v for k, v in os.environ.items() if k != "NC_STUB_KEY"}
    r = subprocess.run([sys.executable, "-m", "novelcomic", "run", "story", "--stage", "render", "--no-prefect"],
                       capture_output=True, text=True, env={**env, "NOVELCOMIC_PROJECTS_DIR": str(root)}, timeout=300)
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1, r.stderr
    assert "project.yaml:" in lines[0] and "stages.render.options.api_key_env" in lines[0] and "NC_STUB_KEY" in lines[0]
    assert stub.seen == [] and not _shots(project)


def test_cli_server_killed_mid_render_then_the_next_run_redoes_only_the_missing_shots(root: Path, tmp_path: Path) -> None:
    first = OpenAIStub().start()
    port = first.port
    project = _project(root, tmp_path, first.url, api_key_env="NC_STUB_KEY")
    first.key = "sk-stub"
    first.kill_after = 2
    r = _cli(root, "run", "story", "--stage", "render", "--no-prefect", env={"NC_STUB_KEY": "sk-stub"})
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1, r.stderr
    assert f"127.0.0.1:{port}/v1/images/" in lines[0] and "Traceback" not in r.stderr
    done = _shots(project)
    assert len(done) == 2
    for p in done:
        assert Image.open(p).size == (320, 180)
    # the server is back (same address): only the shots still missing are drawn
    second = OpenAIStub()
    second.key = "sk-stub"
    second.start(port)
    try:
        r = _cli(root, "run", "story", "--stage", "render", "--no-prefect", env={"NC_STUB_KEY": "sk-stub"})
        assert r.returncode == 0, r.stderr
        total = len(_shots(project))
        drawn = len(second.requests("/v1/images/edits")) + len(second.requests("/v1/images/generations"))
        assert total > 2 and drawn == total - 2
        # shots with characters went to edits with their sheets; the others to generations
        for seen in second.requests("/v1/images/edits"):
            sheets = seen.files["image[]"]
            assert sheets and all(Image.open(io.BytesIO(b)).size[0] > 100 for _, b in sheets)
        assert all(s.headers["authorization"] == "Bearer sk-stub" for s in second.seen)
    finally:
        second.stop()
