"""The OpenAI-compatible backend over real HTTP against a local stub server, the structured-output
path (parse, validate, repair), and ``novelcomic run --stage plan`` with the llm planner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.llm.base import Message
from novelcomic.llm.openai_backend import OpenAIBackend
from novelcomic.llm.structured import LLMOutputError, StructuredTrace, generate_structured
from novelcomic.models import Storyboard
from novelcomic.plan.llm_planner import ChunkAnalysis
from tests.helpers import copy_example
from tests.llm_stub import LLMStub, closed_port_url, llm_stub  # noqa: F401 - fixture

ASK = [Message("system", "You storyboard novels."), Message("user", "阿青说：“你好。”")]


def backend(stub: LLMStub, **kw: object) -> OpenAIBackend:
    opts = {"base_url": stub.url, "model": "stub", "retries": 2, "backoff": 0.01, "timeout": 5.0, **kw}
    return OpenAIBackend(**opts)  # type: ignore[arg-type]


def test_valid_json_accepted_with_schema_request(llm_stub: LLMStub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUB_KEY", "sk-test-123")
    llm_stub.reply_file("fenced-trailing-comma")  # fenced, prose around it, a trailing comma
    trace = StructuredTrace()
    result = generate_structured(backend(llm_stub, api_key_env="STUB_KEY"), ASK, ChunkAnalysis, trace=trace)
    assert result.characters[0].name == "阿青"
    assert result.scenes[0].shots[0].lines[0].text == "你好。"
    assert trace.attempts == 1 and trace.repairs == 0
    req = llm_stub.requests[0]
    assert req["model"] == "stub"
    assert req["response_format"]["type"] == "json_schema"
    assert req["response_format"]["json_schema"]["schema"]["title"] == "ChunkAnalysis"
    assert req["response_format"]["json_schema"]["strict"] is False
    assert llm_stub.headers[0]["Authorization"] == "Bearer sk-test-123"  # read from the env var named in the config


def test_malformed_json_repaired(llm_stub: LLMStub) -> None:
    llm_stub.reply_file("truncated-json")
    llm_stub.reply_file("small-valid")
    trace = StructuredTrace()
    result = generate_structured(backend(llm_stub), ASK, ChunkAnalysis, trace=trace, what="test")
    assert result.scenes[0].shots[0].characters == ["阿青"]
    assert trace.attempts == 2 and trace.summary() == "test: repaired after 1 retry"
    repair = llm_stub.contents(1)
    bad = json.loads((Path(__file__).parent / "data/llm/truncated-json.json").read_text())["choices"][0]["message"]["content"]
    assert bad in repair  # the model is shown its own output
    assert "invalid JSON" in repair[-1] and "line 1 column" in repair[-1]


def test_schema_violation_repaired_with_field_paths(llm_stub: LLMStub) -> None:
    llm_stub.reply_file("schema-violation")
    llm_stub.reply_file("small-valid")
    result = generate_structured(backend(llm_stub), ASK, ChunkAnalysis)
    assert result.scenes[0].shots[0].size == "medium"
    errors = llm_stub.contents(1)[-1]
    assert "scenes.0.shots.0.size" in errors and "giant" in errors
    assert "scenes.0.shots.0.lines.1.text" in errors


def test_gives_up_after_attempts_with_last_errors(llm_stub: LLMStub) -> None:
    for _ in range(3):
        llm_stub.reply_file("schema-violation")
    with pytest.raises(LLMOutputError) as info:
        generate_structured(backend(llm_stub), ASK, ChunkAnalysis, attempts=3, what="chapter 01")
    assert len(llm_stub.requests) == 3
    assert info.value.attempts == 3 and any("shots.0.size" in e for e in info.value.errors)
    assert "chapter 01" in str(info.value) and "after 3 attempts" in str(info.value)
    assert isinstance(info.value, BackendError)


def test_500_retried_then_succeeds_and_then_clear_error(llm_stub: LLMStub) -> None:
    llm_stub.error(500, "overloaded")
    llm_stub.error(429, "slow down")
    llm_stub.reply("plain answer")
    assert backend(llm_stub).complete(ASK) == "plain answer"
    assert len(llm_stub.requests) == 3
    for _ in range(3):
        llm_stub.error(503, "model is loading")
    with pytest.raises(BackendError) as info:
        backend(llm_stub).complete(ASK)
    msg = str(info.value)
    assert llm_stub.url + "/chat/completions" in msg and "HTTP 503" in msg and "model is loading" in msg
    assert len(llm_stub.requests) == 6


def test_timeout_retried_then_clear_error(llm_stub: LLMStub) -> None:
    llm_stub.hang(1.0)
    llm_stub.hang(1.0)
    t0 = time.monotonic()
    with pytest.raises(BackendError) as info:
        backend(llm_stub, timeout=0.3, retries=1).complete(ASK)
    assert time.monotonic() - t0 < 3
    assert "timed out after 0.3 s" in str(info.value) and "2 attempts" in str(info.value)
    assert len(llm_stub.requests) == 2


def test_response_format_rejected_falls_back_and_remembers(llm_stub: LLMStub) -> None:
    llm_stub.reject_formats = {"json_schema"}
    llm_stub.reply_file("small-valid")
    llm_stub.reply_file("small-valid")
    llm = backend(llm_stub)
    generate_structured(llm, ASK, ChunkAnalysis)
    assert [r.get("response_format", {}).get("type") for r in llm_stub.requests] == ["json_schema", "json_object"]
    assert llm.json_mode == "object"
    generate_structured(llm, ASK, ChunkAnalysis)  # remembered: no second rejection
    assert llm_stub.requests[2]["response_format"]["type"] == "json_object"
    llm_stub.reject_formats = {"json_schema", "json_object"}
    llm_stub.reply_file("small-valid")
    other = backend(llm_stub)
    generate_structured(other, ASK, ChunkAnalysis)
    assert "response_format" not in llm_stub.requests[-1] and other.json_mode == "none"
    # With no response_format at all the schema still reaches the model, in the prompt.
    assert "ChunkAnalysis" in llm_stub.contents(len(llm_stub.requests) - 1)[-1]


def test_server_down_names_url() -> None:
    url = closed_port_url()
    llm = OpenAIBackend(base_url=url, model="m", retries=1, backoff=0.01)
    with pytest.raises(BackendError) as info:
        llm.complete(ASK)
    assert f"cannot reach LLM server at {url}/chat/completions" in str(info.value)


def test_a_server_found_down_is_not_waited_on_again_until_the_reprobe(llm_stub: LLMStub) -> None:
    """Prefect gives every shot its own backend: once one found the server down, the others fail at
    once (no retries, no backoff) until a probe a minute later; an answer clears it."""
    from novelcomic.llm import openai_backend

    now = [1000.0]
    memory = openai_backend.forget_unreachable(clock=lambda: now[0])
    llm_stub.hang(1.0)
    llm_stub.hang(1.0)
    with pytest.raises(BackendError, match="timed out"):
        backend(llm_stub, timeout=0.2, retries=1).complete(ASK)
    assert len(llm_stub.requests) == 2
    with pytest.raises(BackendError, match="did not answer earlier in this run .*timed out"):
        backend(llm_stub, timeout=0.2, retries=1).complete(ASK)  # another instance: no request made
    assert len(llm_stub.requests) == 2
    now[0] += openai_backend.REPROBE_SECONDS
    llm_stub.reply_file("small-valid")
    generate_structured(backend(llm_stub), ASK, ChunkAnalysis)  # the probe gets an answer: up again
    llm_stub.reply_file("small-valid")
    generate_structured(backend(llm_stub), ASK, ChunkAnalysis)  # and every call goes through
    assert len(llm_stub.requests) == 4 and memory is openai_backend.UNREACHABLE


def test_bad_options_are_named() -> None:
    with pytest.raises(NovelcomicError, match="model"):
        OpenAIBackend(base_url="http://localhost:1/v1")
    with pytest.raises(NovelcomicError, match="json_mode 'xml'"):
        OpenAIBackend(model="m", json_mode="xml")  # type: ignore[arg-type]
    with pytest.raises(NovelcomicError, match="base_url 'localhost:11434'"):
        OpenAIBackend(base_url="localhost:11434", model="m")


# --------------------------------------------------------------------------- the CLI, end to end


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NOVELCOMIC_PROJECTS_DIR": str(root)}
    return subprocess.run([sys.executable, "-m", "novelcomic", *args], capture_output=True, text=True, env=env, timeout=120)


def _use_llm(project: Path, url: str) -> None:
    cfg_path = project / "project.yaml"
    data = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    data.setdefault("stages", {})["plan"] = {"backend": "llm"}
    data["llm"] = {"backend": "openai", "options": {"base_url": url, "model": "stub", "retries": 1, "backoff": 0.01}}
    cfg_path.write_text(yaml.dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_cli_plan_with_llm_writes_storyboards(llm_stub: LLMStub, root: Path) -> None:
    project = copy_example("lantern-fox", root)
    _use_llm(project, llm_stub.url)
    for n in (1, 2, 3):
        llm_stub.reply_file(f"lantern-fox-0{n}")
    r = _cli(root, "run", "lantern-fox", "--stage", "plan", "--no-prefect")
    assert r.returncode == 0, r.stderr
    assert len(llm_stub.requests) == 3
    assert "桃溪村坐落在青山脚下" in llm_stub.contents(0)[1] and "山顶的石台上，放着一盏" in llm_stub.contents(2)[1]
    chars = yaml.safe_load((project / "characters.yaml").read_text(encoding="utf-8"))["characters"]
    by_name = {c["name"]: c for c in chars}
    assert set(by_name) == {"林小雨", "阿青", "老渔夫", "阿银"}  # 小雨, 陈伯, 白狐 merged as aliases
    assert "陈伯" in by_name["老渔夫"]["aliases"] and "白狐" in by_name["阿银"]["aliases"]
    ids = {c["name"]: c["id"] for c in chars}
    for ch in ("01", "02", "03"):
        sb = Storyboard.model_validate(yaml.safe_load((project / "storyboards" / f"{ch}.yaml").read_text(encoding="utf-8")))
        assert sb.shots(), ch
        for _, shot in sb.shots():
            for line in shot.lines:
                assert line.speaker == "narrator" or line.speaker in ids.values()
    sb3 = yaml.safe_load((project / "storyboards" / "03.yaml").read_text(encoding="utf-8"))
    last = sb3["scenes"][1]["shots"][0]["lines"]
    assert last[0]["speaker"] == ids["老渔夫"] and last[1]["speaker"] == ids["林小雨"]
    assert [s["id"] for s in sb3["scenes"]] == ["s01", "s02"] and sb3["scenes"][1]["shots"][1]["id"] == "s02-02"


def test_cli_plan_server_down_one_line_error_nothing_written(root: Path) -> None:
    project = copy_example("lantern-fox", root)
    url = closed_port_url()
    _use_llm(project, url)
    r = _cli(root, "run", "lantern-fox", "--stage", "plan", "--no-prefect")
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and url in lines[0], r.stderr
    assert not (project / "storyboards").exists() or not any((project / "storyboards").iterdir())
    for name in ("characters.yaml", "props.yaml", "locations.yaml"):
        assert not (project / name).exists()


def test_a_key_written_into_project_yaml_is_refused_with_the_way_to_do_it() -> None:
    from novelcomic.errors import NovelcomicError
    from novelcomic.llm.openai_backend import OpenAIBackend

    with pytest.raises(NovelcomicError, match=r"^llm.options.api_key: .*api_key_env"):
        OpenAIBackend(model="m", api_key="sk-secret")
