"""Tiny random-weight multi-reference models and single-file checkpoints, built offline.

The component sizes follow diffusers' own tests (``get_dummy_components`` of
``tests/pipelines/flux2/test_pipeline_flux2_klein.py`` and
``tests/pipelines/qwenimage/test_qwenimage_edit_plus.py``). Those tests download
``hf-internal-testing/tiny-random-Qwen2VLForConditionalGeneration`` for the tokenizer and
processor; here a byte-level BPE is trained on a few sentences with ``tokenizers`` (with Qwen's
special tokens and a chat template) and the Qwen2-VL processor is put together from it and a
default ``Qwen2VLImageProcessor``. Each builder saves a pipeline with ``save_pretrained`` so the
backend loads it through model_index.json, as it would a downloaded model.

- :func:`build_flux2_klein`         Flux2KleinPipeline: 1+1-layer transformer, 2-layer Qwen3.
- :func:`build_qwen_edit_plus`      QwenImageEditPlusPipeline: 2-layer transformer, 2-layer Qwen2.5-VL.
- :func:`write_single_file`         a diffusers SD 1.5 / SDXL directory written as one original-layout
  ``.safetensors`` (UNet ``model.diffusion_model.*``, VAE ``first_stage_model.*``, CLIP
  ``cond_stage_model.transformer.*`` / ``conditioner.embedders.{0,1}.*``), the reverse of diffusers'
  single-file conversion, for any block count.
- :func:`write_kohya_lora`          a kohya/A1111 LoRA (``lora_unet_*`` / ``lora_te_*`` keys with
  ``lora_down`` / ``lora_up`` / ``alpha``) for a tiny SD 1.5.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "a girl in a blue robe sits beside an old fisherman with white hair by the river at dusk",
    "Lin from image 1 on the left and Wang from Picture 2 on the right, keep each face",
    "青衣少女坐在白发老渔夫身旁，河边，黄昏。图1中的林在左边，图2中的王在右边",
    "medium shot, waist up, calm atmosphere, soft light, no text, letters or speech bubbles",
    "Describe the key features of the input image, then explain how the user's text instruction should alter it",
]


def qwen_tokenizer(directory: Path):  # type: ignore[no-untyped-def]
    """A byte-level BPE with Qwen's special tokens and a chat template, as a ``Qwen2TokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=QWEN_SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS * 4, trainer)
    fast = Qwen2TokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                              unk_token=None, bos_token=None, chat_template=CHAT_TEMPLATE)
    directory.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(directory)
    return Qwen2TokenizerFast.from_pretrained(directory)


from transformers import Qwen2VLProcessor as _Qwen2VLProcessor
from transformers.processing_utils import ProcessorMixin  # noqa: F401  (diffusers looks the base class up here)


