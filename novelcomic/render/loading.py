"""Loading diffusers pipelines once per process: model resolution, family detection, device and
dtype choice, scheduler swap, LoRAs and IP-Adapter, single-file checkpoints and memory options.

A :class:`LoadSpec` (frozen, hashable) says everything that decides the loaded weights;
:func:`load_pipelines` is ``lru_cache``'d on it, so the design stage, the render stage and every
shot in between share one set of weights however many backend objects are made. The img2img and
inpaint pipelines are derived from the loaded text-to-image components with ``from_pipe``
(weights shared, nothing loaded twice). Pipelines hold scheduler state, so calls on one
:class:`LoadedPipelines` are serialised by its ``lock``.

Single-file checkpoints (Civitai-style ``.safetensors`` holding a whole SD 1.5 or SDXL model) load
through ``from_single_file`` with the component configs shipped in ``single_file_configs/`` (and a
CLIP tokenizer built from the BPE merges shipped there), so nothing is fetched; the family is read
from the checkpoint's keys (:func:`detect_checkpoint_family`).

Memory options (:class:`MemorySpec`): ``offload`` (model | sequential | group), ``vae_tiling``,
``layerwise_fp8`` (weights stored in float8, computed in the pipeline's dtype) and ``quantize:
bnb-nf4`` (bitsandbytes 4-bit, CUDA only); checked when the backend is made, applied here.

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
from novelcomic.render.families import FAMILIES, SINGLE_FILE_FAMILIES, FamilySpec, family_for_class

Family = str  # a key of :data:`novelcomic.render.families.FAMILIES`
OPTIONS = "stages.render.options."
CONFIGS_DIR = Path(__file__).resolve().parent / "single_file_configs"
OFFLOADS = ("model", "sequential", "group")
QUANTIZE = ("bnb-nf4",)

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
    trigger: str = ""  # words the LoRA was trained on, added to every prompt it draws


    @classmethod
    def parse(cls, value: Any, index: int, where: str = OPTIONS + "lora") -> LoraSpec:
        if isinstance(value, str):
            value = {"path": value}
        if not isinstance(value, dict) or not isinstance(value.get("path"), str):
            raise NovelcomicError(f"LoRA {value!r} must be a mapping with a 'path'", field=f"{where}[{index}]")
        unknown = set(value) - {"path", "weight_name", "scale", "adapter_name", "trigger"}
        if unknown:
            raise NovelcomicError(f"unknown LoRA keys {sorted(unknown)!r}", field=f"{where}[{index}]")
        scale = value.get("scale", 1.0)
        if not isinstance(scale, (int, float)) or isinstance(scale, bool):
            raise NovelcomicError(f"LoRA scale {scale!r} must be a number", field=f"{where}[{index}].scale")
        trigger = value.get("trigger") or ""
        if not isinstance(trigger, str):
            raise NovelcomicError(f"LoRA trigger {trigger!r} must be text (the words it was trained on)",
                                  field=f"{where}[{index}].trigger")
        return cls(value["path"], value.get("weight_name"), float(scale), value.get("adapter_name") or f"lora{index}",
                   trigger.strip())


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
class MemorySpec:
    """How the weights are fitted into GPU memory (see the module doc); all off by default."""

    offload: str | None = None  # model | sequential | group
    vae_tiling: bool = False
    layerwise_fp8: bool = False
    quantize: str | None = None  # bnb-nf4

    @classmethod
    def parse(cls, offload: Any = None, vae_tiling: Any = False, layerwise_fp8: Any = False,
              quantize: Any = None) -> MemorySpec:
        """The options checked for their values (not yet for the machine: see :meth:`check_device`)."""
        if offload is not None and offload not in OFFLOADS:
            raise NovelcomicError(f"offload {offload!r} must be one of {', '.join(OFFLOADS)} (or left out)",
                                  field=OPTIONS + "offload")
        for key, value in (("vae_tiling", vae_tiling), ("layerwise_fp8", layerwise_fp8)):
            if not isinstance(value, bool):
                raise NovelcomicError(f"{key} {value!r} must be true or false", field=OPTIONS + key)
        if quantize is not None and quantize not in QUANTIZE:
            raise NovelcomicError(f"quantize {quantize!r} must be one of {', '.join(QUANTIZE)} (or left out)",
                                  field=OPTIONS + "quantize")
        if quantize and layerwise_fp8:
            raise NovelcomicError("quantize and layerwise_fp8 both shrink the weights: choose one",
                                  field=OPTIONS + "layerwise_fp8")
        return cls(offload, vae_tiling, layerwise_fp8, quantize)

    def check_device(self, device: str, single_file: bool = False) -> None:
        """Refuse, in one line, what this machine or model cannot do."""
        if self.offload and device.split(":")[0] in ("cpu", "mps"):
            raise NovelcomicError(f"offload {self.offload!r} moves weights between CPU and a GPU, but the device is "
                                  f"{device!r}: leave offload out", field=OPTIONS + "offload")
        if self.quantize:
            import importlib.util

            if importlib.util.find_spec("bitsandbytes") is None:
                raise NovelcomicError("quantize: bnb-nf4 needs the bitsandbytes package (pip install bitsandbytes)",
                                      field=OPTIONS + "quantize")
            if not device.startswith("cuda"):
                raise NovelcomicError(f"quantize: bnb-nf4 runs on CUDA GPUs only, but the device is {device!r}",
                                      field=OPTIONS + "quantize")
            if single_file:
                raise NovelcomicError("quantize: bnb-nf4 works with diffusers model directories, not single-file "
                                      "checkpoints", field=OPTIONS + "quantize")


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
    memory: MemorySpec = MemorySpec()
    #: for a single-file checkpoint: a diffusers-layout directory of component configs (default:
    #: the family's in ``single_file_configs/``)
    single_file_config: str | None = None

    @property
    def single_file(self) -> bool:
        return is_checkpoint_file(self.model)


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
    def text2img(self) -> Any:
        """The text-to-image pipeline: the loaded one, or (Qwen-Image-Edit-Plus) one derived from it."""
        if self.family.text2img == self.family.load_class or self.spec.task == "inpaint":
            return self.main
        return _derive(self.main, self.family.text2img)

    @property
    def multiref(self) -> Any:
        """The pipeline that draws from reference images (multiref families: the loaded one)."""
        if not self.family.is_multiref:
            raise BackendError(f"the {self.spec.family} family draws no scene from reference images")
        return self.main

    @cached_property
    def img2img(self) -> Any:
        if self.family.img2img is None:
            raise BackendError(f"the {self.spec.family} family has no img2img pipeline", field=OPTIONS + "family")
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
        offloaded = self.spec.cpu_offload or self.spec.memory.offload is not None
        return "cpu" if offloaded or self.spec.device in ("cpu", "mps") else self.spec.device


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
                f"{what} {model!r} is a directory but not a diffusers model (no model_index.json); give the "
                "directory of a diffusers model or a single-file .safetensors checkpoint", field=OPTIONS + what,
            )
        return str(path.resolve())
    if path.suffix.lower() in (".ckpt", ".pt", ".pth", ".bin") and path.is_file():
        raise BackendError(f"{what} {model!r} is a pickle checkpoint, which can run code when loaded: use its "
                           ".safetensors version", field=OPTIONS + what)
    if path.suffix.lower() == ".safetensors":
        if not path.is_file():
            raise BackendError(f"{what} {model!r} not found (a single-file checkpoint)", field=OPTIONS + what)
        return str(path.resolve())
    if _HUB_ID.match(model) and not model.startswith((".", "~")) and not path.exists() and path.suffix != ".safetensors":
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
        if is_checkpoint_file(model) and family not in SINGLE_FILE_FAMILIES:
            raise NovelcomicError(f"family {family!r} cannot load a single-file checkpoint (only "
                                  f"{', '.join(SINGLE_FILE_FAMILIES)})", field=OPTIONS + "family")
        return family
    if is_checkpoint_file(model):
        return detect_checkpoint_family(model)
    name = model_index(model).get("_class_name", "")
    found = family_for_class(name)
    if found is not None:
        return found
    raise BackendError(
        f"cannot tell the family of model {model!r} (pipeline class {name!r}); set {OPTIONS}family to "
        f"{', '.join(FAMILIES)}", field=OPTIONS + "family",
    )


# --------------------------------------------------------------------------- single-file checkpoints

#: What marks each family's keys in a single-file checkpoint (the original Stability layout).
_CHECKPOINT_MARKS: dict[str, tuple[str, ...]] = {
    "sdxl": ("model.diffusion_model.input_blocks.0.0.weight", "conditioner.embedders.1.model.ln_final.weight"),
    "sd15": ("model.diffusion_model.input_blocks.0.0.weight",
             "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"),
}
#: Recognised but not loadable as a whole model here: what to do instead.
_CHECKPOINT_OTHERS: tuple[tuple[str, str], ...] = (
    ("cond_stage_model.model.ln_final.weight", "Stable Diffusion 2.x"),
    ("double_blocks.0.img_attn.qkv.weight", "a FLUX transformer"),
    ("model.diffusion_model.double_blocks.0.img_attn.qkv.weight", "a FLUX transformer"),
    ("transformer_blocks.0.img_mod.1.weight", "a Qwen-Image transformer"),
    ("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", "a LoRA"),
)


def is_checkpoint_file(model: str) -> bool:
    """Whether ``model`` names a single-file ``.safetensors`` checkpoint (not a directory or hub id)."""
    return model.lower().endswith(".safetensors") and Path(model).is_file()


def checkpoint_keys(path: str) -> list[str]:
    """The tensor names of a ``.safetensors`` file (its header only: nothing is loaded)."""
    header = Path(path).open("rb")
    with header:
        try:
            size = int.from_bytes(header.read(8), "little")
            if not 0 < size < 100_000_000:
                raise ValueError(f"header size {size}")
            names = json.loads(header.read(size))
        except (ValueError, UnicodeDecodeError) as exc:
            raise BackendError(f"{path!r} is not a readable .safetensors file ({exc})", field=OPTIONS + "model") from exc
    return [k for k in names if k != "__metadata__"]


def detect_checkpoint_family(path: str) -> str:
    """sd15 | sdxl from a single-file checkpoint's keys; anything else is an error naming what was
    expected and the key prefixes seen."""
    keys = checkpoint_keys(path)
    have = set(keys)
    for family in ("sdxl", "sd15"):
        if all(mark in have for mark in _CHECKPOINT_MARKS[family]):
            return family
    for mark, what in _CHECKPOINT_OTHERS:
        if mark in have:
            raise BackendError(f"checkpoint {path!r} looks like {what} (key {mark!r}), which novelcomic cannot load "
                               "as a single file: give its diffusers model directory", field=OPTIONS + "model")
    prefixes = sorted({".".join(k.split(".")[:2]) for k in keys})
    shown = ", ".join(prefixes[:12]) + (f", … ({len(prefixes)} prefixes)" if len(prefixes) > 12 else "")
    wanted = "; ".join(f"{fam}: {', '.join(marks)}" for fam, marks in _CHECKPOINT_MARKS.items())
    raise BackendError(
        f"checkpoint {path!r} matches no known family ({wanted}); its {len(keys)} keys start with: "
        f"{shown or 'nothing'}", field=OPTIONS + "model",
    )


def single_file_config(family: str, given: str | None = None) -> Path:
    """The directory of component configs a single-file ``family`` checkpoint is loaded with."""
    if given is not None:
        path = Path(given).expanduser()
        if not (path / "model_index.json").is_file():
            raise NovelcomicError(f"single_file_config {given!r} must be a directory with model_index.json and the "
                                  "components' config files", field=OPTIONS + "single_file_config")
        return path.resolve()
    return CONFIGS_DIR / family


def clip_tokenizer(pad_token: str = "<|endoftext|>") -> Any:
    """The CLIP BPE tokenizer of SD 1.5 / SDXL, from the merges shipped in ``single_file_configs/``
    (49,408 tokens: 256 bytes, the same with ``</w>``, 48,894 merges, start and end)."""
    import gzip

    from transformers import CLIPTokenizer

    merges_text = gzip.decompress((CONFIGS_DIR / "clip_merges.txt.gz").read_bytes()).decode("utf-8")
    merges = [tuple(line.split()) for line in merges_text.splitlines()[1:] if line]
    chars = _byte_chars()
    vocab = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=merges,
                         pad_token=pad_token, model_max_length=77)


def byte_to_char() -> dict[int, str]:
    """GPT-2/CLIP's byte → printable character table, in vocabulary order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def _byte_chars() -> list[str]:
    """GPT-2/CLIP's printable stand-ins for the 256 byte values, in vocabulary order."""
    return list(byte_to_char().values())


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
    if spec.task == "text2img":
        ref = family.load_class
    cls = _import(ref)
    dtype = getattr(torch, spec.dtype)
    try:
        if spec.single_file:
            pipe = _from_single_file(cls, spec, dtype)
        else:
            extra = {"quantization_config": _quantization(spec, family, dtype)} if spec.memory.quantize else {}
            pipe = cls.from_pretrained(spec.model, dtype=dtype, **extra)
    except OSError as exc:
        if Path(spec.model).is_dir() or spec.single_file:
            raise BackendError(f"could not load model {spec.model!r}: {exc}", field=OPTIONS + "model") from exc
        raise BackendError(_offline_message(spec.model, exc), field=OPTIONS + "model") from exc
    except ImportError as exc:  # e.g. Qwen2-VL's processor needs torchvision in transformers 5
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendError(f"could not load model {spec.model!r} as a {spec.family} pipeline ({cls.__name__}): a package "
                           f"is missing: {first}", field=OPTIONS + "model") from exc
    except (ValueError, TypeError, RuntimeError, KeyError) as exc:
        raise BackendError(
            f"could not load model {spec.model!r} as a {spec.family} pipeline ({cls.__name__}): {exc}",
            field=OPTIONS + "model",
        ) from exc
    pipe.set_progress_bar_config(disable=True)
    if spec.scheduler:
        cls_name, extra = SCHEDULERS[spec.scheduler]
        pipe.scheduler = _import(f"diffusers:{cls_name}").from_config(pipe.scheduler.config, **dict(extra))
    if not spec.cpu_offload and not spec.memory.offload and not spec.memory.quantize and spec.device != "cpu":
        pipe.to(spec.device)  # (loaded on the CPU; quantized weights are placed by bitsandbytes)
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
    apply_memory(pipe, spec.memory, spec.device, dtype, family)
    if spec.compile:
        getattr(pipe, family.denoiser).compile()
    return LoadedPipelines(spec, pipe)


