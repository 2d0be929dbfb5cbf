"""Tiny random-weight diffusion models, saved to directories the diffusers backend loads by path.

No weights can be downloaded here, so the tests build every component from a small config with
random weights (the same approach as diffusers' own ``get_dummy_components``) and save it with
``save_pretrained``: the backend then goes through its real loading code (``model_index.json``
family detection, ``from_pretrained``, ``from_pipe``, ``load_ip_adapter``) exactly as it would
with a downloaded model. Images come out as noise; the tests check sizes, modes, determinism and
what reached the pipeline, not looks.

Builders (each returns the directory it wrote):

- :func:`build_sd15`    StableDiffusionPipeline: 2-block UNet (32/64 ch), 4-block VAE (8× like the real
  one, so sheet-sized images stay cheap), 2-layer CLIP.
- :func:`build_sdxl`    StableDiffusionXLPipeline: two CLIP text encoders, ``text_time`` UNet.
- :func:`build_kolors`  KolorsPipeline: ChatGLM text encoder (2 layers, 32 wide).
- :func:`build_ip_adapter` an IP-Adapter directory (``image_encoder/`` + weights) for a UNet.
- :func:`build_lora`    a peft LoRA for the tiny SD1.5 UNet, saved the way diffusers saves LoRAs.

Kolors' real tokenizer (``ChatGLMTokenizer``) needs ``sentencepiece``: with it, :func:`build_kolors`
trains a tiny SentencePiece model and saves the real tokenizer. Without it, it saves
:class:`ByteGLMTokenizer`, a
``ChatGLMTokenizer`` whose SentencePiece model is replaced by a byte-level vocabulary; it keeps
the real class's padding (left), ``[gMASK] sop`` prefix and ``position_ids``, so the Kolors
pipeline code runs unchanged. Only the sub-word splitting differs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from diffusers.pipelines.kolors.tokenizer import ChatGLMTokenizer
from transformers import PreTrainedTokenizer  # noqa: F401  (diffusers looks it up in this module)

# ----------------------------------------------------------------------------- tokenizers


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's byte → printable character table (the one the shipped CLIP tokenizer uses)."""
    from novelcomic.render.loading import byte_to_char

    return byte_to_char()


