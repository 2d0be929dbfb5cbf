"""Tiny random-weight image-to-video models (Wan2.2 TI2V, Wan2.1 I2V, LTX-Video, SVD), built from
small configs — diffusers' own ``get_dummy_components`` — and saved with ``save_pretrained``, so
the animate backend goes through its real loading code (``model_index.json`` family detection,
``from_pretrained``). Their text encoders are a local 2-layer (U)T5 with a word-level tokenizer
written here (diffusers' tests download ``hf-internal-testing/tiny-random-t5``; nothing can be
downloaded here). Frames come out as noise: tests check lengths, layers and caching, not looks.
"""

from __future__ import annotations

from pathlib import Path

import torch

WORDS = ["gentle", "subtle", "motion", "soft", "breeze", "slow", "breathing", "comic", "art", "style", "camera",
         "stable", "characters", "consistent", "fast", "dynamic", "static", "text", "blurry", "a", "the", "river", "and"]


def _tokenizer(directory: Path):  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=512)
    fast.save_pretrained(directory)
    return fast


def _t5(umt5: bool = False):  # type: ignore[no-untyped-def]
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    kw = dict(vocab_size=64, d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4, relative_attention_num_buckets=8,
              pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    torch.manual_seed(0)
    return UMT5EncoderModel(UMT5Config(**kw)) if umt5 else T5EncoderModel(T5Config(**kw))


def _save(pipe, directory: Path) -> Path:  # type: ignore[no-untyped-def]
    directory.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(directory, safe_serialization=True)
    return directory


def build_wan22(directory: Path) -> Path:
    """Wan2.2 TI2V: a 48-channel VAE with patching, expand_timesteps, no image encoder."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline, WanTransformer3DModel

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=48, in_channels=12, out_channels=12, is_residual=True, patch_size=2,
                           latents_mean=[0.0] * 48, latents_std=[1.0] * 48, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           scale_factor_spatial=16, scale_factor_temporal=4, temperal_downsample=[False, True, True])
    transformer = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=48,
                                        out_channels=48, text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2,
                                        cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32)
    pipe = WanImageToVideoPipeline(tokenizer=_tokenizer(directory / "_tok"), text_encoder=_t5(True), vae=vae,
                                   scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0), transformer=transformer,
                                   image_encoder=None, image_processor=None, expand_timesteps=True)
    return _save(pipe, directory)


def build_wan21(directory: Path) -> Path:
    """Wan2.1 I2V: a 16-channel VAE, a CLIP image encoder, 36 input channels."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline, WanTransformer3DModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True])
    transformer = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=36,
                                        out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2,
                                        cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32, image_dim=4)
    enc = CLIPVisionModel(CLIPVisionConfig(hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2,
                                           image_size=32, intermediate_size=16, patch_size=1))
    pipe = WanImageToVideoPipeline(tokenizer=_tokenizer(directory / "_tok"), text_encoder=_t5(True), vae=vae,
                                   scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0), transformer=transformer,
                                   image_encoder=enc, image_processor=CLIPImageProcessor(crop_size=32, size=32))
    return _save(pipe, directory)


def build_ltx(directory: Path) -> Path:
    """LTX-Video: 8 latent channels, 1 transformer layer (its tiny VAE compresses time 4×, so 8k+1 frames fit)."""
    from diffusers import AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXImageToVideoPipeline, LTXVideoTransformer3DModel

    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4,
                                             attention_head_dim=8, cross_attention_dim=32, num_layers=1, caption_channels=32)
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False), decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False), upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1), timestep_conditioning=False, patch_size=1, patch_size_t=1,
        encoder_causal=True, decoder_causal=False)
    pipe = LTXImageToVideoPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=_t5(),
                                   tokenizer=_tokenizer(directory / "_tok"), transformer=transformer)
    return _save(pipe, directory)


def build_svd(directory: Path, num_frames: int = 3) -> Path:
    """Stable Video Diffusion: a 2-block spatio-temporal UNet (``num_frames`` frames), a CLIP image
    encoder that takes the pipeline's 224×224 input in 7×7 patches."""
    from diffusers import (AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, StableVideoDiffusionPipeline,
                           UNetSpatioTemporalConditionModel)
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=8, out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"), cross_attention_dim=32,
        num_attention_heads=8, projection_class_embeddings_input_dim=96, addition_time_embed_dim=32, num_frames=num_frames)
    scheduler = EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, interpolation_type="linear",
                                       num_train_timesteps=1000, prediction_type="v_prediction", sigma_max=700.0, sigma_min=0.002,
                                       steps_offset=1, timestep_spacing="leading", timestep_type="continuous", use_karras_sigmas=True)
    vae = AutoencoderKLTemporalDecoder(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                                       down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"], latent_channels=4)
    enc = CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=32, projection_dim=32, num_hidden_layers=2, num_attention_heads=4,
                                                         image_size=224, intermediate_size=37, patch_size=32))
    pipe = StableVideoDiffusionPipeline(vae=vae, image_encoder=enc, unet=unet, scheduler=scheduler,
                                        feature_extractor=CLIPImageProcessor(crop_size=224, size=224))
    return _save(pipe, directory)


BUILDERS = {"wan22": build_wan22, "wan": build_wan21, "ltx": build_ltx, "svd": build_svd}


def ensure(family: str, root: Path) -> Path:
    """The tiny model of ``family`` under ``root`` (built once)."""
    directory = root / f"tiny-{family}"
    if not (directory / "model_index.json").is_file():
        BUILDERS[family](directory)
    return directory
