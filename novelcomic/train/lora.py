"""The DreamBooth-LoRA loop: a peft LoRA on the UNet's attention projections, trained to predict
the noise added to the character's views, resumable from checkpoints.

How one run goes (:func:`train`):

1. load the model's pipeline (the family's diffusers class, from the model directory or the hub
   cache) and encode, once: the caption (with the pipeline's own ``encode_prompt``, so the
   conditioning is exactly what rendering gives the UNet; SDXL adds the pooled text embeds and the
   ``add_time_ids`` of a square ``resolution`` image) and every view and its mirror image
   (``latent_dist`` mean and std, sampled afresh each step), in fp32 on the training device. The
   text encoders and the VAE then go back to the CPU and are dropped: only the UNet trains.
2. a LoRA (``LoraConfig(r=rank, lora_alpha=rank)``, gaussian init) on ``to_q``, ``to_k``, ``to_v``
   and ``to_out.0``; AdamW on its parameters only; noise and timesteps from the model scheduler's
   config as a ``DDPMScheduler``; MSE against the noise (or the velocity for v-prediction models).
   fp32 on the CPU; on CUDA the frozen UNet runs in bfloat16 (float16 with a grad scaler where
   bf16 is missing) under autocast, the LoRA parameters stay fp32.
3. every ``checkpoint_every`` steps, and when a stop signal arrives between updates, one file
   ``checkpoint.pt`` (LoRA weights, optimizer, grad scaler, step, the random generator's state,
   the run's inputs hash) is written atomically. A run finding a checkpoint of the same inputs
   goes on from its step with the same random stream, so a killed and resumed run ends with the
   weights an uninterrupted one would have (on the CPU with the same thread count: to float
   tolerance; a step stopped halfway is redone with the random numbers it had drawn).
4. the LoRA is written with the family pipeline's ``save_lora_weights`` (diffusers' key layout,
   the LoRA config as metadata) to a temporary folder beside the target and renamed over it.

All randomness comes from one CPU ``torch.Generator`` seeded with ``seed``. Nothing here is
imported by ``import novelcomic``; torch and diffusers are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from novelcomic import procs
from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.fsutil import atomic_path

if TYPE_CHECKING:
    import torch

    from novelcomic.train.dataset import View

TARGET_MODULES = ("to_q", "to_k", "to_v", "to_out.0")
CHECKPOINT = "checkpoint.pt"
CHECKPOINT_VERSION = 1
TRAINABLE_FAMILIES = ("sd15", "sdxl")
#: The pipeline class of each trainable family: it encodes the caption and saves the LoRA.
PIPELINES = {"sd15": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline"}


@dataclass(frozen=True)
class TrainSettings:
    """What decides the trained weights (all but ``checkpoint_every`` are in the run's inputs hash)."""

    steps: int
    rank: int
    lr: float
    resolution: int
    seed: int = 0
    checkpoint_every: int = 100

    def identity(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("checkpoint_every")
        return data


#: Per family: SD1.5 at its 512² training size, SDXL at 1024² with a larger rank (its attention
#: layers are wider); 1e-4 is the learning rate of diffusers' DreamBooth-LoRA examples.
DEFAULTS: dict[str, TrainSettings] = {
    "sd15": TrainSettings(steps=600, rank=8, lr=1e-4, resolution=512),
    "sdxl": TrainSettings(steps=800, rank=16, lr=1e-4, resolution=1024),
}
LIMITS = {"steps": (1, 100_000), "rank": (1, 256), "resolution": (64, 2048), "checkpoint_every": (1, 100_000)}


def settings_for(family: str, **given: Any) -> TrainSettings:
    """The family's defaults with the ``given`` values (None: default) checked and applied."""
    if family not in DEFAULTS:
        raise NovelcomicError(f"train-character trains {', '.join(TRAINABLE_FAMILIES)} models, not {family!r}",
                              field="stages.render.options.model")
    values = {k: v for k, v in given.items() if v is not None}
    for key, (lo, hi) in LIMITS.items():
        if key in values:
            v = values[key]
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise NovelcomicError(f"{key} {v!r} must be a whole number from {lo} to {hi}", field=f"--{key.replace('_', '-')}")
    if "resolution" in values and values["resolution"] % 8:
        raise NovelcomicError(f"resolution {values['resolution']!r} must be a multiple of 8 (the VAE's scale)",
                              field="--resolution")
    if "lr" in values:
        lr = values["lr"]
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not (0 < lr <= 1) or math.isnan(lr):
            raise NovelcomicError(f"learning rate {lr!r} must be a number above 0 and at most 1", field="--lr")
        values["lr"] = float(lr)
    if "seed" in values and (not isinstance(values["seed"], int) or not 0 <= values["seed"] <= 2**32 - 1):
        raise NovelcomicError(f"seed {values['seed']!r} must be a whole number from 0 to 2**32-1", field="--seed")
    return replace(DEFAULTS[family], **values)


@dataclass(frozen=True)
class Progress:
    step: int  # steps done
    total: int
    loss: float  # running mean over the last steps
    seconds_per_step: float
    resumed_from: int = 0
    checkpoint: bool = False  # a checkpoint was just written at ``step``


@dataclass
class TrainResult:
    path: Path
    steps: int
    resumed_from: int
    loss: float
    seconds: float
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Batch:
    """What the UNet is conditioned on, and the views' latent distributions (on the device)."""

    prompt_embeds: torch.Tensor
    added_cond: dict[str, torch.Tensor] | None
    latent_mean: torch.Tensor  # (views, 4, h/8, w/8)
    latent_std: torch.Tensor
    scaling: float = 1.0  # the VAE's scaling_factor


# --------------------------------------------------------------------------- precision and device


def precision(device: str) -> tuple[Any, bool]:
    """(dtype of the frozen UNet, whether a grad scaler is needed) on ``device``."""
    import torch

    if device.startswith("cuda"):
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16, False
        return torch.float16, True
    return torch.float32, False


# --------------------------------------------------------------------------- the trainer


class LoraTrainer:
    """The UNet with its LoRA, the optimizer and the random stream: one :meth:`step` at a time.

    Built from a loaded UNet and scheduler config, so the benchmark trains a random-weight SDXL
    UNet with the very same code."""

    def __init__(self, unet: Any, scheduler_config: Any, settings: TrainSettings, device: str) -> None:
        import torch
        from diffusers import DDPMScheduler
        from peft import LoraConfig

        self.settings, self.device = settings, device
        self.weight_dtype, scaled = precision(device)
        self.scheduler = DDPMScheduler.from_config(scheduler_config)
        self.prediction = self.scheduler.config.prediction_type
        unet.requires_grad_(False)
        unet.to(device)
        if self.weight_dtype != torch.float32:
            unet.to(dtype=self.weight_dtype)
        torch.manual_seed(settings.seed)  # peft's initialisation of lora_A (lora_B starts at zero)
        unet.add_adapter(LoraConfig(r=settings.rank, lora_alpha=settings.rank, init_lora_weights="gaussian",
                                    target_modules=list(TARGET_MODULES)))
        for p in unet.parameters():
            if p.requires_grad:
                p.data = p.data.float()
        unet.train()
        self.unet = unet
        self.params = [(n, p) for n, p in unet.named_parameters() if p.requires_grad]
        if not self.params:
            raise BackendError("the model's UNet has no to_q/to_k/to_v/to_out.0 layers to put a LoRA on")
        self.optimizer = torch.optim.AdamW([p for _, p in self.params], lr=settings.lr, weight_decay=1e-2)
        self.scaler = torch.amp.GradScaler("cuda", enabled=scaled)
        self.generator = torch.Generator("cpu").manual_seed(settings.seed)
        self.rng_done = self.generator.get_state()  # the stream after the last finished step (a stopped step is redone)
        self.step_done = 0
        self.updating = False  # inside optimizer.step(): the weights are half-updated

    # ------------------------------------------------------------------ one step

    def step(self, batch: Batch) -> float:
        import torch
        import torch.nn.functional as F

        g = self.generator
        self.optimizer.zero_grad(set_to_none=True)  # a step stopped halfway left gradients behind
        views = batch.latent_mean.shape[0]
        i = int(torch.randint(0, views, (1,), generator=g))
        mean, std = batch.latent_mean[i:i + 1], batch.latent_std[i:i + 1]
        sample = torch.randn(mean.shape, generator=g).to(self.device)
        latents = (mean + std * sample) * batch.scaling
        noise = torch.randn(latents.shape, generator=g).to(self.device)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (1,), generator=g).to(self.device)
        noisy = self.scheduler.add_noise(latents, noise, t)
        target = noise if self.prediction == "epsilon" else self.scheduler.get_velocity(latents, noise, t)
        autocast = (torch.autocast("cuda", dtype=self.weight_dtype) if self.device.startswith("cuda")
                    else contextlib.nullcontext())
        with autocast:
            pred = self.unet(noisy.to(self.weight_dtype), t, batch.prompt_embeds.to(self.weight_dtype),
                             added_cond_kwargs=batch.added_cond, return_dict=False)[0]
        loss = F.mse_loss(pred.float(), target.float())
        self.scaler.scale(loss).backward()
        self.updating = True
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.updating = False
        self.optimizer.zero_grad(set_to_none=True)
        self.step_done += 1
        self.rng_done = self.generator.get_state()
        return float(loss.detach())

    # ------------------------------------------------------------------ checkpoints

    def state(self, inputs: str, loss: float) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION, "inputs": inputs, "step": self.step_done, "loss": loss,
            "lora": {n: p.detach().cpu().clone() for n, p in self.params},
            "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
            "rng": self.rng_done,
        }

    def restore(self, state: dict[str, Any]) -> None:
        import torch

        with torch.no_grad():
            for n, p in self.params:
                p.copy_(state["lora"][n].to(p.device, p.dtype))
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["rng"])
        self.rng_done = self.generator.get_state()
        self.step_done = int(state["step"])

    def save_checkpoint(self, path: Path, inputs: str, loss: float) -> None:
        import torch

        with atomic_path(path) as tmp:
            torch.save(self.state(inputs, loss), tmp)

    def lora_layers(self) -> dict[str, Any]:
        from diffusers.utils import convert_state_dict_to_diffusers
        from peft.utils import get_peft_model_state_dict

        return convert_state_dict_to_diffusers(get_peft_model_state_dict(self.unet))


