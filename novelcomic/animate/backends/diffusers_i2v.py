"""Image-to-video with diffusers (``animate.backend: diffusers``): Wan2.2 TI2V / Wan2.1 I2V, LTX-Video
and Stable Video Diffusion, run locally.

The family comes from the model's ``model_index.json`` (``_class_name``; a Wan model whose VAE
has 48 latent channels or whose pipeline expands timesteps is Wan2.2 TI2V), or from the
``family`` option. Each family has its native fps, frame rule and size
(:data:`novelcomic.animate.base.FAMILIES`): the clip is as many frames as the shot lasts at that
fps, rounded up to what the model takes (Wan 4k+1, LTX 8k+1, SVD its UNet's fixed count), at most
``max_frames``; the composer slows or holds a clip shorter than its shot. Memory options as in
the image backend: ``offload`` (``model`` / ``sequential``), ``vae_tiling``, ``vae_slicing``,
``dtype``. One pipeline is kept per process.

Options (``animate.options``): ``model`` (a diffusers directory or hub id; required), ``family``
(auto | wan22 | wan | ltx | svd), ``device``, ``dtype``, ``offload``, ``vae_tiling``, ``vae_slicing``,
``steps``, ``guidance_scale``, ``max_frames``, ``fps`` (the clip's fps; default the family's),
``width``/``height`` (default: the family's native size in the project's aspect), ``long_side``,
``motion_bucket_id`` / ``noise_aug_strength`` / ``decode_chunk_size`` (SVD), ``max_sequence_length``.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from novelcomic.animate.base import FAMILIES, Capabilities, ClipRequest, ClipResult, native_size
from novelcomic.errors import BackendError, NovelcomicError

OPTIONS = "animate.options."
PIPELINES = {
    "wan22": "diffusers:WanImageToVideoPipeline",
    "wan": "diffusers:WanImageToVideoPipeline",
    "ltx": "diffusers:LTXImageToVideoPipeline",
    "svd": "diffusers:StableVideoDiffusionPipeline",
}
DEFAULT_STEPS = {"wan22": 50, "wan": 40, "ltx": 40, "svd": 25}
DEFAULT_GUIDANCE = {"wan22": 5.0, "wan": 5.0, "ltx": 3.0, "svd": 3.0}
DTYPES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16", "bfloat16": "bfloat16", "bf16": "bfloat16"}

_cache: dict[tuple, Any] = {}
_lock = threading.Lock()


def family_of(model_index: dict[str, Any], model_dir: Path | None = None) -> str | None:
    """The family a diffusers model_index.json names (None: not an image-to-video model we run)."""
    name = model_index.get("_class_name", "")
    if name.startswith("Wan"):
        z = None
        if model_dir is not None and (model_dir / "vae" / "config.json").is_file():
            z = json.loads((model_dir / "vae" / "config.json").read_text(encoding="utf-8")).get("z_dim")
        return "wan22" if model_index.get("expand_timesteps") or z == 48 else "wan"
    if name.startswith("LTX") and "LTX2" not in name:
        return "ltx"
    if name == "StableVideoDiffusionPipeline":
        return "svd"
    return None


def _int(value: Any, name: str, lo: int, hi: int, optional: bool = True) -> int | None:
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise NovelcomicError(f"{name} {value!r} must be a whole number from {lo} to {hi}", field=OPTIONS + name)
    return value


def _num(value: Any, name: str, lo: float, hi: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise NovelcomicError(f"{name} {value!r} must be a number from {lo:g} to {hi:g}", field=OPTIONS + name)
    return float(value)


class DiffusersI2V:
    """Local image-to-video (see the module docstring)."""

    name = "diffusers"
    capabilities = Capabilities(families=("wan22", "wan", "ltx", "svd"), prompt=True, negative_prompt=True, output="mp4")

    def __init__(
        self, model: str | None = None, family: str = "auto", device: str = "auto", dtype: str = "auto",
        offload: str | None = None, vae_tiling: bool = False, vae_slicing: bool = False, steps: int | None = None,
        guidance_scale: float | None = None, max_frames: int | None = None, fps: float | None = None,
        width: int | None = None, height: int | None = None, long_side: int | None = None,
        motion_bucket_id: int = 127, noise_aug_strength: float = 0.02, decode_chunk_size: int | None = None,
        max_sequence_length: int | None = None,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise NovelcomicError(f"model {model!r} must be a diffusers image-to-video model directory or hub id "
                                  "(Wan2.2 TI2V, Wan2.1 I2V, LTX-Video or SVD)", field=OPTIONS + "model")
        if family not in ("auto", *FAMILIES):
            raise NovelcomicError(f"family {family!r} must be auto, {', '.join(FAMILIES)}", field=OPTIONS + "family")
        if device != "auto" and device.split(":")[0] not in ("cpu", "cuda", "mps", "xpu"):
            raise NovelcomicError(f"device {device!r} must be auto, cpu, cuda[:N], mps or xpu", field=OPTIONS + "device")
        if dtype != "auto" and dtype not in DTYPES:
            raise NovelcomicError(f"dtype {dtype!r} must be auto, {', '.join(DTYPES)}", field=OPTIONS + "dtype")
        if offload not in (None, "none", "model", "sequential"):
            raise NovelcomicError(f"offload {offload!r} must be none, model or sequential", field=OPTIONS + "offload")
        for key, value in (("vae_tiling", vae_tiling), ("vae_slicing", vae_slicing)):
            if not isinstance(value, bool):
                raise NovelcomicError(f"{key} {value!r} must be true or false", field=OPTIONS + key)
        self.steps = _int(steps, "steps", 1, 200)
        self.guidance = _num(guidance_scale, "guidance_scale", 0, 30)
        self.max_frames = _int(max_frames, "max_frames", 1, 1000)
        self.fps = _num(fps, "fps", 1, 120)
        self.width, self.height = _int(width, "width", 16, 4096), _int(height, "height", 16, 4096)
        if (self.width is None) != (self.height is None):
            raise NovelcomicError("width and height go together: give both or neither", field=OPTIONS + ("width" if self.width is None else "height"))
        self.long_side = _int(long_side, "long_side", 64, 4096)
        self.motion_bucket_id = _int(motion_bucket_id, "motion_bucket_id", 0, 1023, optional=False)
        self.noise_aug_strength = _num(noise_aug_strength, "noise_aug_strength", 0, 1)
        self.decode_chunk_size = _int(decode_chunk_size, "decode_chunk_size", 1, 256)
        self.max_sequence_length = _int(max_sequence_length, "max_sequence_length", 8, 1024)
        self.model, self.family_option, self.device, self.dtype = model, family, device, dtype
        self.offload = None if offload in (None, "none") else offload
        self.vae_tiling, self.vae_slicing = vae_tiling, vae_slicing

    # ------------------------------------------------------------------ loading

    def family(self) -> str:
        if self.family_option != "auto":
            return self.family_option
        from novelcomic.render.loading import model_index

        path = Path(self.model)
        try:
            index = model_index(self.model)
        except BackendError as exc:
            raise BackendError(str(exc).replace("stages.render.options.", OPTIONS), field=OPTIONS + "model") from None
        found = family_of(index, path if path.is_dir() else None)
        if found is None:
            raise BackendError(f"model {self.model!r} is a {index.get('_class_name')!r}, not an image-to-video model this "
                               f"backend runs (Wan2.2 TI2V, Wan2.1 I2V, LTX-Video, SVD); or set {OPTIONS}family",
                               field=OPTIONS + "model")
        return found

    def pipeline(self) -> tuple[Any, str, str]:
        """(pipeline, family, device), loaded once per process for these options."""
        import importlib

        import torch

        from novelcomic.devices import auto_device, auto_dtype

        family = self.family()
        device = auto_device() if self.device == "auto" else self.device
        dtype_name = DTYPES.get(self.dtype) or auto_dtype(device)
        key = (self.model, family, device, dtype_name, self.offload, self.vae_tiling, self.vae_slicing)
        with _lock:
            if key in _cache:
                return _cache[key], family, device
            _cache.clear()  # one video model in memory at a time
            module, _, cls = PIPELINES[family].partition(":")
            pipe_cls = getattr(importlib.import_module(module), cls)
            dtype = getattr(torch, dtype_name) if isinstance(dtype_name, str) else dtype_name
            kwargs: dict[str, Any] = {"dtype": dtype}
            if family in ("wan", "wan22"):  # Wan's VAE wants float32 (its docs load it so)
                from diffusers import AutoencoderKLWan

                kwargs["vae"] = AutoencoderKLWan.from_pretrained(self.model, subfolder="vae", dtype=torch.float32)
            try:
                pipe = pipe_cls.from_pretrained(self.model, **kwargs)
            except (OSError, ValueError) as exc:
                raise BackendError(f"could not load {self.model!r} as {cls}: {str(exc).splitlines()[0]}", field=OPTIONS + "model") from exc
            if self.vae_tiling and hasattr(pipe.vae, "enable_tiling"):
                pipe.vae.enable_tiling()
            if self.vae_slicing and hasattr(pipe.vae, "enable_slicing"):
                pipe.vae.enable_slicing()
            if self.offload == "model":
                pipe.enable_model_cpu_offload(device=device)
            elif self.offload == "sequential":
                pipe.enable_sequential_cpu_offload(device=device)
            else:
                pipe.to(device)
            pipe.set_progress_bar_config(disable=True)
            if family in ("wan", "wan22"):
                _ftfy_or_plain(pipe)
            _cache[key] = pipe
            return pipe, family, device

    # ------------------------------------------------------------------ clips

    def plan(self, family: str, request: ClipRequest, pipe: Any = None) -> tuple[int, int, int, float]:
        """(width, height, num_frames, fps) for ``request`` with ``family``."""
        fps, rule, _, _ = FAMILIES[family]
        fps = self.fps or fps
        if family == "svd" and pipe is not None:
            from novelcomic.animate.base import FrameRule

            rule = FrameRule(fixed=int(pipe.unet.config.num_frames))
        if self.width and self.height:
            w, h = self.width, self.height
        else:
            w, h = native_size(family, request.width, request.height, self.long_side)
        wanted = max(1, round(request.seconds * fps))
        return w, h, rule.frames_for(wanted, self.max_frames), float(fps)

    def animate(self, request: ClipRequest, out: Path) -> ClipResult:
        import torch
        from PIL import Image

        from novelcomic.animate.video import write_clip

        request.check()
        pipe, family, device = self.pipeline()
        w, h, frames, fps = self.plan(family, request, pipe)
        with Image.open(request.image) as im:
            image = _cover(im.convert("RGB"), w, h)
        gen = torch.Generator("cpu").manual_seed(request.seed)
        kw: dict[str, Any] = {"image": image, "height": h, "width": w, "num_frames": frames, "generator": gen,
                              "num_inference_steps": self.steps or DEFAULT_STEPS[family], "output_type": "np"}
        guidance = self.guidance if self.guidance is not None else DEFAULT_GUIDANCE[family]
        if family == "svd":
            kw.update(fps=max(1, round(fps)), motion_bucket_id=self.motion_bucket_id, noise_aug_strength=self.noise_aug_strength,
                      decode_chunk_size=self.decode_chunk_size or frames, max_guidance_scale=max(1.0, guidance),
                      min_guidance_scale=1.0)
        else:
            kw.update(prompt=request.prompt, negative_prompt=request.negative_prompt, guidance_scale=guidance)
            if self.max_sequence_length:
                kw["max_sequence_length"] = self.max_sequence_length
            if family == "ltx":
                kw["frame_rate"] = round(fps)
        from novelcomic import procs

        def stop_check(_pipe: Any, _step: int, _t: Any, kwargs: dict) -> dict:
            procs.check_stop()  # a stop signal ends the clip between steps
            return kwargs

        kw["callback_on_step_end"] = stop_check
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        with torch.inference_mode():
            result = pipe(**kw)
        video = result.frames[0]
        n, vw, vh = write_clip(video, fps, out)
        meta: dict[str, Any] = {"family": family, "model": self.model, "size": [w, h], "steps": kw["num_inference_steps"]}
        if device.startswith("cuda"):
            meta["peak_vram_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        return ClipResult(out, fps, n, vw, vh, request.seed, meta)


def _cover(im: Any, w: int, h: int) -> Any:
    """``im`` scaled to cover ``w``×``h`` and centre-cropped (the model's size, the still's framing)."""
    from PIL import Image

    scale = max(w / im.width, h / im.height)
    size = (max(w, round(im.width * scale)), max(h, round(im.height * scale)))
    im = im.resize(size, Image.Resampling.LANCZOS)
    left, top = (size[0] - w) // 2, (size[1] - h) // 2
    return im.crop((left, top, left + w, top + h))


def _ftfy_or_plain(pipe: Any) -> None:
    """Wan's prompt cleaning calls ``ftfy.fix_text`` (mojibake repair), an optional dependency:
    without ftfy installed, prompts (written by us, never mojibake) are used as they are."""
    import importlib
    import types

    module = importlib.import_module(type(pipe).__module__)
    if getattr(module, "ftfy", None) is None:
        try:
            import ftfy
        except ImportError:
            ftfy = types.SimpleNamespace(fix_text=lambda text: text)  # type: ignore[assignment]
        module.ftfy = ftfy
