"""Loading diffusers pipelines once per process: model resolution, family detection, device and
dtype choice, scheduler swap, LoRAs and IP-Adapter.

A :class:`LoadSpec` (frozen, hashable) says everything that decides the loaded weights;
:func:`load_pipelines` is ``lru_cache``'d on it, so the design stage, the render stage and every
shot in between share one set of weights however many backend objects are made. The img2img and
inpaint pipelines are derived from the loaded text-to-image components with ``from_pipe``
(weights shared, nothing loaded twice). Pipelines hold scheduler state, so calls on one
:class:`LoadedPipelines` are serialised by its ``lock``.

Nothing here imports torch or diffusers at module level.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from novelcomic.devices import DTYPES
from novelcomic.errors import BackendError, NovelcomicError

Family = Literal["sd15", "sdxl", "kolors"]
OPTIONS = "stages.render.options."


@dataclass(frozen=True)
class FamilySpec:
    """The diffusers classes ("module:Class") of one model family."""

    text2img: str
    img2img: str
    inpaint: str | None
    pipeline_names: tuple[str, ...]  # ``_class_name`` values in model_index.json


#: Kolors comes from ``diffusers.pipelines.kolors``: the top-level names are dummies when
#: sentencepiece is missing, although only its tokenizer needs it.
FAMILIES: dict[str, FamilySpec] = {
    "sd15": FamilySpec(
        "diffusers:StableDiffusionPipeline", "diffusers:StableDiffusionImg2ImgPipeline",
        "diffusers:StableDiffusionInpaintPipeline",
        ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline", "StableDiffusionInpaintPipeline"),
    ),
    "sdxl": FamilySpec(
        "diffusers:StableDiffusionXLPipeline", "diffusers:StableDiffusionXLImg2ImgPipeline",
        "diffusers:StableDiffusionXLInpaintPipeline",
        ("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline", "StableDiffusionXLInpaintPipeline"),
    ),
    "kolors": FamilySpec(
        "diffusers.pipelines.kolors:KolorsPipeline", "diffusers.pipelines.kolors:KolorsImg2ImgPipeline", None,
        ("KolorsPipeline", "KolorsImg2ImgPipeline"),
    ),
}

#: Scheduler names accepted in ``scheduler:`` → (diffusers class, config overrides).
SCHEDULERS: dict[str, tuple[str, tuple[tuple[str, Any], ...]]] = {
    "euler": ("EulerDiscreteScheduler", ()),
    "euler_trailing": ("EulerDiscreteScheduler", (("timestep_spacing", "trailing"),)),  # SDXL-Lightning
    "euler_a": ("EulerAncestralDiscreteScheduler", ()),
    "ddim": ("DDIMScheduler", ()),
    "ddim_trailing": ("DDIMScheduler", (("timestep_spacing", "trailing"),)),  # Hyper-SD
    "dpmpp_2m": ("DPMSolverMultistepScheduler", ()),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler", (("use_karras_sigmas", True),)),
    "unipc": ("UniPCMultistepScheduler", ()),
    "pndm": ("PNDMScheduler", ()),
    "lcm": ("LCMScheduler", ()),
    "tcd": ("TCDScheduler", ()),
}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_LOAD_LOCK = threading.Lock()  # one load at a time, so two threads never load the same weights twice


@dataclass(frozen=True)
class LoraSpec:
    path: str
    weight_name: str | None = None
    scale: float = 1.0
    adapter_name: str = "lora0"

    @classmethod
    def parse(cls, value: Any, index: int, where: str = OPTIONS + "lora") -> LoraSpec:
        if isinstance(value, str):
            value = {"path": value}
        if not isinstance(value, dict) or not isinstance(value.get("path"), str):
            raise NovelcomicError(f"LoRA {value!r} must be a mapping with a 'path'", field=f"{where}[{index}]")
        unknown = set(value) - {"path", "weight_name", "scale", "adapter_name"}
        if unknown:
            raise NovelcomicError(f"unknown LoRA keys {sorted(unknown)!r}", field=f"{where}[{index}]")
        scale = value.get("scale", 1.0)
        if not isinstance(scale, (int, float)) or isinstance(scale, bool):
            raise NovelcomicError(f"LoRA scale {scale!r} must be a number", field=f"{where}[{index}].scale")
        return cls(value["path"], value.get("weight_name"), float(scale), value.get("adapter_name") or f"lora{index}")


@dataclass(frozen=True)
class IPAdapterSpec:
    path: str
    weight_name: str
    subfolder: str = ""
    image_encoder_folder: str | None = "image_encoder"

    @classmethod
    def parse(cls, value: Any, where: str = OPTIONS + "ip_adapter") -> tuple[IPAdapterSpec, float | None]:
        """The spec and the ``scale`` given with it (or None)."""
        if not isinstance(value, dict) or not isinstance(value.get("path"), str) or not isinstance(value.get("weight_name"), str):
            raise NovelcomicError(f"ip_adapter {value!r} must be a mapping with 'path' and 'weight_name'", field=where)
        unknown = set(value) - {"path", "weight_name", "subfolder", "image_encoder_folder", "scale"}
        if unknown:
            raise NovelcomicError(f"unknown ip_adapter keys {sorted(unknown)!r}", field=where)
        scale = value.get("scale")
        if scale is not None and (not isinstance(scale, (int, float)) or isinstance(scale, bool) or not 0 <= scale <= 2):
            raise NovelcomicError(f"ip_adapter scale {scale!r} must be a number from 0 to 2", field=where + ".scale")
        path = value["path"]
        if path.startswith("~"):  # a hub id never starts with ~
            path = str(Path(path).expanduser())
        if path.startswith(("/", "./", "../")) and not Path(path).exists():
            raise NovelcomicError(f"ip_adapter path {value['path']!r} does not exist", field=where + ".path")
        spec = cls(path, value["weight_name"], value.get("subfolder") or "",
                   value.get("image_encoder_folder", "image_encoder"))
        return spec, (float(scale) if scale is not None else None)


@dataclass(frozen=True)
class LoadSpec:
    """Everything that decides what :func:`load_pipelines` loads (its cache key)."""

    model: str  # a resolved local directory or a hub id
    family: Family
    device: str
    dtype: str
    task: Literal["text2img", "inpaint"] = "text2img"
    scheduler: str | None = None
    loras: tuple[LoraSpec, ...] = ()
    ip_adapter: IPAdapterSpec | None = None
    cpu_offload: bool = False
    compile: bool = False


@dataclass(eq=False)
class LoadedPipelines:
    """One loaded model: the main pipeline and the pipelines derived from its components."""

    spec: LoadSpec
    main: Any
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def family(self) -> FamilySpec:
        return FAMILIES[self.spec.family]

    @cached_property
    def img2img(self) -> Any:
        return _derive(self.main, self.family.img2img)

    @cached_property
    def inpaint(self) -> Any:
        if self.spec.task == "inpaint":
            return self.main
        if self.family.inpaint is None:
            raise BackendError(
                f"the {self.spec.family} family has no inpainting pipeline in diffusers: set "
                f"{OPTIONS}inpaint_model to an inpainting model", field=OPTIONS + "inpaint_model",
            )
        return _derive(self.main, self.family.inpaint)

    @property
    def has_ip_adapter(self) -> bool:
        return self.spec.ip_adapter is not None

    @property
    def lora_names(self) -> list[str]:
        return [lo.adapter_name for lo in self.spec.loras]

    @property
    def lora_weights(self) -> list[float]:
        return [lo.scale for lo in self.spec.loras]

    def generator_device(self) -> str:
        """Where seeds' generators live: CPU for offloaded or MPS pipelines (reproducible there)."""
        return "cpu" if self.spec.cpu_offload or self.spec.device in ("cpu", "mps") else self.spec.device


