"""Where the project's language model comes from when project.yaml does not say.

``llm_from_env`` builds an :class:`~novelcomic.models.LLMConfig` from ``NOVELCOMIC_LLM_*``
environment variables (read when called, never at import), so a user can point every project at
one local server without editing each project.yaml. ``SETUP_HINT`` is the text every "no LLM is
configured" error shows.
"""

from __future__ import annotations

import os

from novelcomic.models import LLMConfig

ENV_BACKEND = "NOVELCOMIC_LLM_BACKEND"
ENV_BASE_URL = "NOVELCOMIC_LLM_BASE_URL"
ENV_MODEL = "NOVELCOMIC_LLM_MODEL"
ENV_API_KEY_ENV = "NOVELCOMIC_LLM_API_KEY_ENV"

SETUP_HINT = """\
no language model is configured. Add an `llm:` block to project.yaml, for example:
  Ollama:     llm: {backend: openai, options: {base_url: "http://localhost:11434/v1", model: "qwen2.5:7b"}}
  vLLM:       llm: {backend: openai, options: {base_url: "http://localhost:8000/v1", model: "Qwen/Qwen2.5-7B-Instruct"}}
  LM Studio:  llm: {backend: openai, options: {base_url: "http://localhost:1234/v1", model: "<loaded model>"}}
  DeepSeek:   llm: {backend: openai, options: {base_url: "https://api.deepseek.com/v1", model: "deepseek-chat", api_key_env: DEEPSEEK_API_KEY}}
  OpenAI:     llm: {backend: openai, options: {base_url: "https://api.openai.com/v1", model: "gpt-4o-mini", api_key_env: OPENAI_API_KEY}}
  local model directory (transformers): llm: {backend: transformers, options: {model: "/path/to/Qwen2.5-1.5B-Instruct"}}
or set NOVELCOMIC_LLM_BACKEND / NOVELCOMIC_LLM_BASE_URL / NOVELCOMIC_LLM_MODEL (and NOVELCOMIC_LLM_API_KEY_ENV, the
name of the variable holding the API key). Without an LLM, use the offline planner: stages.plan.backend: heuristic."""


def llm_from_env(environ: dict[str, str] | None = None) -> LLMConfig | None:
    """An LLMConfig from ``NOVELCOMIC_LLM_*`` variables, or None when none is set.

    ``NOVELCOMIC_LLM_BACKEND`` defaults to ``openai`` when only a URL or model is given. For the
    transformers backend ``NOVELCOMIC_LLM_MODEL`` is the model directory or hub id.
    """
    env = os.environ if environ is None else environ
    backend = env.get(ENV_BACKEND, "").strip()
    base_url = env.get(ENV_BASE_URL, "").strip()
    model = env.get(ENV_MODEL, "").strip()
    key_env = env.get(ENV_API_KEY_ENV, "").strip()
    if not (backend or base_url or model):
        return None
    backend = backend or "openai"
    options: dict[str, str] = {}
    if model:
        options["model"] = model
    if backend == "openai":
        if base_url:
            options["base_url"] = base_url
        if key_env:
            options["api_key_env"] = key_env
    return LLMConfig(backend=backend, options=options)
