"""Issue 14, part 1: one path policy for every path-valued field of a project's YAML.

Every field that names a file refuses a path outside the project (``../../../../etc/passwd``, an
absolute path, a symlink in the project pointing out) in ``validate`` and in a run, with one line
``file:line: field: path outside the project: …``; a path inside the project, a folder named in
NOVELCOMIC_ALLOWED_DIRS, and weights under ``~/models`` are allowed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from novelcomic.errors import NovelcomicError
from novelcomic.paths import ENV, resolve_user_path

NOVEL = "第一章 开始\n\n阿青说：“你好。”河水静静地流。\n"

# field → (file, how to set the value in that file's data)
FIELDS: dict[str, tuple[str, Any]] = {
    "style_reference": ("project.yaml", lambda d, v: d.__setitem__("style_reference", v)),
    "music.tracks.calm": ("project.yaml", lambda d, v: d.setdefault("music", {}).setdefault("tracks", {}).__setitem__("calm", v)),
    "subtitles.font": ("project.yaml", lambda d, v: d.setdefault("subtitles", {}).__setitem__("font", v)),
    "stages.render.options.ip_adapter.path": ("project.yaml", lambda d, v: d.setdefault("stages", {}).__setitem__(
        "render", {"backend": "diffusers", "options": {"model": "owner/model", "ip_adapter": {"path": v, "weight_name": "x.bin"}}})),
    "stages.render.options.model": ("project.yaml", lambda d, v: d.setdefault("stages", {}).__setitem__(
        "render", {"backend": "diffusers", "options": {"model": v}})),
    "characters[0].reference_images[0]": ("characters.yaml", lambda d, v: d["characters"][0].__setitem__("reference_images", [v])),
    "characters[0].lora": ("characters.yaml", lambda d, v: d["characters"][0].__setitem__("lora", v)),
    "props[0].reference_images[0]": ("props.yaml", lambda d, v: d["props"][0].__setitem__("reference_images", [v])),
}


def cli(*args: str, root: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != ENV}
    full.update({"NOVELCOMIC_PROJECTS_DIR": str(root), **(env or {})})
    return subprocess.run([sys.executable, "-m", "novelcomic", *args], capture_output=True, text=True, env=full, timeout=300)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("paths")
    novel = base / "novel.txt"
    novel.write_text(NOVEL, encoding="utf-8")
    root = base / "projects"
    r = cli("new-project", "p", "--novel", str(novel), root=root)
    assert r.returncode == 0, r.stderr
    d = root / "p"
    (d / "characters.yaml").write_text(yaml.safe_dump(
        {"characters": [{"id": "aqing", "name": "阿青"}]}, allow_unicode=True), encoding="utf-8")
    (d / "props.yaml").write_text(yaml.safe_dump({"props": [{"id": "sword", "name": "剑"}]}, allow_unicode=True), encoding="utf-8")
    (d / "refs").mkdir()
    (d / "refs" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return root


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "projects"
    shutil.copytree(template, root, symlinks=True)
    return root


def set_field(root: Path, field: str, value: str) -> None:
    name, setter = FIELDS[field]
    path = root / "p" / name
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    setter(data, value)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def assert_outside(r: subprocess.CompletedProcess[str], field: str, file: str) -> None:
    assert r.returncode != 0, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert f"{file}:" in lines[0] and f": {field}: path outside the project" in lines[0], lines[0]
    assert ENV in lines[0], lines[0]


@pytest.mark.parametrize("value", ["../../../../etc/passwd", "/etc/passwd"])
@pytest.mark.parametrize("field", list(FIELDS))
def test_outside_paths_are_refused_by_validate_and_run(project: Path, field: str, value: str) -> None:
    set_field(project, field, value)
    assert_outside(cli("validate", "p", root=project), field, FIELDS[field][0])
    if value.startswith("/"):
        return  # a run goes through the same check as validate (pipeline.check_backends): one run per field is enough
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    assert_outside(cli("run", "p", "--no-prefect", root=project), field, FIELDS[field][0])
    made = [p for p in sorted(p.relative_to(project) for p in project.rglob("*")) if p not in before]
    assert not [p for p in made if p.parts[1] in ("storyboards", "design", "render", "audio", "out")], made


def test_a_symlink_in_the_project_pointing_outside_is_refused(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"\x89PNG\r\n\x1a\n")
    (project / "p" / "refs" / "link.png").symlink_to(outside)
    set_field(project, "characters[0].reference_images[0]", "refs/link.png")
    assert_outside(cli("validate", "p", root=project), "characters[0].reference_images[0]", "characters.yaml")
    assert_outside(cli("run", "p", "--no-prefect", root=project), "characters[0].reference_images[0]", "characters.yaml")


def test_paths_inside_the_project_pass(project: Path) -> None:
    set_field(project, "characters[0].reference_images[0]", "refs/a.png")
    set_field(project, "props[0].reference_images[0]", "./refs/a.png")
    set_field(project, "style_reference", "refs/a.png")
    r = cli("validate", "p", root=project)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok:")


def test_an_allowed_dir_lets_the_same_outside_path_through(project: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    set_field(project, "characters[0].reference_images[0]", str(shared / "a.png"))
    assert_outside(cli("validate", "p", root=project), "characters[0].reference_images[0]", "characters.yaml")
    env = {ENV: os.pathsep.join([str(tmp_path / "elsewhere"), str(shared)])}
    r = cli("validate", "p", root=project, env=env)
    assert r.returncode == 0, r.stderr


def test_a_lora_under_home_models_is_allowed(project: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / "aqing.safetensors").write_bytes(b"0")
    set_field(project, "characters[0].lora", "~/models/aqing.safetensors")
    env = {"HOME": str(home), "HF_HOME": str(tmp_path / "hf")}
    r = cli("validate", "p", root=project, env=env)
    assert r.returncode == 0, r.stderr
    # a reference image is no weight: ~/models is not open to it
    set_field(project, "characters[0].reference_images[0]", "~/models/aqing.safetensors")
    assert_outside(cli("validate", "p", root=project, env=env), "characters[0].reference_images[0]", "characters.yaml")


def test_hub_ids_and_font_families_are_no_paths(project: Path) -> None:
    set_field(project, "characters[0].lora", "someone/aqing-lora")
    set_field(project, "subtitles.font", "WenQuanYi Micro Hei")  # installed by scripts/install.sh
    r = cli("validate", "p", root=project)
    assert r.returncode == 0, r.stderr


def test_resolve_user_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    proj = tmp_path / "proj"
    proj.mkdir()
    assert resolve_user_path("a/b.png", proj, "x") == (proj / "a" / "b.png").resolve()
    with pytest.raises(NovelcomicError) as exc:
        resolve_user_path("../x.png", proj, "style_reference")
    assert str(exc.value).startswith("style_reference: path outside the project: ../x.png")
    hf = tmp_path / "home" / ".cache" / "huggingface" / "hub" / "w.bin"
    assert resolve_user_path(str(hf), proj, "lora", weights=True) == hf.resolve()
    with pytest.raises(NovelcomicError):
        resolve_user_path(str(hf), proj, "reference_images")
    monkeypatch.setenv(ENV, str(tmp_path))
    assert resolve_user_path("../x.png", proj, "style_reference") == (tmp_path / "x.png").resolve()