class TinyQwen2VLProcessor(_Qwen2VLProcessor):  # type: ignore[misc,valid-type]
    """``Qwen2VLProcessor`` without its video processor: transformers 5 builds that one with
    torchvision, which is not installed here. Images and text are processed by the real code."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):  # type: ignore[no-untyped-def]
        self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


def _vocab(tokenizer) -> int:  # type: ignore[no-untyped-def]
    return -(-len(tokenizer) // 64) * 64


def build_flux2_klein(directory: Path) -> Path:
    """A FLUX.2 [klein]-shaped pipeline (Qwen3 text encoder, 2 of its layers concatenated)."""
    from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline, Flux2Transformer2DModel
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = qwen_tokenizer(directory / "_tok")
    torch.manual_seed(0)
    transformer = Flux2Transformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, timestep_guidance_channels=256, axes_dims_rope=[4, 4, 4, 4], guidance_embeds=False,
    )
    torch.manual_seed(0)
    text_encoder = Qwen3ForCausalLM(Qwen3Config(
        intermediate_size=16, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        vocab_size=_vocab(tokenizer), max_position_embeddings=512,
    ))
    torch.manual_seed(0)
    vae = AutoencoderKLFlux2(
        sample_size=32, in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(4, 4), layers_per_block=1, latent_channels=1,
        norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
    )
    pipe = Flux2KleinPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder,
                              tokenizer=tokenizer, transformer=transformer, is_distilled=True)
    pipe.save_pretrained(directory)
    return directory


def build_qwen_edit_plus(directory: Path) -> Path:
    """A Qwen-Image-Edit-Plus-shaped pipeline (Qwen2.5-VL text encoder with a tiny vision tower)."""
    from diffusers import (AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImageEditPlusPipeline,
                           QwenImageTransformer2DModel)
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor

    tokenizer = qwen_tokenizer(directory / "_tok")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIALS}
    torch.manual_seed(0)
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=3,
        joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(8, 4, 4),
    )
    torch.manual_seed(0)
    z_dim = 4
    vae = AutoencoderKLQwenImage(base_dim=z_dim * 6, z_dim=z_dim, dim_mult=[1, 2, 4], num_res_blocks=1,
                                 temperal_downsample=[False, True], latents_mean=[0.0] * z_dim, latents_std=[1.0] * z_dim)
    torch.manual_seed(0)
    config = Qwen2_5_VLConfig(
        text_config={"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "num_key_value_heads": 2, "vocab_size": _vocab(tokenizer), "rope_theta": 1000000.0,
                     "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"}},
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16},
        hidden_size=16, vocab_size=_vocab(tokenizer), vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"], image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_token_id=ids["<|image_pad|>"],
    )
    text_encoder = Qwen2_5_VLForConditionalGeneration(config)
    processor = TinyQwen2VLProcessor(image_processor=Qwen2VLImageProcessor(), tokenizer=tokenizer,
                                     chat_template=CHAT_TEMPLATE)
    pipe = QwenImageEditPlusPipeline(transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(),
                                     text_encoder=text_encoder, tokenizer=tokenizer, processor=processor)
    pipe.save_pretrained(directory)
    index = json.loads((directory / "model_index.json").read_text())
    index["processor"] = ["tests.tiny_multiref", "TinyQwen2VLProcessor"]  # loaded by its module path
    (directory / "model_index.json").write_text(json.dumps(index, indent=2))
    return directory


def build_flux_kontext(directory: Path) -> Path:
    """A FLUX.1 Kontext-shaped pipeline (diffusers' test sizes; a local 2-layer T5 encoder and the
    tiny CLIP tokenizer for both text encoders instead of the hub's tiny-random-t5)."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxKontextPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from tests.tiny_models import _load_clip_tok

    tokenizer = _load_clip_tok(directory / "_tok")
    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                         pooled_projection_dim=32, axes_dims_rope=[4, 4, 8])
    torch.manual_seed(0)
    clip = CLIPTextModel(CLIPTextConfig(bos_token_id=0, eos_token_id=2, hidden_size=32, intermediate_size=37,
                                        num_attention_heads=4, num_hidden_layers=2, pad_token_id=1, vocab_size=1000,
                                        hidden_act="gelu", projection_dim=32))
    torch.manual_seed(0)
    t5 = T5EncoderModel(T5Config(vocab_size=1000, d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4,
                                 decoder_start_token_id=0))
    torch.manual_seed(0)
    vae = AutoencoderKL(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4, 4), layers_per_block=1,
                        latent_channels=1, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
                        shift_factor=0.0609, scaling_factor=1.5035,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2)
    pipe = FluxKontextPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=clip,
                               tokenizer=tokenizer, text_encoder_2=t5, tokenizer_2=tokenizer, transformer=transformer)
    pipe.save_pretrained(directory)
    return directory


# ----------------------------------------------------------------------------- single-file checkpoints


def _unet_to_original(sd: dict[str, torch.Tensor], config: dict) -> dict[str, torch.Tensor]:
    """diffusers UNet keys → the original (LDM) layout, for any block count (the reverse of
    ``diffusers.loaders.single_file_utils.convert_ldm_unet_checkpoint``)."""
    n, per = len(config["block_out_channels"]), config["layers_per_block"]
    down_attn = ["CrossAttn" in t for t in config["down_block_types"]]
    up_attn = ["CrossAttn" in t for t in config["up_block_types"]]
    layer: list[tuple[str, str]] = []
    for i in range(n):
        for j in range(per):
            layer.append((f"input_blocks.{(per + 1) * i + j + 1}.0.", f"down_blocks.{i}.resnets.{j}."))
            if down_attn[i]:
                layer.append((f"input_blocks.{(per + 1) * i + j + 1}.1.", f"down_blocks.{i}.attentions.{j}."))
        if i < n - 1:
            layer.append((f"input_blocks.{(per + 1) * (i + 1)}.0.op.", f"down_blocks.{i}.downsamplers.0.conv."))
        for j in range(per + 1):
            layer.append((f"output_blocks.{(per + 1) * i + j}.0.", f"up_blocks.{i}.resnets.{j}."))
            if up_attn[i]:
                layer.append((f"output_blocks.{(per + 1) * i + j}.1.", f"up_blocks.{i}.attentions.{j}."))
        if i < n - 1:
            layer.append((f"output_blocks.{(per + 1) * i + per}.{2 if up_attn[i] else 1}.", f"up_blocks.{i}.upsamplers.0."))
    layer.append(("middle_block.1.", "mid_block.attentions.0."))
    for j in range(2):
        layer.append((f"middle_block.{2 * j}.", f"mid_block.resnets.{j}."))
    direct = {
        "time_embedding.linear_1.": "time_embed.0.", "time_embedding.linear_2.": "time_embed.2.",
        "add_embedding.linear_1.": "label_emb.0.0.", "add_embedding.linear_2.": "label_emb.0.2.",
        "conv_in.": "input_blocks.0.0.", "conv_norm_out.": "out.0.", "conv_out.": "out.2.",
    }
    resnet = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"), ("conv2", "out_layers.3"),
              ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection")]
    out = {}
    for key, value in sd.items():
        new = key
        for hf, orig in direct.items():
            if new.startswith(hf):
                new = orig + new[len(hf):]
        if "resnets" in new:
            for hf, orig in resnet:
                new = new.replace(hf, orig)
        for orig, hf in layer:
            if new.startswith(hf):
                new = orig + new[len(hf):]
                break
        out["model.diffusion_model." + new] = value
    return out