def _from_single_file(cls: Any, spec: LoadSpec, dtype: Any) -> Any:
    """A whole SD 1.5 / SDXL pipeline from one ``.safetensors`` file, offline: the component
    configs come from :func:`single_file_config`; the tokenizers from that directory when it has
    them, else built from the shipped CLIP merges."""
    config = single_file_config(spec.family, spec.single_file_config)
    tokenizers: dict[str, Any] = {}
    if not (config / "tokenizer").is_dir():
        tokenizers["tokenizer"] = clip_tokenizer()
        if spec.family == "sdxl":
            tokenizers["tokenizer_2"] = clip_tokenizer(pad_token="!")
    return cls.from_single_file(spec.model, config=str(config), local_files_only=True, dtype=dtype, **tokenizers)


def _quantization(spec: LoadSpec, family: FamilySpec, dtype: Any) -> Any:
    """bitsandbytes NF4 for the denoiser and the text encoder(s) (diffusers' PipelineQuantizationConfig)."""
    from diffusers.quantizers import PipelineQuantizationConfig

    components = [family.denoiser, "text_encoder"] + (["text_encoder_2"] if spec.family == "sdxl" else [])
    return PipelineQuantizationConfig(
        quant_backend="bitsandbytes_4bit",
        quant_kwargs={"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": dtype},
        components_to_quantize=components,
    )


def apply_memory(pipe: Any, memory: MemorySpec, device: str, dtype: Any, family: FamilySpec) -> None:
    """``offload``, ``vae_tiling`` and ``layerwise_fp8`` applied to a loaded pipeline."""
    import torch

    if memory.layerwise_fp8:  # before offloading hooks are added
        getattr(pipe, family.denoiser).enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype)
    if memory.vae_tiling:
        pipe.vae.enable_tiling()
    if memory.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif memory.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    elif memory.offload == "group":
        pipe.enable_group_offload(onload_device=torch.device(device), offload_device=torch.device("cpu"),
                                  offload_type="leaf_level", use_stream=True)


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
    "CONFIGS_DIR", "FAMILIES", "OFFLOADS", "QUANTIZE", "SCHEDULERS", "FamilySpec", "IPAdapterSpec", "LoadSpec",
    "LoadedPipelines", "LoraSpec", "MemorySpec", "apply_memory", "check_scheduler", "checkpoint_keys", "clip_tokenizer",
    "detect_checkpoint_family", "detect_family", "is_checkpoint_file", "load_lora", "load_pipelines", "model_index",
    "require_peft", "resolve_device", "resolve_dtype", "resolve_model", "single_file_config",
]
