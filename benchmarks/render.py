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

The multi-reference families (``--random flux2-klein | qwen-image-edit-plus``, or their
``tiny-`` versions) are timed as ``--check`` times them: ``--check`` (what benchmarks/gpu_check.sh
runs) draws 3 shots at 1024² with SDXL, FLUX.2 [klein] 4B and Qwen-Image-Edit-2509, each built in
memory at its real size with random weights (configs below, from the model cards / diffusers'
conversion scripts), through the backend (two characters with sheets: two reference images for the
multi-reference families) and as a plain pipeline call with the same arguments, and writes a
table (and ``$OUT/render_check.json``). ``NOVELCOMIC_GPU_CHECK_TINY=1``: the tiny models, 64², CPU.

    python benchmarks/render.py                                  # tiny SD 1.5, 64x96, CPU
    python benchmarks/render.py --random sdxl --size 832x1216 --steps 30 --batch-sizes 1,2,4 --compile
    python benchmarks/render.py --check                          # GPU: the three families at 1024²
"""

from __future__ import annotations

import argparse
import json
import os
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


# --------------------------------------------------------------------------- multi-reference families, real size

#: black-forest-labs/FLUX.2-klein-4B transformer (diffusers scripts/convert_flux2_to_diffusers.py, "klein-4b")
KLEIN_4B = dict(patch_size=1, in_channels=128, num_layers=5, num_single_layers=20, attention_head_dim=128,
                num_attention_heads=24, joint_attention_dim=7680, timestep_guidance_channels=256, mlp_ratio=3.0,
                axes_dims_rope=(32, 32, 32, 32), rope_theta=2000, eps=1e-6, guidance_embeds=False)
#: Qwen/Qwen3-4B, klein's text encoder (3 of its 36 layers concatenated: 3 × 2560 = 7680)
QWEN3_4B = dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
                num_key_value_heads=8, head_dim=128, vocab_size=151936, max_position_embeddings=40960,
                rope_theta=1000000.0, tie_word_embeddings=True)
#: Qwen/Qwen-Image-Edit-2509 transformer (20 B; QwenImageTransformer2DModel's defaults are this model)
QWEN_IMAGE = dict(patch_size=2, in_channels=64, out_channels=16, num_layers=60, attention_head_dim=128,
                  num_attention_heads=24, joint_attention_dim=3584, guidance_embeds=False, axes_dims_rope=(16, 56, 56))
#: Qwen/Qwen2.5-VL-7B-Instruct, its text encoder
QWEN25_VL_7B = dict(
    text_config=dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                     num_key_value_heads=4, vocab_size=152064, rope_theta=1000000.0, max_position_embeddings=128000,
                     rope_scaling={"type": "mrope", "rope_type": "default", "mrope_section": [16, 24, 24]}),
    vision_config=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                       patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                       fullatt_block_indexes=[7, 15, 23, 31]),
    hidden_size=3584, vocab_size=152064,
)


def _random_init(module: Any, device: str, dtype: Any) -> Any:
    """``module`` (made on the meta device) materialised on ``device`` with small random weights."""
    import torch

    module = module.to_empty(device=device)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.02) if p.ndim > 1 else p.fill_(1.0 if p.ndim == 1 else 0.0)
        for b in module.buffers():
            if b.is_floating_point() and not torch.isfinite(b).all():
                b.zero_()
    return module.to(dtype)


def build_multiref_in_memory(kind: str, device: str, dtype: Any) -> Any:
    """FLUX.2 [klein] 4B or Qwen-Image-Edit-2509 at real size with random weights, built on
    ``device`` (nothing saved: 60 GB would not fit the disk). The tokenizer is the tiny one of
    tests/tiny_multiref.py (the real one cannot be downloaded): prompts come out a few times
    longer in tokens than with Qwen's, which makes the text encoder a little slower, not faster."""
    import torch
    from accelerate import init_empty_weights

    from tests import tiny_multiref

    tmp = Path(tempfile.mkdtemp(prefix="nc-bench-tok-"))
    tokenizer = tiny_multiref.qwen_tokenizer(tmp)
    if kind == "flux2-klein":
        from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline, Flux2Transformer2DModel
        from transformers import Qwen3Config, Qwen3ForCausalLM

        with init_empty_weights():
            transformer = Flux2Transformer2DModel(**KLEIN_4B)
            text = Qwen3ForCausalLM(Qwen3Config(**QWEN3_4B))
        vae = AutoencoderKLFlux2().to(device, torch.float32)  # its defaults are FLUX.2's VAE
        return Flux2KleinPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae.to(dtype),
                                  text_encoder=_random_init(text, device, dtype), tokenizer=tokenizer,
                                  transformer=_random_init(transformer, device, dtype), is_distilled=True)
    from diffusers import (AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImageEditPlusPipeline,
                           QwenImageTransformer2DModel)
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in tiny_multiref.QWEN_SPECIALS}
    with init_empty_weights():
        transformer = QwenImageTransformer2DModel(**QWEN_IMAGE)
        text = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(
            **QWEN25_VL_7B, vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
            image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"]))
    processor = tiny_multiref.TinyQwen2VLProcessor(image_processor=Qwen2VLImageProcessor(), tokenizer=tokenizer,
                                                   chat_template=tiny_multiref.CHAT_TEMPLATE)
    return QwenImageEditPlusPipeline(
        transformer=_random_init(transformer, device, dtype), vae=AutoencoderKLQwenImage().to(device, dtype),
        scheduler=FlowMatchEulerDiscreteScheduler(), text_encoder=_random_init(text, device, dtype),
        tokenizer=tokenizer, processor=processor)


def backend_with(pipe: Any, class_name: str, directory: Path, device: str, dtype: str, **options: Any) -> Any:
    """A DiffusersBackend drawing with ``pipe`` (built in memory): a directory holding only
    model_index.json tells it the family; the loaded pipeline is handed over as its weights."""
    from novelcomic.render.diffusers_backend import DiffusersBackend
    from novelcomic.render.loading import LoadedPipelines

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model_index.json").write_text(json.dumps({"_class_name": class_name}), encoding="utf-8")
    backend = DiffusersBackend(str(directory), device=device, dtype=dtype, **options)
    pipe.set_progress_bar_config(disable=True)
    backend._loaded = LoadedPipelines(backend._spec(str(directory), "text2img"), pipe)
    return backend


def two_character_request(width: int, height: int, seed: int, sheets: list[Path]) -> ShotRequest:
    from novelcomic.models import Character, Line
    from novelcomic.render.base import CharacterRef

    chars = [Character(id="c1", name="Lin", appearance="a girl in a blue robe, black hair in a bun"),
             Character(id="c2", name="Wang", appearance="an old fisherman with white hair and a straw hat")]
    shot = Shot(id=f"s{seed}", mood="calm", characters=["c1", "c2"], lines=[Line(speaker="c2", text="The river is high.")])
    return ShotRequest(chapter="01", scene=Scene(id="sc", location="l1"), shot=shot,
                       characters=[CharacterRef(c, [p]) for c, p in zip(chars, sheets)],
                       location=Location(id="l1", name="river bank at dusk"), props=[], style=["国漫"],
                       width=width, height=height, seed=seed, language="en")


def check(tiny: bool, shots: int = 3) -> list[dict[str, Any]]:
    """The gpu_check timings (see the module doc); one dict per family."""
    import gc

    import torch
    from PIL import Image

    device = "cuda" if torch.cuda.is_available() and not tiny else "cpu"
    dtype_name = "bfloat16" if device == "cuda" else "float32"
    dtype = getattr(torch, dtype_name)
    side = 64 if tiny else 1024
    tmp = Path(tempfile.mkdtemp(prefix="nc-bench-"))
    sheets = []
    for name, colour in (("lin", (40, 60, 200)), ("wang", (200, 190, 170))):
        Image.new("RGB", (side * 3 // 2, side), colour).save(tmp / f"{name}.png")
        sheets.append(tmp / f"{name}.png")
    # steps: SDXL's usual 30, klein (distilled) 4; Qwen-Image-Edit's model card says 40, timed at
    # 8 here to stay within 8 minutes (s/step is reported: multiply for 40)
    plan = [("sdxl", 2 if tiny else 30), ("flux2-klein", 2 if tiny else 4), ("qwen-image-edit-plus", 2 if tiny else 8)]
    rows = []
    for family, steps in plan:
        t = time.perf_counter()
        if tiny:
            from tests import tiny_models, tiny_multiref

            builder = {"sdxl": tiny_models.build_sdxl, "flux2-klein": tiny_multiref.build_flux2_klein,
                       "qwen-image-edit-plus": tiny_multiref.build_qwen_edit_plus}[family]
            from novelcomic.render.diffusers_backend import DiffusersBackend

            extra = {"max_sequence_length": 64} if family != "sdxl" else {}
            backend = DiffusersBackend(str(builder(tmp / family)), device=device, dtype=dtype_name, steps=steps, **extra)
            if family == "qwen-image-edit-plus":  # the tiny model: references at 64² (speed only)
                from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit_plus as qwen

                qwen.VAE_IMAGE_SIZE, qwen.CONDITION_IMAGE_SIZE = side * side, 56 * 56
            pipes = backend.pipelines()
        elif family == "sdxl":
            from novelcomic.render.diffusers_backend import DiffusersBackend

            model = _build_full_size("sdxl", tmp / "sdxl")
            backend = DiffusersBackend(str(model), device=device, dtype=dtype_name, steps=steps)
            pipes = backend.pipelines()
        else:
            pipe = build_multiref_in_memory(family, device, dtype)
            name = {"flux2-klein": "Flux2KleinPipeline", "qwen-image-edit-plus": "QwenImageEditPlusPipeline"}[family]
            backend = backend_with(pipe, name, tmp / family, device, dtype_name, steps=steps)
            pipes = backend.pipelines()
        build_s = time.perf_counter() - t
        # SDXL without an IP-Adapter draws a shot with sheets by img2img: time its text-to-image
        requests = [two_character_request(side, side, i, sheets) if family != "sdxl" else request(side, side, i)
                    for i in range(shots)]
        job = backend._shot_job(requests[0])  # the arguments the backend passes, for the plain call
        call = backend._multiref_kwargs(pipes.multiref, pipes.family, [job], steps, backend.guidance_scale) \
            if pipes.family.is_multiref else {"prompt": [job.prompt.positive], "negative_prompt": [job.prompt.negative],
                                              "num_inference_steps": steps, "guidance_scale": backend.guidance_scale,
                                              "height": side, "width": side}
        pipe = pipes.multiref if pipes.family.is_multiref else pipes.main

        def plain() -> None:
            pipe(**call, generator=torch.Generator(pipes.generator_device()).manual_seed(0))

        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        plain()  # warm-up (kernels, allocator): neither timing below pays it
        _sync()
        t = time.perf_counter()
        for _ in range(shots):
            plain()
        _sync()
        plain_s = (time.perf_counter() - t) / shots
        t = time.perf_counter()
        backend.render_shots(requests)
        _sync()
        ours = (time.perf_counter() - t) / shots
        rows.append({"family": family, "size": f"{side}x{side}", "steps": steps, "references": len(job.ref_images),
                     "plain_s_per_shot": round(plain_s, 3), "backend_s_per_shot": round(ours, 3),
                     "s_per_step": round(ours / steps, 4), "overhead_pct": round(100 * (ours - plain_s) / plain_s, 1),
                     "build_s": round(build_s, 1), "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
                     "dtype": dtype_name,
                     "peak_vram_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1) if device == "cuda" else None})
        print(json.dumps(rows[-1]), flush=True)
        del backend, pipes, pipe
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
    return rows


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
    ap.add_argument("--check", action="store_true", help="the gpu_check timings of SDXL, FLUX.2 klein and "
                    "Qwen-Image-Edit-Plus (NOVELCOMIC_GPU_CHECK_TINY=1: tiny, CPU)")
    args = ap.parse_args(argv)
    if args.check:
        rows = check(os.environ.get("NOVELCOMIC_GPU_CHECK_TINY") == "1", shots=args.shots if args.shots != 4 else 3)
        print("\n| family | size | steps | refs | plain s/shot | backend s/shot | s/step | overhead | peak VRAM GiB | device |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in rows:
            print(f"| {r['family']} | {r['size']} | {r['steps']} | {r['references']} | {r['plain_s_per_shot']} | "
                  f"{r['backend_s_per_shot']} | {r['s_per_step']} | {r['overhead_pct']}% | {r['peak_vram_gib']} | {r['device']} |")
        if os.environ.get("OUT"):
            Path(os.environ["OUT"], "render_check.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
        return

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
