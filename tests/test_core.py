"""The project format, YAML errors, never-overwrite, registry, atomic writes, lock, cheap import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from novelcomic.errors import NovelcomicError, ProjectLockedError
from novelcomic.fsutil import atomic_path, atomic_write_text
from novelcomic.models import Character, CharactersFile, ProjectConfig, Storyboard
from novelcomic.pipeline import select_chapters
from novelcomic.project import Project, check_project_name
from novelcomic.registry import UnknownBackendError, image_backends, planners
from novelcomic.yamlio import load_model

from tests.fakes import make_project


def test_validation_error_names_file_line_and_field(tmp_path: Path) -> None:
    p = tmp_path / "01.yaml"
    p.write_text("chapter: '01'\nscenes:\n- id: s01\n  shots:\n  - id: s01-01\n    camera:\n      size: huge\n", encoding="utf-8")
    with pytest.raises(NovelcomicError) as e:
        load_model(p, Storyboard)
    msg = str(e.value)
    assert msg.startswith(f"{p}:7: scenes[0].shots[0].camera.size:"), msg
    assert "huge" in msg and msg.endswith("(shot s01-01)"), msg  # the shot by its id, not only its index


def test_every_validation_error_is_listed_with_its_line(tmp_path: Path) -> None:
    p = tmp_path / "project.yaml"
    p.write_text("titel: x\nfps: fast\n", encoding="utf-8")
    with pytest.raises(NovelcomicError) as e:
        load_model(p, ProjectConfig)
    lines = str(e.value).splitlines()
    assert lines[0] == f"{p}:1: title: Field required"
    assert sorted(ln.strip() for ln in lines[1:]) == [
        f"{p}:1: titel: Extra inputs are not permitted (got 'x')",
        f"{p}:2: fps: Input should be a valid integer, unable to parse string as an integer (got 'fast')",
    ]


def test_a_duplicate_id_points_at_its_second_use(tmp_path: Path) -> None:
    p = tmp_path / "01.yaml"
    p.write_text("chapter: '01'\nscenes:\n- id: s01\n  shots:\n  - id: s01-01\n  - id: s01-02\n  - id: s01-01\n", encoding="utf-8")
    with pytest.raises(NovelcomicError) as e:
        load_model(p, Storyboard)
    assert str(e.value) == f"{p}:7: duplicate shots id 's01-01'"


def test_yaml_syntax_error_gives_line(tmp_path: Path) -> None:
    p = tmp_path / "project.yaml"
    p.write_text("title: x\nfps: 30\nstyle: [a, b\n", encoding="utf-8")
    with pytest.raises(NovelcomicError) as e:
        load_model(p, ProjectConfig)
    assert e.value.file == str(p) and e.value.line is not None and e.value.line >= 3
    assert "YAML syntax error" in str(e.value)


def test_missing_required_field(tmp_path: Path) -> None:
    p = tmp_path / "project.yaml"
    p.write_text("fps: 30\n", encoding="utf-8")
    with pytest.raises(NovelcomicError, match=r"project.yaml:1: title: Field required"):
        load_model(p, ProjectConfig)


def test_unknown_character_id_in_storyboard(root: Path) -> None:
    d = make_project(root)
    proj = Project(d)
    proj.write_generated(proj.characters_yaml, CharactersFile(characters=[Character(id="a", name="阿青")]), "characters")
    sb = proj.storyboard_path("01")
    sb.parent.mkdir()
    sb.write_text(
        "chapter: '01'\nscenes:\n- id: s01\n  shots:\n  - id: s01-01\n    lines:\n    - speaker: a\n      text: 你好\n"
        "    - speaker: ghost\n      text: 我是谁\n",
        encoding="utf-8",
    )
    with pytest.raises(NovelcomicError) as e:
        proj.storyboard("01")
    assert e.value.line == 9 and "ghost" in str(e.value) and str(sb) in str(e.value)
    assert str(e.value).endswith("unknown character id 'ghost' (not in characters.yaml) (shot s01-01)")


def test_generated_yaml_has_schema_modeline_that_resolves(root: Path) -> None:
    d = make_project(root)
    proj = Project(d)
    sb = Storyboard(chapter="01")
    wr = proj.write_generated(proj.storyboard_path("01"), sb, "storyboard")
    first = wr.path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=")
    ref = first.split("$schema=", 1)[1]
    schema = json.loads((wr.path.parent / ref).resolve().read_text(encoding="utf-8"))
    assert schema["title"] == "Storyboard"
    assert (d / "project.yaml").read_text(encoding="utf-8").startswith("# yaml-language-server: $schema=.novelcomic/schema/project.schema.json")


def test_user_edits_are_never_overwritten(root: Path) -> None:
    d = make_project(root)
    proj = Project(d)
    chars = CharactersFile(characters=[Character(id="a", name="阿青")])
    assert proj.write_generated(proj.characters_yaml, chars, "characters").status == "written"
    assert proj.write_generated(proj.characters_yaml, chars, "characters").status == "unchanged"
    edited = proj.characters_yaml.read_text(encoding="utf-8").replace("阿青", "阿青青")
    proj.characters_yaml.write_text(edited, encoding="utf-8")
    new = CharactersFile(characters=[Character(id="a", name="阿青"), Character(id="b", name="老陈")])
    wr = proj.write_generated(proj.characters_yaml, new, "characters")
    assert wr.status == "proposal" and wr.path.name == "characters.proposed.yaml"
    assert proj.characters_yaml.read_text(encoding="utf-8") == edited
    assert "老陈" in wr.path.read_text(encoding="utf-8")


def test_project_names_are_checked() -> None:
    for bad in ["", "a/b", "..", "../x", ".hidden", "a\\b"]:
        with pytest.raises(NovelcomicError):
            check_project_name(bad)
    assert check_project_name("西游记") == "西游记"


def test_registry_unknown_and_override() -> None:
    with pytest.raises(UnknownBackendError, match="unknown plan backend 'nope' .*heuristic"):
        planners.create("nope")

    class Mine:
        def __init__(self, **kw: object) -> None:
            self.kw = kw

    with image_backends.override("mine", Mine):
        assert image_backends.create("mine", {"x": 1}).kw == {"x": 1}
    assert "mine" not in image_backends.names()
    assert {"animatic"} <= set(image_backends.names())


def test_registry_loads_once_and_threads_never_see_it_half_filled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect runs shot tasks in threads; the first lookups race. While one thread registers the
    built-ins (made slow here), the others must wait for it, not find an empty registry."""
    import importlib.metadata
    import threading
    import time

    from novelcomic import registry

    real = importlib.metadata.entry_points
    loads: list[int] = []

    def slow_entry_points(**kw: object):  # type: ignore[no-untyped-def]
        loads.append(1)
        time.sleep(0.3)
        return real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", slow_entry_points)
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.setattr(image_backends, "_factories", {})
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def look_up() -> None:
        barrier.wait()
        try:
            image_backends.factory("animatic")
        except BaseException as exc:  # noqa: BLE001 — collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=look_up) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and loads == [1]


