"""One image-to-video clip per model at its native size, with random weights built from the real
configs (nothing is downloaded): Wan2.2-TI2V-5B (1280×704, 121 frames at 24 fps) and LTX-Video 2B
(768×512, 121 frames at 24 fps), through the animate stage's own diffusers backend
(novelcomic/animate/backends/diffusers_i2v.py: frame rule, prompt, clip writing). Prints seconds
per clip and peak VRAM per model, one line each, and a JSON line at the end.

    .venv/bin/python benchmarks/animate_gpu.py                     # on a GPU: both models, real size
    NOVELCOMIC_GPU_CHECK_TINY=1 .venv/bin/python benchmarks/animate_gpu.py   # CPU smoke run, tiny configs

``--steps N`` (default 4) denoising steps are timed; the clip time at the model's usual step count
(Wan2.2 50, LTX 2B distilled 8) is extrapolated from the measured time per step, and printed beside
the measured one. ``--models wan22,ltx``; ``--frames`` overrides the frame count.
Random weights make noise: this measures speed and memory, not looks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TINY = os.environ.get("NOVELCOMIC_GPU_CHECK_TINY", "") not in ("", "0", "false")
USUAL_STEPS = {"wan22": 50, "ltx": 8}


def tokenizer():  # type: ignore[no-untyped-def]
    """A word-level tokenizer (the real UMT5/T5 vocabularies cannot be downloaded here): token ids
    stay small, the encoders see full-length (padded) sequences as with the real ones."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = "a the gentle subtle motion soft breeze slow breathing comic art style camera stable static text".split()
    tok = Tokenizer(models.WordLevel(vocab={"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(words)}},
                                     unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512)


def build_wan22(tiny: bool):  # type: ignore[no-untyped-def]
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    if tiny:
        t5 = UMT5Config(vocab_size=64, d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4, relative_attention_num_buckets=8)
        tr = dict(num_attention_heads=2, attention_head_dim=12, text_dim=32, ffn_dim=32, num_layers=2, rope_max_seq_len=32)
        vae = dict(base_dim=3, dim_mult=[1, 1, 1, 1], num_res_blocks=1)
    else:  # Wan-AI/Wan2.2-TI2V-5B-Diffusers: UMT5-XXL, a 30-layer 3072-wide transformer, the 48-channel VAE
        t5 = UMT5Config(vocab_size=256384, d_model=4096, d_ff=10240, d_kv=64, num_layers=24, num_heads=64,
                        relative_attention_num_buckets=32, feed_forward_proj="gated-gelu", dense_act_fn="gelu_new")
        tr = dict(num_attention_heads=24, attention_head_dim=128, text_dim=4096, ffn_dim=14336, num_layers=30, rope_max_seq_len=1024)
        vae = dict(base_dim=160, decoder_base_dim=256, dim_mult=[1, 2, 4, 4], num_res_blocks=2)
    transformer = WanTransformer3DModel(patch_size=(1, 2, 2), in_channels=48, out_channels=48, freq_dim=256, cross_attn_norm=True,
                                        qk_norm="rms_norm_across_heads", eps=1e-6, **tr)
    vae_model = AutoencoderKLWan(z_dim=48, in_channels=12, out_channels=12, is_residual=True, patch_size=2,
                                 latents_mean=[0.0] * 48, latents_std=[1.0] * 48, scale_factor_spatial=16, scale_factor_temporal=4,
                                 temperal_downsample=[False, True, True], **vae)
    return WanImageToVideoPipeline(tokenizer=tokenizer(), text_encoder=UMT5EncoderModel(t5), vae=vae_model,
                                   scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0), transformer=transformer,
                                   image_encoder=None, image_processor=None, expand_timesteps=True)


def build_ltx(tiny: bool):  # type: ignore[no-untyped-def]
    from diffusers import AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXImageToVideoPipeline, LTXVideoTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    if tiny:
        t5 = T5Config(vocab_size=64, d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4, relative_attention_num_buckets=8)
        transformer = LTXVideoTransformer3DModel(in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4,
                                                 attention_head_dim=8, cross_attention_dim=32, num_layers=1, caption_channels=32)
        vae = AutoencoderKLLTXVideo(
            latent_channels=8, block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
            layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1, 1),
            spatio_temporal_scaling=(True, True, False, False), decoder_spatio_temporal_scaling=(True, True, False, False),
            decoder_inject_noise=(False, False, False, False, False), upsample_residual=(False, False, False, False),
            upsample_factor=(1, 1, 1, 1), timestep_conditioning=False, encoder_causal=True, decoder_causal=False)
    else:  # Lightricks/LTX-Video (2B): T5-XXL encoder, 28 layers × 32 heads × 64, the 128-channel video VAE
        t5 = T5Config(vocab_size=32128, d_model=4096, d_ff=10240, d_kv=64, num_layers=24, num_heads=64,
                      relative_attention_num_buckets=32, feed_forward_proj="gated-gelu", dense_act_fn="gelu_new")
        transformer = LTXVideoTransformer3DModel(in_channels=128, out_channels=128, patch_size=1, patch_size_t=1,
                                                 num_attention_heads=32, attention_head_dim=64, cross_attention_dim=2048,
                                                 num_layers=28, caption_channels=4096)
        vae = AutoencoderKLLTXVideo()  # its defaults are LTX-Video's VAE
    return LTXImageToVideoPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=T5EncoderModel(t5),
                                   tokenizer=tokenizer(), transformer=transformer)