def _vae_to_original(sd: dict[str, torch.Tensor], config: dict) -> dict[str, torch.Tensor]:
    n, per = len(config["block_out_channels"]), config["layers_per_block"]
    layer: list[tuple[str, str]] = [("encoder.norm_out.", "encoder.conv_norm_out."), ("decoder.norm_out.", "decoder.conv_norm_out.")]
    for i in range(n):
        for j in range(per):
            layer.append((f"encoder.down.{i}.block.{j}.", f"encoder.down_blocks.{i}.resnets.{j}."))
        if i < n - 1:
            layer.append((f"encoder.down.{i}.downsample.", f"encoder.down_blocks.{i}.downsamplers.0."))
            layer.append((f"decoder.up.{n - 1 - i}.upsample.", f"decoder.up_blocks.{i}.upsamplers.0."))
        for j in range(per + 1):
            layer.append((f"decoder.up.{n - 1 - i}.block.{j}.", f"decoder.up_blocks.{i}.resnets.{j}."))
    for part in ("encoder", "decoder"):
        for j in range(2):
            layer.append((f"{part}.mid.block_{j + 1}.", f"{part}.mid_block.resnets.{j}."))
        layer.append((f"{part}.mid.attn_1.", f"{part}.mid_block.attentions.0."))
    attn = [("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."), ("to_out.0.", "proj_out.")]
    out = {}
    for key, value in sd.items():
        new = key.replace("conv_shortcut", "nin_shortcut")
        for orig, hf in layer:
            if new.startswith(hf):
                new = orig + new[len(hf):]
                break
        if ".mid.attn_1." in new:
            for hf, orig in attn:
                new = new.replace("attn_1." + hf, "attn_1." + orig)
            if value.ndim == 2:
                value = value.reshape(*value.shape, 1, 1)
        out["first_stage_model." + new] = value
    return out


def _open_clip(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A transformers CLIPTextModelWithProjection state dict → OpenCLIP's (SDXL's second encoder)."""
    names = [("text_model.encoder.layers.", "transformer.resblocks."), ("text_model.final_layer_norm.", "ln_final."),
             ("text_model.embeddings.token_embedding.weight", "token_embedding.weight"),
             ("text_model.embeddings.position_embedding.weight", "positional_embedding"),
             (".layer_norm1.", ".ln_1."), (".layer_norm2.", ".ln_2."), (".mlp.fc1.", ".mlp.c_fc."),
             (".mlp.fc2.", ".mlp.c_proj."), (".self_attn.out_proj.", ".attn.out_proj.")]
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        m = re.match(r"(.*)\.self_attn\.([qkv])_proj\.(weight|bias)$", key)
        if m:
            qkv.setdefault(f"{m.group(1)}|{m.group(3)}", {})[m.group(2)] = value
            continue
        if key == "text_projection.weight":
            out["text_projection"] = value.T.contiguous()
            continue
        if key.endswith("position_ids"):
            continue
        for hf, oc in names:
            key = key.replace(hf, oc)
        out[key] = value
    for name, parts in qkv.items():
        prefix, kind = name.split("|")
        for hf, oc in names:
            prefix = prefix.replace(hf, oc)
        out[f"{prefix}.attn.in_proj_{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def build_sdxl_two_widths(directory: Path) -> Path:
    """The tiny SDXL of tests/tiny_models.py with text encoders of different widths (32 and 48),
    as in the real model (768 and 1280): diffusers' single-file loader tells the two encoders
    of a checkpoint apart by their width."""
    from diffusers import StableDiffusionXLPipeline

    from tests.tiny_models import _clip_text, _load_clip_tok, _scheduler, _vae, _xl_unet

    torch.manual_seed(0)
    tok = _load_clip_tok(directory / "_tok")
    pipe = StableDiffusionXLPipeline(
        unet=_xl_unet(32 + 48, 32), vae=_vae(), text_encoder=_clip_text(32), text_encoder_2=_clip_text(48, projection=True),
        tokenizer=tok, tokenizer_2=tok, scheduler=_scheduler(), image_encoder=None, feature_extractor=None,
    )
    pipe.save_pretrained(directory)
    return directory


def _text_model_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers 5 saves CLIP text encoders without the ``text_model.`` prefix the original
    checkpoints (and transformers 4) use; put it back."""
    return {(k if k.startswith("text_model.") or k.startswith("text_projection") else "text_model." + k): v
            for k, v in sd.items() if not k.endswith("position_ids")}


