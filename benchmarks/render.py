"""Seconds per shot of the diffusers image backend, printed as a markdown table.

Compares, on one model, size and step count:

- a plain diffusers pipeline call vs. our backend's ``render_shot`` (the backend's overhead:
  prompt building, checks, generator set-up, conversions);
- ``render_shots`` at several batch sizes (seconds per shot);
- few-step settings: the LCM scheduler at ``--few-steps`` steps and guidance 1 vs. the full count
  (speed only: without an LCM/Lightning/Hyper-SD LoRA the few-step images are not good);
- ``torch.compile`` of the UNet (``--compile``; the first, compiling call is left out).

No weights are needed: by default a random-weight model is built (``--random``), tiny for CPU
smoke runs or with the real SD 1.5 / SDXL UNet, VAE and text-encoder sizes for GPU timing (speed
does not depend on the weights). ``--model`` times a real model directory or hub id instead.

    python benchmarks/render.py                                  # tiny SD 1.5, 64x96, CPU
    python benchmarks/render.py --random sdxl --size 832x1216 --steps 30 --batch-sizes 1,2,4 --compile
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from novelcomic.models import Location, Scene, Shot  # noqa: E402
from novelcomic.render.base import ShotRequest  # noqa: E402


def build_random(kind: str, directory: Path) -> Path:
    """A random-weight pipeline saved to ``directory`` (tiny ones from tests/tiny_models.py)."""
    if kind.startswith("tiny-"):
        from tests import tiny_models

        return {"tiny-sd15": tiny_models.build_sd15, "tiny-sdxl": tiny_models.build_sdxl}[kind](directory)
    return _build_full_size(kind, directory)


def _build_full_size(kind: str, directory: Path) -> Path:
    """SD 1.5 or SDXL with the real component sizes and random weights, saved in float16."""
    import torch
    from diffusers import (AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from tests.tiny_models import write_clip_tokenizer

    def clip(hidden: int, layers: int, heads: int, inter: int, proj: int | None = None) -> Any:
        cfg = CLIPTextConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                             intermediate_size=inter, vocab_size=49408, projection_dim=proj or hidden,
                             max_position_embeddings=77, hidden_act="gelu")
        return CLIPTextModelWithProjection(cfg) if proj else CLIPTextModel(cfg)

    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    tok = CLIPTokenizer.from_pretrained(write_clip_tokenizer(directory / "_tok"))
    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)
    if kind == "sd15":
        unet = UNet2DConditionModel(
            block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, cross_attention_dim=768, attention_head_dim=8,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, sample_size=64,
        )
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=clip(768, 12, 12, 3072), tokenizer=tok, unet=unet,
                                       scheduler=sched, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    else:
        unet = UNet2DConditionModel(
            block_out_channels=(320, 640, 1280), layers_per_block=2, cross_attention_dim=2048,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(5, 10, 20), transformer_layers_per_block=(1, 2, 10), use_linear_projection=True,
            addition_embed_type="text_time", addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
            sample_size=128,
        )
        pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=clip(768, 12, 12, 3072),
                                         text_encoder_2=clip(1280, 32, 20, 5120, proj=1280), tokenizer=tok,
                                         tokenizer_2=tok, unet=unet, scheduler=sched)
    pipe.to(torch.float16).save_pretrained(directory)
    return directory


def request(width: int, height: int, seed: int) -> ShotRequest:
    shot = Shot(id=f"s{seed}", mood="calm")
    return ShotRequest(chapter="01", scene=Scene(id="sc", location="l1"), shot=shot, characters=[],
                       location=Location(id="l1", name="river bank at dusk"), props=[], style=["国漫"],
                       width=width, height=height, seed=seed)


def timed(fn: Callable[[], Any], repeat: int, per: int = 1) -> float:
    """Median seconds per item of ``fn`` (which makes ``per`` items), after one warm-up call."""
    fn()
    samples = []
    for _ in range(repeat):
        _sync()
        t = time.perf_counter()
        fn()
        _sync()
        samples.append((time.perf_counter() - t) / per)
    return statistics.median(samples)


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="diffusers directory or hub id (default: a random-weight model, see --random)")
    ap.add_argument("--random", default="tiny-sd15", choices=["tiny-sd15", "tiny-sdxl", "sd15", "sdxl"])
    ap.add_argument("--size", default="64x96", help="WIDTHxHEIGHT, multiples of 8")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--few-steps", type=int, default=4)
    ap.add_argument("--shots", type=int, default=4, help="shots per batch-size measurement")
    ap.add_argument("--batch-sizes", default="1,2,4")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile of the UNet")
    args = ap.parse_args(argv)

    import torch

    from novelcomic.render.diffusers_backend import DiffusersBackend

    width, height = (int(v) for v in args.size.lower().split("x"))
    tmp = tempfile.TemporaryDirectory()
    t = time.perf_counter()
    model = args.model or str(build_random(args.random, Path(tmp.name) / args.random))
    build_s = time.perf_counter() - t

    def backend(**kw: Any) -> DiffusersBackend:
        return DiffusersBackend(model, device=args.device, dtype=args.dtype, **{"steps": args.steps, **kw})

    base = backend()
    t = time.perf_counter()
    pipes = base.pipelines()
    load_s = time.perf_counter() - t
    rows: list[tuple[str, int, int, str]] = []

    def plain() -> None:
        pipes.main("a river bank at dusk", num_inference_steps=args.steps, height=height, width=width,
                   generator=torch.Generator(pipes.generator_device()).manual_seed(0))

    rows.append(("plain diffusers call", 1, args.steps, f"{timed(plain, args.repeat):.3f}"))
    rows.append(("backend render_shot", 1, args.steps, f"{timed(lambda: base.render_shot(request(width, height, 0)), args.repeat):.3f}"))
    requests = [request(width, height, i) for i in range(args.shots)]
    for b in (int(v) for v in args.batch_sizes.split(",")):
        batched = backend(batch_size=b)
        s = timed(lambda: batched.render_shots(requests), args.repeat, per=len(requests))
        rows.append((f"render_shots, batch_size={b}", b, args.steps, f"{s:.3f}"))
    few = backend(scheduler="lcm", steps=args.few_steps, guidance_scale=1.0)
    rows.append(("LCM scheduler, guidance 1", 1, args.few_steps,
                 f"{timed(lambda: few.render_shot(request(width, height, 0)), args.repeat):.3f}"))
    if args.compile:
        try:
            compiled = backend(compile=True)
            s = timed(lambda: compiled.render_shot(request(width, height, 0)), args.repeat)
            rows.append(("torch.compile(unet)", 1, args.steps, f"{s:.3f}"))
        except Exception as exc:  # the compiler toolchain may be missing: report it in the table
            rows.append(("torch.compile(unet)", 1, args.steps, f"failed: {type(exc).__name__}"))

    spec = pipes.spec
    print(f"\nmodel: {args.model or 'random ' + args.random} ({spec.family}), {width}x{height}, "
          f"device {spec.device}, {spec.dtype}, torch {torch.__version__}; build {build_s:.1f} s, load {load_s:.1f} s\n")
    print("| setting | batch | steps | s/shot |")
    print("|---|---:|---:|---:|")
    for name, b, steps, s in rows:
        print(f"| {name} | {b} | {steps} | {s} |")
    tmp.cleanup()


if __name__ == "__main__":
    main()