def run(family: str, args: argparse.Namespace, work: Path) -> dict:
    import torch
    from PIL import Image

    from novelcomic.animate.backends import diffusers_i2v
    from novelcomic.animate.base import ClipRequest

    device = "cpu" if TINY or not torch.cuda.is_available() else "cuda"
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    t0 = time.perf_counter()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built in the dtype they run in: no transient float32 copy of 11 B params
    try:
        with torch.device(device):  # weights are initialised where they run: no 20 GB of host copies
            pipe = (build_wan22 if family == "wan22" else build_ltx)(TINY)
    finally:
        torch.set_default_dtype(previous)
    pipe.to(dtype=dtype)
    if family == "wan22":
        pipe.vae.to(torch.float32)  # as the backend loads it
    build = time.perf_counter() - t0
    size = {"width": 32, "height": 32} if TINY else {}
    backend = diffusers_i2v.DiffusersI2V(model=f"random-{family}", family=family, device=device,
                                         dtype="float32" if device == "cpu" else "bfloat16", steps=args.steps,
                                         max_frames=args.frames or (9 if TINY else None),
                                         max_sequence_length=16 if TINY else None, vae_tiling=not TINY, **size)
    pipe.set_progress_bar_config(disable=True)
    diffusers_i2v._ftfy_or_plain(pipe)
    key = (backend.model, family, device, "float32" if device == "cpu" else "bfloat16", None, backend.vae_tiling, False)
    if backend.vae_tiling:
        pipe.vae.enable_tiling()
    diffusers_i2v._cache.clear()
    diffusers_i2v._cache[key] = pipe
    still = work / "still.png"
    Image.new("RGB", (1280, 720), (180, 120, 90)).save(still)
    request = ClipRequest("bench", family, still, "a swordsman draws his blade, wind in his robe", "static", 1, 5.04, 1920, 1080, "action")
    w, h, frames, fps = backend.plan(family, request, pipe)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    result = backend.animate(request, work / f"{family}.mp4")
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    # the steps dominate; scale them to the model's usual count (encode and decode stay as measured)
    per_step = None
    if args.steps >= 2:
        t1 = time.perf_counter()
        backend.steps = 1
        backend.animate(request, work / f"{family}-1step.mp4")
        if device == "cuda":
            torch.cuda.synchronize()
        one = time.perf_counter() - t1
        per_step = max(0.0, (seconds - one) / (args.steps - 1))
    usual = USUAL_STEPS[family]
    estimate = seconds + (usual - args.steps) * per_step if per_step is not None else None
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    params = sum(p.numel() for m in (pipe.transformer, pipe.text_encoder, pipe.vae) for p in m.parameters()) / 1e9
    return {"model": family, "device": device, "size": [w, h], "frames": result.frames, "fps": fps, "steps": args.steps,
            "seconds_per_clip": round(seconds, 2), "seconds_per_step": round(per_step, 3) if per_step is not None else None,
            f"seconds_per_clip_at_{usual}_steps": round(estimate, 1) if estimate is not None else None,
            "peak_vram_gb": round(peak, 2) if peak is not None else None, "params_b": round(params, 2), "build_s": round(build, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="wan22,ltx")
    p.add_argument("--steps", type=int, default=2 if TINY else 4)
    p.add_argument("--frames", type=int, default=0)
    args = p.parse_args()
    out = []
    with tempfile.TemporaryDirectory(prefix="nc-animate-gpu-") as tmp:
        for family in [m.strip() for m in args.models.split(",") if m.strip()]:
            r = run(family, args, Path(tmp))
            out.append(r)
            usual = USUAL_STEPS[family]
            vram = f"{r['peak_vram_gb']:.1f} GB" if r["peak_vram_gb"] is not None else "n/a (cpu)"
            print(f"animate {family}: {r['size'][0]}x{r['size'][1]} {r['frames']} frames @ {r['fps']:g} fps on {r['device']}: "
                  f"{r['seconds_per_clip']:.1f} s/clip at {r['steps']} steps"
                  + (f", ~{r[f'seconds_per_clip_at_{usual}_steps']:.0f} s/clip at {usual} steps" if r.get(f"seconds_per_clip_at_{usual}_steps") is not None else "")
                  + f", peak VRAM {vram} ({r['params_b']} B params, built in {r['build_s']} s)", flush=True)
            import gc

            import torch

            from novelcomic.animate.backends import diffusers_i2v

            diffusers_i2v._cache.clear()
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
