"""Picking the torch device, shared by every model-loading backend (diffusers, transformers, QA)."""

from __future__ import annotations


def auto_device() -> str:
    """cuda when a CUDA GPU is visible, else mps (Apple), else cpu. Imports torch lazily."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"
