"""The built-in backends, registered through the same entry point third-party plugins use.

Strings are ``module:attribute`` paths imported only when the backend is used.
"""

from __future__ import annotations

from typing import Any


def register(registries: dict[str, Any]) -> None:
    registries["plan"].register("heuristic", "novelcomic.plan.heuristic:HeuristicPlanner")
    registries["render"].register("animatic", "novelcomic.render.animatic:AnimaticBackend")
    registries["voice"].register("espeak", "novelcomic.voice.espeak:EspeakTTS")
    registries["voice"].register("silent", "novelcomic.voice.silent:SilentTTS")
    registries["compose"].register("ffmpeg", "novelcomic.compose.ffmpeg_composer:FFmpegComposer")
    registries["plan"].register("llm", "novelcomic.plan.llm_planner:LLMPlanner")
    registries["llm"].register("openai", "novelcomic.llm.openai_backend:OpenAIBackend")
    registries["llm"].register("transformers", "novelcomic.llm.transformers_backend:TransformersBackend")
    registries["render"].register("diffusers", "novelcomic.render.diffusers_backend:DiffusersBackend")
    registries["voice"].register("edge", "novelcomic.voice.edge:EdgeTTS")
    registries["render"].register("openai", "novelcomic.render.openai_images:OpenAIImages")
    registries["render"].register("comfyui", "novelcomic.render.comfyui:ComfyUIBackend")
    registries["voice"].register("openai", "novelcomic.voice.openai_speech:OpenAISpeech")
    registries["voice"].register("piper", "novelcomic.voice.piper:PiperTTS")
    registries["effect"].register("shake", "novelcomic.compose.effects:Shake")
    registries["effect"].register("vignette_pulse", "novelcomic.compose.effects:VignettePulse")
    if "animate" in registries:  # a host's REGISTRIES from before the animate stage has none
        registries["animate"].register("diffusers", "novelcomic.animate.backends.diffusers_i2v:DiffusersI2V")
        registries["animate"].register("comfyui", "novelcomic.animate.backends.comfyui_i2v:ComfyUII2V")
