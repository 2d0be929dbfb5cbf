"""The transformers backend on a tiny random model built here (no downloads): the project's own
loading and generation code runs for real; the model's garbage must end in LLMOutputError, and the
planner must fall back to the heuristic planner for that chapter."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.llm.base import Message
from novelcomic.llm.structured import LLMOutputError, StructuredTrace, generate_structured, schema_instruction
from novelcomic.llm.transformers_backend import TransformersBackend, load_model
from novelcomic.models import LLMConfig, ProjectConfig
from novelcomic.plan.base import ChapterText, PlanRequest
from novelcomic.plan.llm_planner import SYSTEM_PROMPT, ChunkAnalysis, LLMPlanner
from novelcomic.registry import llms

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
TEXT = "林小雨说：“阿青，今晚我们一起去看灯会吧！”\n阿青问道：“你的灯笼点亮了吗？”\n河水在月光下闪着银光。"


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama and a byte-level BPE tokenizer with a chat template, saved to disk."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny-llm")
    corpus = [SYSTEM_PROMPT, schema_instruction(ChunkAnalysis), TEXT, "Your answer is not valid", '{"scenes": []}'] * 3
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=1500, special_tokens=specials,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(out)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=16384,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    LlamaForCausalLM(cfg).save_pretrained(out)
    return out


def test_loads_from_directory_and_generates(tiny_model_dir: Path) -> None:
    llm = TransformersBackend(model=str(tiny_model_dir), max_new_tokens=8)
    assert llm.context_tokens == 16384  # from the model's config
    before = load_model.cache_info().currsize
    out = llm.complete([Message("user", "你好")], temperature=0)
    assert isinstance(out, str) and "<|user|>" not in out and "你好" not in out  # only the new tokens
    again = TransformersBackend(model=str(tiny_model_dir), max_new_tokens=8)
    assert again.complete([Message("user", "你好")], temperature=0) == out  # greedy: same answer
    assert load_model.cache_info().currsize <= before + 1  # one copy shared by both backends
    loaded = load_model(str(tiny_model_dir), "cpu", "float32", False)
    assert next(loaded.model.parameters()).dtype.__str__() == "torch.float32"  # auto on CPU → fp32


def test_garbage_output_raises_after_attempts(tiny_model_dir: Path) -> None:
    llm = TransformersBackend(model=str(tiny_model_dir), max_new_tokens=12)
    trace = StructuredTrace()
    with pytest.raises(LLMOutputError) as info:
        generate_structured(llm, [Message("user", TEXT)], ChunkAnalysis, attempts=2, temperature=0, trace=trace)
    assert trace.attempts == 2 and len(trace.outputs) == 2
    assert info.value.attempts == 2 and info.value.errors


def test_planner_records_failure_and_falls_back(tiny_model_dir: Path) -> None:
    cfg = ProjectConfig(title="t", llm=LLMConfig(backend="transformers", options={"model": str(tiny_model_dir), "max_new_tokens": 12}),
                        chapters=[{"id": "01"}])
    planner = LLMPlanner(attempts=2, temperature=0)
    result = planner.plan(PlanRequest(cfg, [ChapterText("01", "第一章", TEXT)]))
    assert [f.chapter for f in planner.failures] == ["01"]
    assert any(w.startswith("chapter 01:") and "heuristic planner" in w for w in result.warnings)
    lines = [ln.text for _, s in result.storyboards["01"].shots() for ln in s.lines]
    assert "你的灯笼点亮了吗？" in lines  # planned from the text by the heuristic planner
    assert {c.name for c in result.characters.characters} >= {"林小雨", "阿青"}


class _Mood(BaseModel):
    """A small schema a random model can finish within a few dozen tokens."""

    mood: Literal["calm", "tense", "sad"]
    name: str = Field(max_length=4)
    night: bool
    # every field bounded, so that the answer always fits in max_new_tokens (outlines enforces types,
    # enums and string lengths, but not numeric ranges: a random model may write a 40-digit integer)


def test_constrained_decoding_answers_in_the_schema(tiny_model_dir: Path) -> None:
    """With outlines, even a random model's answer is valid on the first attempt (the same model
    without constraints produces garbage: test_garbage_output_raises_after_attempts)."""
    pytest.importorskip("outlines", reason="installed by the test extras (novelcomic[constrained])")
    free = TransformersBackend(model=str(tiny_model_dir), max_new_tokens=60)
    with pytest.raises(LLMOutputError):
        generate_structured(free, [Message("user", TEXT)], _Mood, attempts=1, temperature=0, include_schema=False)
    llm = TransformersBackend(model=str(tiny_model_dir), max_new_tokens=120, constrained=True)
    trace = StructuredTrace()
    answer = generate_structured(llm, [Message("user", TEXT)], _Mood, attempts=1, temperature=0, include_schema=False, trace=trace)
    assert trace.attempts == 1
    assert answer.mood in ("calm", "tense", "sad") and len(answer.name) <= 4 and isinstance(answer.night, bool)
    raw = json.loads(trace.outputs[0])
    assert set(raw) == {"mood", "name", "night"}  # nothing outside the schema


def test_scripted_llm_with_valid_json_is_accepted() -> None:
    answer = {"characters": [{"name": "林小雨", "aliases": ["小雨"]}, {"name": "阿青"}],
              "scenes": [{"mood": "calm", "shots": [
                  {"characters": ["林小雨"], "lines": [{"speaker": "小雨", "text": "阿青，今晚我们一起去看灯会吧！"}]},
                  {"characters": ["阿青"], "lines": [{"speaker": "阿青", "text": "你的灯笼点亮了吗？"}]}]}]}

    class Scripted:
        name = "scripted"
        context_tokens = 4096

        def __init__(self, **options: object) -> None:
            pass

        def complete(self, messages, *, json_schema=None, temperature=0.2, max_tokens=None):  # type: ignore[no-untyped-def]
            return json.dumps(answer, ensure_ascii=False)

    cfg = ProjectConfig(title="t", llm=LLMConfig(backend="scripted"), chapters=[{"id": "01"}])
    with llms.override("scripted", Scripted):
        planner = LLMPlanner()
        result = planner.plan(PlanRequest(cfg, [ChapterText("01", "", TEXT)]))
    assert not planner.failures and not result.warnings
    assert [ln.speaker for _, s in result.storyboards["01"].shots() for ln in s.lines] == ["c01", "c02"]


def test_missing_model_and_options_are_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(BackendError, match=f"^llm.options.model: LLM model directory {missing} does not exist"):
        TransformersBackend(model=str(missing)).complete([Message("user", "hi")])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)  # read at import; this machine is offline anyway
    with pytest.raises(BackendError, match="cannot load LLM model nobody-xyz/not-a-model"):
        TransformersBackend(model="nobody-xyz/not-a-model").complete([Message("user", "hi")])
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "outlines" else real_find_spec(name, *a))
    with pytest.raises(NovelcomicError, match="pip install outlines"):
        TransformersBackend(model=str(missing), constrained=True)
    with pytest.raises(NovelcomicError, match="dtype 'fp8'"):
        TransformersBackend(model=str(missing), dtype="fp8")
    with pytest.raises(NovelcomicError, match="device 'tpu'"):
        TransformersBackend(model=str(missing), device="tpu")