def write_clip_tokenizer(directory: Path) -> Path:
    """A byte-level CLIP BPE tokenizer (vocab.json + merges.txt written by hand) saved to ``directory``."""
    from transformers import CLIPTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    merges = [("a", "n"), ("i", "n"), ("e", "r"), ("o", "n"), ("t", "h")]
    vocab: dict[str, int] = {}
    for tok in chars + [c + "</w>" for c in chars] + [a + b for a, b in merges] + [a + b + "</w>" for a, b in merges]:
        vocab.setdefault(tok, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    raw = directory / "_raw"
    raw.mkdir(exist_ok=True)
    (raw / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (raw / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n", encoding="utf-8")
    tok = CLIPTokenizer(vocab_file=str(raw / "vocab.json"), merges_file=str(raw / "merges.txt"), model_max_length=77)
    tok.save_pretrained(directory)
    return directory


class _ByteSP:
    """Stands in for diffusers' ``SPTokenizer``: one token per UTF-8 byte, same method names."""

    def __init__(self) -> None:
        self.byte_chars = _bytes_to_unicode()
        self.char_bytes = {c: b for b, c in self.byte_chars.items()}
        self.unk_id, self.bos_id, self.eos_id = 0, 1, 2
        self.pad_id = self.unk_id
        self.offset = 3
        self.n_words = self.offset + 256
        specials = ["[MASK]", "[gMASK]", "[sMASK]", "sop", "eop", "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"]
        self.special_tokens = {}
        self.index_special_tokens = {}
        for token in specials:
            self.special_tokens[token] = self.n_words
            self.index_special_tokens[self.n_words] = token
            self.n_words += 1

    def tokenize(self, s: str, encode_special_tokens: bool = False) -> list[str]:
        return [self.byte_chars[b] for b in s.encode("utf-8")]

    def encode(self, s: str, bos: bool = False, eos: bool = False) -> list[int]:
        ids = [self.offset + b for b in s.encode("utf-8")]
        return ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])

    def decode(self, t: list[int]) -> str:
        return bytes(i - self.offset for i in t if self.offset <= i < self.offset + 256).decode("utf-8", "replace")

    def decode_tokens(self, tokens: list[str]) -> str:
        return bytes(self.char_bytes[c] for tok in tokens for c in tok if c in self.char_bytes).decode("utf-8", "replace")

    def convert_token_to_id(self, token: str) -> int:
        if token in self.special_tokens:
            return self.special_tokens[token]
        if len(token) == 1 and token in self.char_bytes:
            return self.offset + self.char_bytes[token]
        return self.unk_id

    def convert_id_to_token(self, index: int) -> str:
        if index in self.index_special_tokens:
            return self.index_special_tokens[index]
        if self.offset <= index < self.offset + 256:
            return self.byte_chars[index - self.offset]
        return ""


class ByteGLMTokenizer(ChatGLMTokenizer):
    """``ChatGLMTokenizer`` with a byte-level vocabulary instead of a SentencePiece model (see module doc)."""

    def __init__(self, vocab_file: str, padding_side: str = "left", clean_up_tokenization_spaces: bool = False,
                 encode_special_tokens: bool = False, **kwargs: object) -> None:
        self.name = "GLMTokenizer"
        self.vocab_file = vocab_file
        self.tokenizer = _ByteSP()
        self.special_tokens = {"<bos>": self.tokenizer.bos_id, "<eos>": self.tokenizer.eos_id, "<pad>": self.tokenizer.pad_id}
        self.encode_special_tokens = encode_special_tokens
        PreTrainedTokenizer.__init__(
            self, padding_side=padding_side, clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            encode_special_tokens=encode_special_tokens, **kwargs,
        )


def have_sentencepiece() -> bool:
    try:
        import sentencepiece  # noqa: F401
    except ImportError:
        return False
    return True


def _glm_tokenizer(directory: Path) -> ChatGLMTokenizer:
    """The real ChatGLMTokenizer on a tiny trained SentencePiece model, or the byte-level stand-in.

    The SentencePiece model needs room for its 256 byte pieces (``byte_fallback``) plus every
    character of the corpus, hence ~300 pieces; ``hard_vocab_limit=False`` lets the trainer stop
    short of that on so small a corpus.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if have_sentencepiece():
        import sentencepiece as spm

        text = directory / "_corpus.txt"
        text.write_text("a girl in a blue robe by the river\n青衣少女站在河边\nan old man with white hair\n白发老人\n" * 20,
                        encoding="utf-8")
        spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(directory / "_sp"), vocab_size=300,
                                       byte_fallback=True, character_coverage=1.0, hard_vocab_limit=False,
                                       minloglevel=2)
        return ChatGLMTokenizer(vocab_file=str(directory / "_sp.model"))
    marker = directory / "_byte_vocab.model"
    marker.write_text("byte-level stand-in for a SentencePiece model\n", encoding="utf-8")
    return ByteGLMTokenizer(vocab_file=str(marker))


# ----------------------------------------------------------------------------- building once


def ensure(builder, directory: Path) -> Path:  # type: ignore[no-untyped-def]
    """``builder(directory)`` unless a finished model is already there (test modules share dirs)."""
    if not (directory / "model_index.json").is_file():
        builder(directory)
    return directory


def ensure_ip_adapter(directory: Path, unet_dir: Path) -> Path:
    if not (directory / "ip-adapter.safetensors").is_file():
        build_ip_adapter(directory, unet_dir)
    return directory


# ----------------------------------------------------------------------------- components


def _vae():  # type: ignore[no-untyped-def]
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(8, 8, 16, 16), in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=8,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, sample_size=64,
        layers_per_block=1, mid_block_add_attention=False,
    )


def _clip_text(hidden: int = 32, projection: bool = False):  # type: ignore[no-untyped-def]
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cfg = CLIPTextConfig(
        bos_token_id=0, eos_token_id=2, pad_token_id=1, hidden_size=hidden, intermediate_size=37,
        num_attention_heads=4, num_hidden_layers=2, vocab_size=600, projection_dim=32, hidden_act="gelu",
        max_position_embeddings=77,
    )
    return CLIPTextModelWithProjection(cfg) if projection else CLIPTextModel(cfg)


def _scheduler():  # type: ignore[no-untyped-def]
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
                                  timestep_spacing="leading")


def build_sd15(directory: Path) -> Path:
    """A Stable Diffusion 1.5-shaped pipeline with random weights."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(  # attention only at 1/4 of the latent size: sheet-sized images stay cheap
        block_out_channels=(16, 32, 64), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8,
    )
    pipe = StableDiffusionPipeline(
        unet=unet, vae=_vae(), text_encoder=_clip_text(), tokenizer=_load_clip_tok(directory / "_tok"),
        scheduler=_scheduler(), safety_checker=None, feature_extractor=None, image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(directory)
    return directory


def _load_clip_tok(directory: Path):  # type: ignore[no-untyped-def]
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(write_clip_tokenizer(directory))


def _xl_unet(cross_attention_dim: int, pooled_dim: int, **extra: object):  # type: ignore[no-untyped-def]
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 1), norm_num_groups=8,
        projection_class_embeddings_input_dim=6 * 8 + pooled_dim, cross_attention_dim=cross_attention_dim, **extra,
    )


def build_sdxl(directory: Path) -> Path:
    """An SDXL-shaped pipeline (two text encoders, ``text_time`` conditioning) with random weights."""
    from diffusers import StableDiffusionXLPipeline

    torch.manual_seed(0)
    tok = _load_clip_tok(directory / "_tok")
    pipe = StableDiffusionXLPipeline(
        unet=_xl_unet(64, 32), vae=_vae(), text_encoder=_clip_text(), text_encoder_2=_clip_text(projection=True),
        tokenizer=tok, tokenizer_2=tok, scheduler=_scheduler(), image_encoder=None, feature_extractor=None,
    )
    pipe.save_pretrained(directory)
    return directory