# --------------------------------------------------------------------------- resolution


def resolve_model(model: str, what: str = "model") -> str:
    """A local diffusers directory (returned resolved) or a hub id (returned as is).

    A string that names neither an existing directory nor a ``owner/name`` hub id is an error
    naming it; so is a directory without ``model_index.json``.
    """
    if not isinstance(model, str) or not model.strip():
        raise NovelcomicError(f"{what} {model!r} must be a model directory or a Hugging Face hub id", field=OPTIONS + what)
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise BackendError(
                f"{what} {model!r} is a directory but not a diffusers model (no model_index.json); "
                "convert single-file checkpoints with diffusers' conversion scripts", field=OPTIONS + what,
            )
        return str(path.resolve())
    if _HUB_ID.match(model) and not model.startswith((".", "~")) and not path.exists():
        return model
    raise BackendError(
        f"{what} {model!r} not found: give a diffusers model directory (with model_index.json) or a "
        "Hugging Face hub id such as 'stable-diffusion-v1-5/stable-diffusion-v1-5'", field=OPTIONS + what,
    )


def model_index(model: str) -> dict[str, Any]:
    """model_index.json of a local directory, or of a hub id (from the cache, else downloaded)."""
    path = Path(model)
    if path.is_dir():
        return json.loads((path / "model_index.json").read_text(encoding="utf-8"))
    try:
        from huggingface_hub import hf_hub_download

        try:
            file = hf_hub_download(model, "model_index.json", local_files_only=True)
        except Exception:  # not cached: try the network
            file = hf_hub_download(model, "model_index.json")
    except Exception as exc:
        raise BackendError(_offline_message(model, exc), field=OPTIONS + "model") from exc
    return json.loads(Path(file).read_text(encoding="utf-8"))


