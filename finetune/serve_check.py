"""After training: have vLLM serve the new adapters by name and ask each one prompt.

The adapters are hot-loaded into the server ``autoact serve`` runs (or the endpoint
in ``server.base_url``) when it is LoRA-enabled; otherwise a server is started with
them for the check and stopped afterwards.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import httpx

from autoact.finetune.records import ONE_AGENT, agent_data_file, is_transcript, read_jsonl
from autoact.serving.client import chat_model, completion_model, endpoint_file, write_endpoint
from autoact.serving.endpoint import auth_headers
from autoact.serving.vllm_server import ServerError, VLLMServer, list_models
from autoact.settings import RAW_BASE_NAME, ROLES, Settings

log = logging.getLogger(__name__)


@dataclass
class CheckAnswer:
    adapter: str
    record_id: str
    question: str
    target: str
    answer: str

    @property
    def exact(self) -> bool:
        return self.answer.strip() == self.target.strip()


def check_prompts(run_dir: Path, names: list[str]) -> dict[str, dict]:
    """One record per adapter from its own data (the one-agent adapter takes a plan record)."""
    prompts = {}
    for name in names:
        agent = "plan" if name == ONE_AGENT else name
        prompts[name] = read_jsonl(agent_data_file(run_dir, agent), require_agent=agent)[0]
    return prompts


def recorded_endpoint(settings: Settings) -> str | None:
    """The endpoint to hot-load into: server.base_url, else the one ``autoact serve`` recorded."""
    if settings.server.base_url:
        return settings.server.base_url.rstrip("/")
    path = endpoint_file(settings)
    if path.is_file():
        try:
            return json.loads(path.read_text())["base_url"].rstrip("/")
        except (ValueError, KeyError):
            log.warning("ignoring unreadable endpoint record %s", path)
    return None


def hot_load(server: VLLMServer, name: str, path: Path) -> None:
    """Load (or replace) adapter ``name`` in a running LoRA-enabled server."""
    assert server.base_url
    if name in list_models(server.base_url):
        # vLLM refuses to load a name twice; an older adapter of that name is unloaded first
        response = httpx.post(server.base_url + "/unload_lora_adapter", json={"lora_name": name}, headers=auth_headers(), timeout=60)
        if response.status_code >= 400:
            raise ServerError(f"could not unload the old adapter {name!r}: {response.status_code} {response.text[:200]}")
    server.load_adapter(name, Path(path).resolve())


def _record_adapters(settings: Settings, adapters: dict[str, Path]) -> None:
    """Add hot-loaded adapters to the endpoint record of ``autoact serve``."""
    path = endpoint_file(settings)
    if not path.is_file():
        return
    info = json.loads(path.read_text())
    info.setdefault("adapters", {}).update({k: str(Path(v).resolve()) for k, v in adapters.items()})
    write_endpoint(settings, info)


def ask_adapters(settings: Settings, base_url: str, prompts: dict[str, dict], max_tokens: int = 64) -> list[CheckAnswer]:
    """Greedy answer of each adapter to its record's prompt, through the role's chat model."""
    from langchain_core.messages import convert_to_messages


    served = list_models(base_url)
    answers = []
    for name, record in prompts.items():
        role = name if name in ROLES else "meta"
        if is_transcript(record):  # the completions endpoint, as the graphs send transcripts
            llm = completion_model(role, settings, base_url, served, temperature=0.0, max_tokens=max_tokens, stop=[])
            if llm.model_name != name:
                llm = llm.model_copy(update={"model_name": name})
            reply = llm.invoke(record["prompt"])
            question = record["prompt"].rpartition("\nQuestion: ")[2].split("\n", 1)[0]
            answers.append(CheckAnswer(name, record.get("id", "?"), question, record["completion"], str(reply)))
            continue
        llm = chat_model(role, settings, base_url, served, temperature=0.0, max_tokens=max_tokens, stop=[])
        if llm.model_name != name:  # an adapter that is no role's (e.g. one-agent)
            llm = llm.model_copy(update={"model_name": name})
        messages = record["messages"]
        reply = llm.invoke(convert_to_messages([(m["role"], m["content"]) for m in messages[:-1]]))
        question = next((m["content"] for m in messages if m["role"] == "user"), "")
        answers.append(CheckAnswer(name, record.get("id", "?"), question, messages[-1]["content"], str(reply.content)))
    return answers


def serve_check(settings: Settings, model_path: str, adapters: dict[str, Path], prompts: dict[str, dict],
                max_tokens: int = 64) -> list[CheckAnswer]:
    """Serve ``adapters`` by name and ask each its prompt; stops any server it started."""
    url = recorded_endpoint(settings)
    if url:
        try:
            served = list_models(url)
        except ServerError as exc:
            if settings.server.base_url:  # named explicitly: never replaced silently
                raise
            log.info("recorded endpoint not reachable (%s); starting a server", exc)
            served = None
        if served is not None and RAW_BASE_NAME in served:  # LoRA enabled: hot-load
            server = VLLMServer(settings, model_path, base_url=url)
            for name, path in adapters.items():
                hot_load(server, name, path)
            if not settings.server.base_url:
                _record_adapters(settings, adapters)
            print(f"[serve-check] hot-loaded {sorted(adapters)} into {url}", flush=True)
            return ask_adapters(settings, url, prompts, max_tokens)
        if served is not None:
            print(f"[serve-check] the server at {url} runs without LoRA (restart it with `autoact serve --run RUN` "
                  "to serve the adapters); starting a separate server for the check", flush=True)
    server = VLLMServer(settings, model_path, adapters=dict(adapters))
    server.start()
    try:
        print(f"[serve-check] started vLLM at {server.base_url} with {sorted(adapters)}", flush=True)
        return ask_adapters(settings, server.base_url, prompts, max_tokens)
    finally:
        server.stop()


def print_answers(answers: list[CheckAnswer]) -> None:
    for a in answers:
        mark = "exact" if a.exact else "differs"
        print(f"[serve-check] {a.adapter} ({a.record_id}, {mark})\n  target: {a.target!r}\n  answer: {a.answer!r}",
              flush=True)
