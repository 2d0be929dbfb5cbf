"""Picking the torch device, shared by every model-loading backend (diffusers, transformers, QA)."""

from __future__ import annotations

# Accepted spellings of a dtype option → the torch dtype's name.
DTYPES = {
    "float32": "float32", "fp32": "float32",
    "float16": "float16", "fp16": "float16", "half": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
}


def auto_device() -> str:
    """cuda when a CUDA GPU is visible, else mps (Apple), else cpu. Imports torch lazily."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def auto_dtype(device: str) -> str:
    """The dtype name a model should run in on ``device``: cuda → bfloat16 where supported, else
    float16; mps → float16; cpu → float32."""
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device.startswith("mps"):
        return "float16"
    return "float32"
