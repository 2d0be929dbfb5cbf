"""Seconds per step and peak VRAM of ``train-character``'s LoRA training on SDXL, random weights.

Times 50 steps (after 3 warm-up steps) of :class:`novelcomic.train.lora.LoraTrainer`, the loop
``novelcomic train-character`` runs, on an SDXL base-sized UNet (2.6 B parameters, the
configuration of stabilityai/stable-diffusion-xl-base-1.0, built here with random weights: nothing
is downloaded) at 1024² (128² latents), rank 16, with the conditioning the real run gives it (77
text tokens × 2048, pooled 1280, six ``add_time_ids``). The text encoders and the VAE run once
before training, so they are not in the per-step time; the UNet runs in bfloat16 under autocast
with fp32 LoRA weights, as on any CUDA card.

``NOVELCOMIC_GPU_CHECK_TINY=1`` (or ``--tiny``): the tiny SDXL of tests/tiny_models.py on the CPU
at 64², and before the timing one whole ``train()`` run (pipeline load, caption and view
encoding, checkpoint, LoRA file) whose LoRA is then loaded by ``load_lora_weights`` and drawn
with: the smoke test of the full path.

    python benchmarks/train_lora.py                      # GPU: SDXL at 1024², 50 steps
    NOVELCOMIC_GPU_CHECK_TINY=1 python benchmarks/train_lora.py

Prints one line per figure and, last, one JSON line (``{"benchmark": "train_lora", …}``) for
scripts such as benchmarks/gpu_check.sh.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: stabilityai/stable-diffusion-xl-base-1.0 unet/config.json (the fields that shape the network)
SDXL_UNET = dict(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=(5, 10, 20), transformer_layers_per_block=(1, 2, 10), cross_attention_dim=2048,
    use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816, norm_num_groups=32,
)
#: its scheduler/scheduler_config.json (what DDPMScheduler.from_config reads)
SDXL_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                      prediction_type="epsilon", steps_offset=1, timestep_spacing="leading")


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def synthetic_batch(device: str, latent: int, text_dim: int, pooled_dim: int, views: int = 8) -> Any:
    """The conditioning and latent distributions :func:`novelcomic.train.lora.prepare` would give."""
    import torch

    from novelcomic.train.lora import Batch

    g = torch.Generator("cpu").manual_seed(0)
    return Batch(
        prompt_embeds=torch.randn(1, 77, text_dim, generator=g).to(device),
        added_cond={"text_embeds": torch.randn(1, pooled_dim, generator=g).to(device),
                    "time_ids": torch.tensor([[latent * 8, latent * 8, 0, 0, latent * 8, latent * 8]],
                                             dtype=torch.float32).to(device)},
        latent_mean=torch.randn(views, 4, latent, latent, generator=g).to(device),
        latent_std=torch.full((views, 4, latent, latent), 0.05).to(device),
        scaling=0.13025,
    )


def time_steps(unet: Any, scheduler_config: dict, batch: Any, device: str, steps: int, rank: int,
               resolution: int) -> dict[str, Any]:
    import torch

    from novelcomic.train.lora import LoraTrainer, TrainSettings

    settings = TrainSettings(steps=steps + 3, rank=rank, lr=1e-4, resolution=resolution)
    trainer = LoraTrainer(unet, scheduler_config, settings, device)
    lora_params = sum(p.numel() for _, p in trainer.params)
    for _ in range(3):  # warm-up: kernels chosen, allocator grown
        trainer.step(batch)
    _sync(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    losses = [trainer.step(batch) for _ in range(steps)]
    _sync(device)
    seconds = time.perf_counter() - t
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    return {"steps": steps, "s_per_step": seconds / steps, "peak_vram_gib": peak, "lora_params": lora_params,
            "dtype": str(trainer.weight_dtype).removeprefix("torch."), "final_loss": losses[-1]}


def full_run_tiny(workdir: Path) -> dict[str, Any]:
    """One whole train() on the tiny SDXL (see the module doc); returns what it did."""
    import torch
    from diffusers import StableDiffusionXLPipeline
    from PIL import Image

    from novelcomic.train import dataset, lora
    from tests import tiny_models

    model = tiny_models.build_sdxl(workdir / "tiny-sdxl")
    sheet = Image.new("RGB", (96, 64), (220, 220, 220))
    sheet.paste((200, 40, 40), (30, 8, 66, 60))
    sheet.save(workdir / "sheet.png")
    views = dataset.make_views([workdir / "sheet.png"], 64)
    settings = lora.settings_for("sdxl", steps=6, rank=4, resolution=64, checkpoint_every=3)
    job = lora.TrainJob(str(model), "sdxl", "cpu", tuple(views), "nc_a, red robe", settings, workdir / "work",
                        workdir / "loras" / "a.safetensors", "tiny")
    t = time.perf_counter()
    result = lora.train(job)
    seconds = time.perf_counter() - t
    pipe = StableDiffusionXLPipeline.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(str(result.path), adapter_name="a")
    image = pipe("nc_a, red robe", num_inference_steps=2, height=64, width=64, guidance_scale=1.0,
                 generator=torch.Generator("cpu").manual_seed(0)).images[0]
    assert image.size == (64, 64) and pipe.get_list_adapters() == {"unet": ["a"]}
    return {"full_run_seconds": round(seconds, 2), "full_run_steps": result.steps, "lora_file": result.path.name}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", default=os.environ.get("NOVELCOMIC_GPU_CHECK_TINY") == "1",
                    help="tiny SDXL on the CPU (also NOVELCOMIC_GPU_CHECK_TINY=1)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--resolution", type=int, default=1024)
    ap.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    args = ap.parse_args(argv)

    import torch
    from diffusers import UNet2DConditionModel

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    report: dict[str, Any] = {"benchmark": "train_lora", "device": device,
                              "card": torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu"}
    if args.tiny:
        from tests import tiny_models

        with tempfile.TemporaryDirectory() as tmp:
            report.update(full_run_tiny(Path(tmp)))
        torch.manual_seed(0)
        unet = tiny_models._xl_unet(64, 32)
        resolution, text_dim, pooled = 64, 64, 32
        report["model"] = "tiny SDXL (tests/tiny_models.py)"
    else:
        resolution, text_dim, pooled = args.resolution, 2048, 1280
        t = time.perf_counter()
        with torch.device(device):
            unet = UNet2DConditionModel(**SDXL_UNET)
        report["build_seconds"] = round(time.perf_counter() - t, 1)
        report["model"] = "SDXL base UNet, random weights"
    report["unet_params"] = sum(p.numel() for p in unet.parameters())
    batch = synthetic_batch(device, resolution // 8, text_dim, pooled)
    report.update(resolution=resolution, rank=args.rank)
    report.update(time_steps(unet, SDXL_SCHEDULER, batch, device, args.steps, args.rank, resolution))
    peak = f", peak VRAM {report['peak_vram_gib']:.1f} GiB" if report["peak_vram_gib"] is not None else ""
    n = report["unet_params"]
    size = f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.1f} M"
    print(f"train_lora: {report['model']} ({size} params), {resolution}², rank {args.rank} "
          f"({report['lora_params'] / 1e6:.1f} M LoRA params), {report['dtype']} on {report['card']}: "
          f"{report['steps']} steps, {report['s_per_step']:.3f} s/step{peak}")
    if "full_run_seconds" in report:
        print(f"train_lora: whole train() on the tiny SDXL: {report['full_run_steps']} steps in "
              f"{report['full_run_seconds']} s, LoRA {report['lora_file']} loaded and drawn with")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