def test_registry_bad_options_is_a_clear_error() -> None:
    class Strict:
        def __init__(self, steps: int = 1) -> None:
            pass

    with image_backends.override("strict", Strict), pytest.raises(UnknownBackendError, match="bad options for render backend 'strict'"):
        image_backends.create("strict", {"stepz": 3})


def test_select_chapters() -> None:
    from novelcomic.models import ChapterRef

    cfg = ProjectConfig(title="t", chapters=[ChapterRef(id=f"{i:02d}") for i in range(1, 6)])
    assert select_chapters(cfg, None) == ["01", "02", "03", "04", "05"]
    assert select_chapters(cfg, "2-3,5") == ["02", "03", "05"]
    assert select_chapters(cfg, "01") == ["01"]
    with pytest.raises(NovelcomicError, match="no chapter '9'"):
        select_chapters(cfg, "9")


def test_atomic_path_keeps_target_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_second_run_is_refused_by_the_lock(root: Path) -> None:
    proj = Project(make_project(root))
    with proj.lock():
        other = Project(proj.dir)
        with pytest.raises(ProjectLockedError, match="being processed"):
            with other.lock():
                pass
    with Project(proj.dir).lock():
        pass


def test_importing_novelcomic_is_cheap() -> None:
    code = (
        "import sys, novelcomic, novelcomic.cli, novelcomic.pipeline, novelcomic.project, novelcomic.registry\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'prefect', 'moviepy', 'jieba', 'cv2') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


@pytest.mark.parametrize("example", ["lantern-fox", "clockwork-heron"])
def test_the_committed_examples_schemas_match_the_models(example: str) -> None:
    """An editor checks the example's YAML against these files: they must know every setting."""
    from novelcomic.models import SCHEMA_MODELS

    folder = Path(__file__).resolve().parents[1] / "projects" / example / ".novelcomic" / "schema"
    for name, model in SCHEMA_MODELS.items():
        on_disk = json.loads((folder / f"{name}.schema.json").read_text(encoding="utf-8"))
        assert on_disk == model.model_json_schema(), f"{example}: {name}.schema.json is stale (any run refreshes it)"


def test_create_project_passes_on_the_split_warnings_and_keeps_volumes(tmp_path: Path, root: Path) -> None:
    from novelcomic.ingest.create import create_project

    flat = tmp_path / "flat.txt"
    flat.write_text("The river ran on. Ann said nothing.\n\n" * 4, encoding="utf-8")
    warnings: list[str] = []
    project = create_project("flat", flat, root, warnings=warnings)
    assert len(warnings) == 1 and warnings[0].startswith("no chapter headings found") and len(project.config().chapters) == 1
    assert create_project("quiet", flat, root).config().chapters  # the list is optional

    books = tmp_path / "books.txt"
    books.write_text("Book One\n\nChapter 1\n\nAnn woke.\n\nChapter 2\n\nAnn slept.\n\nBook Two\n\nChapter 3\n\nAnn left.\n",
                     encoding="utf-8")
    warnings = []
    cfg = create_project("books", books, root, warnings=warnings).config()
    assert warnings == []
    assert [(c.id, c.volume) for c in cfg.chapters] == [("01", "Book One"), ("02", "Book One"), ("03", "Book Two")]