def write_single_file(pipe_dir: Path, out: Path) -> Path:
    """The diffusers SD 1.5 or SDXL pipeline in ``pipe_dir`` saved as one original-layout ``.safetensors``."""
    from safetensors.torch import load_file, save_file

    def load(sub: str, name: str) -> dict[str, torch.Tensor]:
        return load_file(str(pipe_dir / sub / name))

    def cfg(sub: str) -> dict:
        return json.loads((pipe_dir / sub / "config.json").read_text())

    state = {**_unet_to_original(load("unet", "diffusion_pytorch_model.safetensors"), cfg("unet")),
             **_vae_to_original(load("vae", "diffusion_pytorch_model.safetensors"), cfg("vae"))}
    text = _text_model_keys(load("text_encoder", "model.safetensors"))
    if (pipe_dir / "text_encoder_2").is_dir():
        state.update({"conditioner.embedders.0.transformer." + k: v for k, v in text.items()})
        second = _open_clip(_text_model_keys(load("text_encoder_2", "model.safetensors")))
        state.update({"conditioner.embedders.1.model." + k: v for k, v in second.items()})
    else:
        state.update({"cond_stage_model.transformer." + k: v for k, v in text.items()})
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(out))
    return out


def config_dir(pipe_dir: Path, out: Path) -> Path:
    """The configs (no weights) of the pipeline in ``pipe_dir``: what ``single_file_config`` points at."""
    import shutil

    for path in pipe_dir.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".txt") and not path.parts[-2].startswith("_"):
            target = out / path.relative_to(pipe_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    return out


# ----------------------------------------------------------------------------- kohya LoRA


def write_kohya_lora(pipe_dir: Path, out: Path, rank: int = 4, strength: float = 0.5, seed: int = 3) -> Path:
    """A kohya/A1111-format LoRA for the SD 1.5 UNet and text encoder in ``pipe_dir``: for every
    attention projection, ``lora_unet_<module path with _>.lora_down.weight`` / ``.lora_up.weight`` /
    ``.alpha`` (and ``lora_te_text_model_encoder_layers_<i>_self_attn_<q|k|v|out>_proj.*``)."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    unet = UNet2DConditionModel.from_pretrained(pipe_dir, subfolder="unet")
    for name, module in unet.named_modules():
        if re.search(r"attn[12]\.(to_q|to_k|to_v|to_out\.0)$", name) and isinstance(module, torch.nn.Linear):
            key = "lora_unet_" + name.replace(".", "_")
            state[f"{key}.lora_down.weight"] = torch.randn(rank, module.in_features) * strength
            state[f"{key}.lora_up.weight"] = torch.randn(module.out_features, rank) * strength
            state[f"{key}.alpha"] = torch.tensor(float(rank))
    text = CLIPTextModel.from_pretrained(pipe_dir, subfolder="text_encoder")
    for name, module in text.named_modules():
        if re.search(r"self_attn\.(q_proj|k_proj|v_proj|out_proj)$", name):
            key = "lora_te_" + name.replace(".", "_")
            state[f"{key}.lora_down.weight"] = torch.randn(rank, module.in_features) * strength
            state[f"{key}.lora_up.weight"] = torch.randn(module.out_features, rank) * strength
            state[f"{key}.alpha"] = torch.tensor(float(rank))
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out), metadata={"ss_network_module": "networks.lora", "ss_network_dim": str(rank)})
    return out


__all__ = ["build_flux2_klein", "build_flux_kontext", "build_qwen_edit_plus", "build_sdxl_two_widths", "config_dir", "qwen_tokenizer", "write_kohya_lora",
           "write_single_file"]