def _offline_message(model: str, exc: BaseException) -> str:
    return (
        f"model {model!r} is not in the Hugging Face cache and could not be downloaded "
        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). Download it where there is internet "
        f"(`hf download {model}`, which fills ~/.cache/huggingface), or put a diffusers-format "
        f"directory anywhere and set {OPTIONS}model to its path"
    )


def detect_family(model: str, family: str = "auto") -> Family:
    """``family`` checked, or (for "auto") read from model_index.json's ``_class_name``."""
    if family != "auto":
        if family not in FAMILIES:
            raise NovelcomicError(f"family {family!r} must be auto, {', '.join(FAMILIES)}", field=OPTIONS + "family")
        return family  # type: ignore[return-value]
    name = model_index(model).get("_class_name", "")
    for fam, spec in FAMILIES.items():
        if name in spec.pipeline_names:
            return fam  # type: ignore[return-value]
    raise BackendError(
        f"cannot tell the family of model {model!r} (pipeline class {name!r}); set {OPTIONS}family to "
        f"{', '.join(FAMILIES)}", field=OPTIONS + "family",
    )


def resolve_device(device: str) -> str:
    if device != "auto":
        if device.split(":")[0] not in ("cpu", "cuda", "mps", "xpu"):
            raise NovelcomicError(f"device {device!r} must be auto, cpu, cuda[:N], mps or xpu", field=OPTIONS + "device")
        return device
    from novelcomic.devices import auto_device

    return auto_device()


def resolve_dtype(dtype: str, device: str) -> str:
    """An explicit dtype checked, or for "auto" the device's (see :func:`novelcomic.devices.auto_dtype`)."""
    if dtype != "auto":
        if dtype not in DTYPES:
            raise NovelcomicError(f"dtype {dtype!r} must be auto, {', '.join(sorted(DTYPES))}", field=OPTIONS + "dtype")
        return DTYPES[dtype]
    from novelcomic.devices import auto_dtype

    return auto_dtype(device)


def check_scheduler(name: str | None) -> None:
    if name is not None and name not in SCHEDULERS:
        raise NovelcomicError(f"scheduler {name!r} must be one of {', '.join(SCHEDULERS)}", field=OPTIONS + "scheduler")


# --------------------------------------------------------------------------- loading