def load_checkpoint(path: Path, inputs: str) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it is of a run with these ``inputs``; None when absent,
    unreadable (a half-written file cannot be one: they are renamed into place) or another run's."""
    import torch

    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a checkpoint we cannot read is as good as none
        return None
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION or state.get("inputs") != inputs:
        return None
    return state


# --------------------------------------------------------------------------- preparing the data


def load_pipeline(model: str, family: str) -> Any:
    """The family's text-to-image pipeline on the CPU in fp32 (encoders run once; the UNet moves later)."""
    import diffusers
    import torch

    cls = getattr(diffusers, PIPELINES[family])
    try:
        pipe = cls.from_pretrained(model, dtype=torch.float32)
    except (OSError, ValueError, TypeError, RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendError(f"could not load model {model!r} as a {family} pipeline to train on: {first}",
                           field="stages.render.options.model") from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe


def prepare(pipe: Any, family: str, views: list[View], caption: str, resolution: int, device: str) -> Batch:
    """Encode the caption and every view (and its mirror) once; see the module doc."""
    import numpy as np
    import torch

    encoders = [m for m in (getattr(pipe, "text_encoder", None), getattr(pipe, "text_encoder_2", None), pipe.vae)
                if m is not None]
    for m in encoders:  # fp32 on the training device for this one pass, then back to the CPU
        m.to(device)
    try:
        with torch.no_grad():
            if family == "sdxl":
                embeds, _, pooled, _ = pipe.encode_prompt(caption, device=device, num_images_per_prompt=1,
                                                          do_classifier_free_guidance=False)
                projection = pipe.text_encoder_2.config.projection_dim
                time_ids = pipe._get_add_time_ids((resolution, resolution), (0, 0), (resolution, resolution),
                                                  dtype=embeds.dtype, text_encoder_projection_dim=projection)
                added = {"text_embeds": pooled.to(device), "time_ids": time_ids.to(device)}
            else:
                embeds, _ = pipe.encode_prompt(caption, device, 1, False)
                added = None
            pixels = []
            for view in views:
                arr = np.asarray(view.image, dtype=np.float32) / 127.5 - 1.0
                t = torch.from_numpy(arr).permute(2, 0, 1)
                pixels += [t, torch.flip(t, dims=[2])]
            means, stds = [], []
            for chunk in torch.stack(pixels).split(1 if device.startswith("cuda") else 4):
                dist = pipe.vae.encode(chunk.to(device)).latent_dist
                means.append(dist.mean)
                stds.append(dist.std)
    finally:
        for m in encoders:
            m.to("cpu")
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return Batch(embeds.to(device), added, torch.cat(means).to(device), torch.cat(stds).to(device),
                 float(pipe.vae.config.scaling_factor))


# --------------------------------------------------------------------------- writing the LoRA


def save_lora(trainer: LoraTrainer, family: str, target: Path) -> Path:
    """The LoRA in diffusers' layout (what ``pipe.load_lora_weights`` loads), renamed into place."""
    import diffusers

    cls = getattr(diffusers, PIPELINES[family])
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.stem}.", suffix=".part", dir=target.parent))
    try:
        metadata = trainer.unet.peft_config["default"].to_dict()
        cls.save_lora_weights(tmp, unet_lora_layers=trainer.lora_layers(), weight_name=target.name,
                              unet_lora_adapter_metadata=metadata)
        os.replace(tmp / target.name, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class TrainJob:
    """One character's training run."""

    model: str  # a resolved local diffusers directory or a hub id
    family: str
    device: str
    views: tuple[View, ...]
    caption: str
    settings: TrainSettings
    work_dir: Path  # .novelcomic/train/<character>/
    out_file: Path  # loras/<character>.safetensors
    inputs_hash: str


def train(job: TrainJob, progress: Callable[[Progress], None] | None = None) -> TrainResult:
    """Train (or go on training) ``job``'s LoRA and write it; see the module doc.

    A stop signal (:func:`novelcomic.procs.check_stop`, or :class:`~novelcomic.procs.Interrupted`
    raised by the signal handler) between updates writes a checkpoint at the last finished step
    before the stop is passed on, its ``summary`` saying where the run will resume."""
    started = time.monotonic()
    s = job.settings
    ckpt = job.work_dir / CHECKPOINT
    state = load_checkpoint(ckpt, job.inputs_hash)
    pipe = load_pipeline(job.model, job.family)
    batch = prepare(pipe, job.family, list(job.views), job.caption, s.resolution, job.device)
    trainer = LoraTrainer(pipe.unet, pipe.scheduler.config, s, job.device)
    del pipe  # the text encoders and the VAE are done with
    resumed = 0
    recent: list[float] = []
    if state is not None:
        trainer.restore(state)
        resumed = trainer.step_done
        if state.get("loss") is not None:
            recent.append(float(state["loss"]))
    if progress:
        progress(Progress(trainer.step_done, s.steps, recent[-1] if recent else float("nan"), 0.0, resumed))
    t0, first = time.monotonic(), trainer.step_done
    try:
        while trainer.step_done < s.steps:
            procs.check_stop()
            recent = (recent + [trainer.step(batch)])[-20:]
            mean = sum(recent) / len(recent)
            saved = trainer.step_done % s.checkpoint_every == 0 and trainer.step_done < s.steps
            if saved:
                trainer.save_checkpoint(ckpt, job.inputs_hash, mean)
            if progress:
                rate = (time.monotonic() - t0) / max(1, trainer.step_done - first)
                progress(Progress(trainer.step_done, s.steps, mean, rate, resumed, saved))
    except KeyboardInterrupt as exc:  # procs.Interrupted (SIGTERM, Ctrl-C) is one
        where = _save_on_stop(trainer, ckpt, job.inputs_hash, recent)
        if isinstance(exc, procs.Interrupted):
            exc.summary = where
        raise
    loss = sum(recent) / len(recent) if recent else float("nan")
    path = save_lora(trainer, job.family, job.out_file)
    return TrainResult(path, trainer.step_done, resumed, loss, time.monotonic() - started,
                       meta={"settings": asdict(s), "family": job.family, "device": job.device,
                             "views": len(job.views) * 2, "caption": job.caption})


def _save_on_stop(trainer: LoraTrainer, ckpt: Path, inputs: str, recent: list[float]) -> str:
    done = trainer.step_done
    if trainer.updating or done == 0:  # weights half-updated, or nothing learnt yet: keep the last one
        kept = load_checkpoint(ckpt, inputs)
        at = int(kept["step"]) if kept else 0
        return f"training checkpoint at step {at} kept" if at else "no training step was kept"
    trainer.save_checkpoint(ckpt, inputs, sum(recent) / len(recent) if recent else float("nan"))
    return f"training checkpoint at step {done} of {trainer.settings.steps} kept"


__all__ = [
    "DEFAULTS", "LoraTrainer", "Progress", "TrainJob", "TrainResult", "TrainSettings", "load_checkpoint", "prepare",
    "save_lora", "settings_for", "train",
]