def build_kolors(directory: Path) -> Path:
    """A Kolors-shaped pipeline (ChatGLM text encoder) with random weights."""
    from diffusers.pipelines.kolors import KolorsPipeline  # the top-level name is a dummy without sentencepiece
    from diffusers.pipelines.kolors.text_encoder import ChatGLMConfig, ChatGLMModel

    tokenizer = _glm_tokenizer(directory / "_tok")
    vocab = -(-max(300, tokenizer.tokenizer.n_words) // 64) * 64  # every id, special tokens included, embeds
    torch.manual_seed(0)
    cfg = ChatGLMConfig(
        num_layers=2, padded_vocab_size=vocab, hidden_size=32, ffn_hidden_size=48, kv_channels=8,
        num_attention_heads=4, seq_length=256, multi_query_attention=True, multi_query_group_num=2,
        original_rope=True, torch_dtype="float32",
    )
    encoder = ChatGLMModel(cfg, empty_init=False)
    with torch.no_grad():  # RMSNorm weights start as torch.empty (NaN images otherwise)
        for name, p in encoder.named_parameters():
            if p.ndim == 1:
                p.fill_(1.0) if "weight" in name else p.zero_()
            else:
                torch.nn.init.normal_(p, std=0.02)
    unet = _xl_unet(64, 32, encoder_hid_dim=32, encoder_hid_dim_type="text_proj")
    pipe = KolorsPipeline(
        vae=_vae(), text_encoder=encoder, tokenizer=tokenizer, unet=unet,
        scheduler=_scheduler(), image_encoder=None, feature_extractor=None,
    )
    pipe.save_pretrained(directory)
    return directory


def build_ip_adapter(directory: Path, unet_dir: Path, *, image_size: int = 32) -> Path:
    """An IP-Adapter for the UNet saved in ``unet_dir``: ``image_encoder/`` + ``ip-adapter.safetensors``.

    The weights file holds ``image_proj.*`` (a plain ``ImageProjection``: linear + layer norm to 4
    tokens) and one ``ip_adapter.<id>.to_k_ip/to_v_ip`` pair per cross-attention processor, with
    ids 1, 3, 5, … in ``unet.attn_processors`` order (self-attention takes the even ids).
    """
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(1)
    unet = UNet2DConditionModel.from_pretrained(unet_dir, subfolder="unet")
    embed_dim = 32
    vision = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, projection_dim=embed_dim, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        image_size=image_size, patch_size=8,
    ))
    vision.save_pretrained(directory / "image_encoder")
    cross = unet.config.cross_attention_dim
    tokens = 4
    weights: dict[str, torch.Tensor] = {
        "image_proj.proj.weight": torch.randn(cross * tokens, embed_dim) * 0.05,
        "image_proj.proj.bias": torch.zeros(cross * tokens),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    hidden_for = _hidden_sizes(unet)
    for i, name in enumerate(unet.attn_processors):
        if name.endswith("attn1.processor"):
            continue
        hidden = hidden_for(name)
        weights[f"ip_adapter.{i}.to_k_ip.weight"] = torch.randn(hidden, cross) * 0.05
        weights[f"ip_adapter.{i}.to_v_ip.weight"] = torch.randn(hidden, cross) * 0.05
    save_file(weights, str(directory / "ip-adapter.safetensors"))
    return directory


def build_lora(pipe_dir: Path, out_dir: Path, rank: int = 4, *, seed: int = 2, strength: float = 20.0) -> Path:
    """A LoRA for the UNet of the SD1.5 pipeline in ``pipe_dir``, saved as
    ``out_dir/tiny_lora.safetensors`` by ``save_lora_weights`` (diffusers' own key layout).

    peft initialises ``lora_B`` to zero (a LoRA that changes nothing) or, with ``"gaussian"``,
    small; it is multiplied by ``strength`` so the LoRA visibly changes a 2-step image.
    Returns ``out_dir``.
    """
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(pipe_dir, subfolder="unet")
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=["to_q", "to_k", "to_v", "to_out.0"],
                                init_lora_weights="gaussian"))
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn_like(param) * 0.01 * strength)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    out_dir.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(out_dir, unet_lora_layers=layers, weight_name="tiny_lora.safetensors")
    return out_dir


def ensure_lora(directory: Path, pipe_dir: Path) -> Path:
    if not (directory / "tiny_lora.safetensors").is_file():
        build_lora(pipe_dir, directory)
    return directory


def _hidden_sizes(unet):  # type: ignore[no-untyped-def]
    channels = list(unet.config.block_out_channels)

    def hidden(name: str) -> int:
        if name.startswith("mid_block"):
            return channels[-1]
        block = int(re.search(r"blocks\.(\d+)", name).group(1))  # type: ignore[union-attr]
        return list(reversed(channels))[block] if name.startswith("up_blocks") else channels[block]

    return hidden


__all__ = ["ByteGLMTokenizer", "build_ip_adapter", "build_kolors", "build_lora", "build_sd15", "build_sdxl", "ensure",
           "ensure_ip_adapter", "ensure_lora", "have_sentencepiece", "write_clip_tokenizer"]