def _import(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def _derive(pipe: Any, ref: str) -> Any:
    derived = _import(ref).from_pipe(pipe)
    derived.set_progress_bar_config(disable=True)
    return derived


@functools.lru_cache(maxsize=4)
def load_pipelines(spec: LoadSpec) -> LoadedPipelines:
    """Load the model of ``spec`` once per process (cached on the spec); see the module doc."""
    with _LOAD_LOCK:
        return _load(spec)


def _load(spec: LoadSpec) -> LoadedPipelines:
    import torch

    family = FAMILIES[spec.family]
    ref = family.inpaint if spec.task == "inpaint" else family.text2img
    if ref is None:
        raise BackendError(f"the {spec.family} family has no inpainting pipeline", field=OPTIONS + "family")
    cls = _import(ref)
    dtype = getattr(torch, spec.dtype)
    try:
        pipe = cls.from_pretrained(spec.model, dtype=dtype)
    except OSError as exc:
        if Path(spec.model).is_dir():
            raise BackendError(f"could not load model {spec.model!r}: {exc}", field=OPTIONS + "model") from exc
        raise BackendError(_offline_message(spec.model, exc), field=OPTIONS + "model") from exc
    except (ValueError, TypeError, RuntimeError, KeyError) as exc:
        raise BackendError(
            f"could not load model {spec.model!r} as a {spec.family} pipeline ({cls.__name__}): {exc}",
            field=OPTIONS + "model",
        ) from exc
    pipe.set_progress_bar_config(disable=True)
    if spec.scheduler:
        cls_name, extra = SCHEDULERS[spec.scheduler]
        pipe.scheduler = _import(f"diffusers:{cls_name}").from_config(pipe.scheduler.config, **dict(extra))
    if not spec.cpu_offload and spec.device != "cpu":  # loaded on the CPU already
        pipe.to(spec.device)
    if spec.loras:
        require_peft("lora")
        for lo in spec.loras:
            load_lora(pipe, lo.path, lo.weight_name, lo.adapter_name)
        pipe.set_adapters([lo.adapter_name for lo in spec.loras], [lo.scale for lo in spec.loras])
    if spec.ip_adapter is not None:
        ipa = spec.ip_adapter
        try:
            pipe.load_ip_adapter(ipa.path, subfolder=ipa.subfolder, weight_name=ipa.weight_name,
                                 image_encoder_folder=ipa.image_encoder_folder)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(f"could not load IP-Adapter {ipa.path!r} ({ipa.weight_name}): {first}",
                               field=OPTIONS + "ip_adapter") from exc
    if spec.cpu_offload:
        pipe.enable_model_cpu_offload(device=spec.device if spec.device != "cpu" else None)
    if spec.compile:
        pipe.unet.compile()
    return LoadedPipelines(spec, pipe)


def require_peft(what: str) -> None:
    from diffusers.utils import USE_PEFT_BACKEND

    if not USE_PEFT_BACKEND:
        raise BackendError(f"LoRA weights ({OPTIONS}{what}, Character.lora) need the 'peft' package: pip install peft",
                           field=OPTIONS + what)


def load_lora(pipe: Any, path: str, weight_name: str | None, adapter_name: str, field: str = OPTIONS + "lora") -> None:
    """Load the LoRA at ``path`` (a weights file, a directory holding one, or a hub id) into
    ``pipe`` as ``adapter_name``; any failure is a BackendError naming ``path`` at ``field``.

    A path that looks local but does not exist is reported as missing up front: diffusers would
    otherwise take it for a hub id and complain about the id's format.
    """
    local = Path(path).expanduser()
    if not local.exists() and (local.is_absolute() or path.startswith((".", "~")) or not _HUB_ID.match(path)
                               or local.suffix in (".safetensors", ".bin", ".pt", ".ckpt")):
        raise BackendError(f"LoRA {path!r} not found: give a .safetensors file, a directory holding one, or a "
                           "Hugging Face hub id", field=field)
    kwargs = {"weight_name": weight_name} if weight_name else {}
    try:
        pipe.load_lora_weights(str(local) if local.exists() else path, adapter_name=adapter_name, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise BackendError(f"could not load LoRA {path!r}: {exc}", field=field) from exc


__all__ = [
    "FAMILIES", "SCHEDULERS", "FamilySpec", "IPAdapterSpec", "LoadSpec", "LoadedPipelines", "LoraSpec",
    "check_scheduler", "detect_family", "load_lora", "load_pipelines", "model_index", "require_peft",
    "resolve_device", "resolve_dtype", "resolve_model",
]
