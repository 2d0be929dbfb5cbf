"""Automatic QA on tiny random CLIP and DINOv2 models built here and loaded by the project's own
loading code: scores, re-rolls and the chapter report."""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.models import QAConfig
from novelcomic.render.base import ImageResult
from novelcomic.render.qa import (
    QARow,
    ShotScore,
    crop_region,
    embedder_for,
    load_embedder,
    next_seed,
    reroll,
    score_shot,
    write_qa_report,
)

TINY = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer CLIP with a tokenizer read from a hand-written vocab.json + merges.txt."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    torch.manual_seed(0)  # the same random model every run
    d = tmp_path_factory.mktemp("clip")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in string.ascii_lowercase + string.digits + ".,!?":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    merges = [("r", "e"), ("e", "d</w>"), ("re", "d</w>")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    src = tmp_path_factory.mktemp("vocab")
    (src / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (src / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n", encoding="utf-8")
    tokenizer = CLIPTokenizer.from_pretrained(str(src))
    assert tokenizer("a red robe")["input_ids"][0] == 0
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1, **TINY),
        vision_config=dict(image_size=32, patch_size=8, **TINY),
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(d)
    tokenizer.save_pretrained(d)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def dino_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("dinov2")
    Dinov2Model(Dinov2Config(image_size=32, patch_size=8, **TINY)).save_pretrained(d)
    BitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(d)
    return d


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (64, 96)) -> Image.Image:
    return Image.new("RGB", size, colour)


def noise(seed: int, size: tuple[int, int] = (64, 96)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def shot_with(figure: Image.Image, background: tuple[int, int, int] = (20, 20, 20)) -> tuple[Image.Image, tuple]:
    """A 160x120 shot with ``figure`` pasted at a known region."""
    shot = Image.new("RGB", (160, 120), background)
    shot.paste(figure, (60, 12))
    return shot, (60, 12, 60 + figure.width, 12 + figure.height)


@pytest.mark.parametrize("which", ["clip", "dino"])
def test_consistency_prefers_the_same_character(which: str, clip_dir: Path, dino_dir: Path) -> None:
    embedder = load_embedder(clip_dir if which == "clip" else dino_dir)
    assert embedder.kind == ("clip" if which == "clip" else "dinov2")
    sheet = noise(1)
    full = (0, 0, sheet.width, sheet.height)
    # a close-up where the character fills the frame exactly as on the sheet: cosine 1
    same = embedder.consistency(sheet.copy(), full, sheet)  # the 5% widening is clipped at the edges
    other = embedder.consistency(solid((250, 250, 250)), full, sheet)
    near = embedder.consistency(*shot_with(sheet), sheet)  # a crop with a little background
    for v in (same, other, near):
        assert isinstance(v, float) and -1.0 <= v <= 1.0
    assert same == pytest.approx(1.0, abs=1e-5)
    assert other < same - 1e-3 and near < same + 1e-6


def test_alignment_is_a_cosine_for_clip_and_none_for_dinov2(clip_dir: Path, dino_dir: Path) -> None:
    clip = load_embedder(str(clip_dir))
    value = clip.alignment(noise(3), "a red robe")
    assert isinstance(value, float) and -1.0 <= value <= 1.0
    assert clip.alignment(noise(3), "a red robe") == pytest.approx(value)  # deterministic
    long = clip.alignment(noise(3), "a red robe, " * 60)  # longer than 77 tokens: cut, not an error
    assert -1.0 <= long <= 1.0
    assert clip.alignment(noise(3), "   ") is None
    assert load_embedder(dino_dir).alignment(noise(3), "a red robe") is None


def test_models_load_once_per_process(clip_dir: Path) -> None:
    assert load_embedder(clip_dir) is load_embedder(str(clip_dir))


def test_missing_or_wrong_models_are_backend_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackendError, match="no-such-org/no-such-clip"):
        load_embedder("no-such-org/no-such-clip")
    with pytest.raises(BackendError, match="no such directory"):
        load_embedder(str(tmp_path / "missing"))
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(BackendError, match="'bert' model"):
        load_embedder(tmp_path / "bert")
    with pytest.raises(NovelcomicError, match="qa.embedder"):
        load_embedder("")
    with pytest.raises(NovelcomicError, match="needs qa.embedder"):
        embedder_for(QAConfig(enabled=True))


def test_score_shot_applies_the_thresholds(clip_dir: Path) -> None:
    embedder = load_embedder(clip_dir)
    sheet = noise(5)
    shot, region = shot_with(sheet)
    cfg = QAConfig(enabled=True, min_consistency=-1.0, min_alignment=-1.0)
    score = score_shot(embedder, shot, {"a": region, "ghost": region}, {"a": sheet}, "a red robe", cfg, seed=7)
    assert set(score.consistency) == {"a"} and score.passed and score.reasons == [] and score.seed == 7
    strict = score_shot(embedder, shot, {"a": region}, {"a": sheet}, "a red robe",
                        QAConfig(min_consistency=1.01, min_alignment=1.01))
    assert not strict.passed
    assert any(r.startswith("a: consistency") for r in strict.reasons)
    assert any(r.startswith("alignment") for r in strict.reasons)


def test_crop_region_rejects_boxes_outside_the_image() -> None:
    assert crop_region(noise(1), (10, 10, 30, 50)).size == (22, 44)  # widened by 5% a side
    with pytest.raises(NovelcomicError, match="outside"):
        crop_region(noise(1), (500, 500, 600, 600))


def test_reroll_keeps_the_best_of_k_by_score() -> None:
    import dataclasses

    Req = dataclasses.make_dataclass("Req", [("seed", int)])  # a stand-in for ShotRequest
    seen: list[int] = []
    totals = {}

    def render(req):  # type: ignore[no-untyped-def]
        seen.append(req.seed)
        return ImageResult(solid((len(seen) * 40, 0, 0)), req.seed)

    scripted = iter([0.3, 0.9, 0.5])

    def scorer(result: ImageResult) -> ShotScore:
        value = next(scripted)
        totals[result.seed] = value
        return ShotScore({"a": value}, None, value >= 0.95, [] if value >= 0.95 else ["low"])

    best, scores = reroll(render, Req(seed=11), scorer, max_rerolls=2)
    assert seen == [11, next_seed(11, 1), next_seed(11, 2)] and len(set(seen)) == 3
    assert [s.seed for s in scores] == seen
    assert best.seed == next_seed(11, 1) and totals[best.seed] == 0.9
    # a passing attempt stops the re-rolls
    scripted = iter([0.2, 0.97, 0.99])
    seen.clear()
    best, scores = reroll(render, Req(seed=3), scorer, max_rerolls=5)
    assert len(scores) == 2 and best.seed == seen[1] and scores[-1].passed
    with pytest.raises(NovelcomicError, match="rerolls"):
        reroll(render, Req(seed=1), scorer, max_rerolls=-1)


def test_report_has_a_table_and_a_contact_sheet_of_every_shot(tmp_path: Path) -> None:
    colours = [(230, 40, 40), (40, 200, 60), (40, 80, 230), (240, 200, 20), (200, 40, 220)]
    rows = []
    for i, c in enumerate(colours):
        path = tmp_path / f"s{i}.png"
        solid(c, (90, 160)).save(path)
        score = ShotScore({"a": 0.9 - i * 0.1, "b": 0.8}, 0.25, i < 3, [] if i < 3 else ["a: consistency low"])
        rows.append(QARow(f"s01-0{i + 1}", 100 + i, score, path))
    rows.append(QARow("s01-06", None, None, None, note="blocked: sexual ('nude')"))
    md, png = write_qa_report("01", rows, tmp_path / "qa")
    text = md.read_text(encoding="utf-8")
    assert "| shot | seed | consistency a | consistency b | alignment | flags |" in text
    assert "| s01-04 | 103 | 0.600 | 0.800 | 0.250 | a: consistency low |" in text
    assert "blocked: sexual" in text and "3 of 6 shots passed" in text and png.name in text
    sheet = np.asarray(Image.open(png).convert("RGB")).astype(int)
    for c in colours:  # each shot's thumbnail is on the sheet, as a block of its colour
        assert (np.abs(sheet - np.array(c)).sum(axis=2) < 12).sum() > 80 * 140 * 0.9, c
    grey = (np.abs(sheet - np.array([200, 200, 200])).sum(axis=2) == 0).sum()
    assert grey > 150 * 150  # the blocked shot's placeholder
    # scores are lettered under the thumbnails: dark text pixels below the first row of images
    assert (sheet.sum(axis=2) < 150).sum() > 300
