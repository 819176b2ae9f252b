"""Models per role from the run-time context (no server: the model list is faked)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from autoact.graph.context import GroupContext, ReactContext
from autoact.graph.models import ModelResolver
from autoact.settings import Settings
from graph_fakes import scripted

URL = "http://127.0.0.1:9/v1"


@pytest.fixture
def served(monkeypatch):
    names = ["base", "plan", "plan-v2"]
    calls = []

    def list_models(url, timeout=5.0):
        calls.append(url)
        return list(names)

    monkeypatch.setattr("autoact.serving.vllm_server.list_models", list_models)
    return calls


def test_roles_get_their_adapter_or_the_base(served):
    resolver = ModelResolver(settings=Settings())
    context = GroupContext(base_url=URL)
    assert resolver.get("plan", context).model_name == "plan"
    assert resolver.get("tool", context).model_name == "base"  # no 'tool' adapter served
    assert resolver.get("meta", ReactContext(base_url=URL)).model_name == "base"
    assert served == [URL]  # the model list is fetched once and cached


def test_the_context_names_a_served_model(served):
    resolver = ModelResolver(settings=Settings())
    assert resolver.get("plan", GroupContext(base_url=URL, plan_model="plan-v2")).model_name == "plan-v2"
    with pytest.raises(ValueError, match="tool-v9.*serves"):
        resolver.get("tool", GroupContext(base_url=URL, tool_model="tool-v9"))


def test_sampling_comes_from_the_context_else_the_settings(served):
    settings = Settings(sampling={"temperature": 0.0, "max_tokens": 64, "seed": 3})
    resolver = ModelResolver(settings=settings)
    default = resolver.get("meta", ReactContext(base_url=URL))
    assert (default.temperature, default.max_tokens, default.seed) == (0.0, 64, 3)
    sampled = resolver.get("meta", ReactContext(base_url=URL, temperature=0.7, max_tokens=32, seed=11))
    assert (sampled.temperature, sampled.max_tokens, sampled.seed) == (0.7, 32, 11)
    assert resolver.get("meta", ReactContext(base_url=URL)) is default  # clients are cached per setting


def test_the_endpoint_falls_back_to_the_settings(served):
    resolver = ModelResolver(settings=Settings(server={"base_url": URL + "/"}))
    assert resolver.get("plan", GroupContext()).openai_api_base == URL


def test_injected_models_are_used_as_given():
    plan = scripted()
    resolver = ModelResolver({"plan": plan})
    assert resolver.get("plan", GroupContext()) is plan
    with pytest.raises(KeyError, match="tool"):
        resolver.get("tool", GroupContext())
    assert resolver.call_kwargs("plan", GroupContext(), ["\n"], 99) == {"stop": ["\n"]}


def test_concurrent_episodes_share_one_client_and_one_model_list(monkeypatch):
    fetched = []

    def slow_list_models(url, timeout=5.0):
        fetched.append(url)
        time.sleep(0.05)  # every episode asks while the first fetch is under way
        return ["base"]

    monkeypatch.setattr("autoact.serving.vllm_server.list_models", slow_list_models)
    resolver = ModelResolver(settings=Settings())
    context = ReactContext(base_url=URL)
    assert not resolver.at_hand("meta", context)
    with ThreadPoolExecutor(8) as pool:
        clients = list(pool.map(lambda _: resolver.get_completion("meta", context), range(8)))
    assert fetched == [URL] and all(c is clients[0] for c in clients)
    assert resolver.at_hand("meta", context)
