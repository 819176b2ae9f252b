"""Round trip: a training record, a few steps of LoRA training, the adapter served by
the real vLLM server. The served adapter must produce the record's target for the
record's prompt (the base does not), which holds only if training and inference see
the same prompt format. Also: the serve check, hot-loading and the CLI end to end.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import httpx
import pytest
from finetune_samples import write_jsonl, write_run

from autoact.finetune.config import FinetuneConfig
from autoact.finetune.masking import encode_example
from autoact.finetune.serve_check import serve_check
from autoact.finetune.train import finetune_run, load_tokenizer
from autoact.prompts.records import training_records
from autoact.serving.client import chat_model
from autoact.serving.vllm_server import ServerError, VLLMServer, list_models
from autoact.settings import BASE_MODEL_NAME, Settings

pytestmark = pytest.mark.slow


def step3_record() -> dict:
    """A plan record cut from a trajectory by the synthesis step's record builder.

    The builder module is where the training prompts come from.
    """
    tools = [
        {"name": "Retrieve", "description": "Retrieve the page of an entity from the corpus.", "usage": "Retrieve[entity]"},
        {"name": "Lookup", "description": "The next sentence with the keyword in the last page.", "usage": "Lookup[keyword]"},
    ]
    trajectory = [
        {"thought": "I need the birthplace of Ada Lovelace.", "action": "Retrieve", "argument": "Ada Lovelace",
         "observation": "Ada Lovelace was an English mathematician, born in London."},
        {"thought": "Ada Lovelace was born in London.", "action": "Finish", "argument": "London",
         "observation": "Episode finished."},
    ]
    records = training_records(
        trajectory, "Answer questions about people and places.", tools, "Where was Ada Lovelace born?",
        [{"thought": "The observation says she was born in London.", "verdict": "right"}], record_id="demo-0",
        prompt_format="chat",
    )
    return records["plan"][1]  # the second step: its prompt holds a history with an observation


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = re.findall(r"\w+", prediction.lower()), re.findall(r"\w+", gold.lower())
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, embedded_model):
    record = step3_record()
    run = tmp_path_factory.mktemp("roundtrip")
    write_jsonl(run / "data" / "plan.jsonl", [record])
    # a tiny data set of one record, a high learning rate: a few dozen steps memorise it
    config = FinetuneConfig(learning_rate=1e-3, max_steps=24, batch_size=1, warmup_ratio=0.0, lora_dropout=0.0,
                            logging_steps=4, save_steps=1000, threads=1, progress=False)
    manifest = finetune_run(run, embedded_model, config, agents=["plan"])["plan"]
    return {"record": record, "adapter": run / "adapters" / "plan", "manifest": manifest, "run": run}


def transcript_record() -> dict:
    """The second plan step of a trajectory as a transcript record (the default format)."""
    tools = [
        {"name": "Retrieve", "description": "Retrieve the page of an entity from the corpus.", "usage": "Retrieve[entity]"},
        {"name": "Lookup", "description": "The next sentence with the keyword in the last page.", "usage": "Lookup[keyword]"},
    ]
    trajectory = [
        {"thought": "I need the birthplace of Ada Lovelace.", "action": "Retrieve", "argument": "Ada Lovelace",
         "observation": "Ada Lovelace was an English mathematician, born in London."},
        {"thought": "Ada Lovelace was born in London.", "action": "Finish", "argument": "London", "observation": ""},
    ]
    records = training_records(trajectory, "Answer questions about people and places.", tools,
                               "Where was Ada Lovelace born?", record_id="demo-t")
    return records["plan"][1]


@pytest.fixture(scope="module")
def trained_transcript(tmp_path_factory, embedded_model):
    record = transcript_record()
    run = tmp_path_factory.mktemp("roundtrip-transcript")
    write_jsonl(run / "data" / "plan.jsonl", [record])
    config = FinetuneConfig(learning_rate=1e-3, max_steps=24, batch_size=1, warmup_ratio=0.0, lora_dropout=0.0,
                            logging_steps=4, save_steps=1000, threads=1, progress=False)
    finetune_run(run, embedded_model, config, agents=["plan"])
    return {"record": record, "adapter": run / "adapters" / "plan"}


@pytest.fixture(scope="module")
def server(trained, trained_transcript, real_settings, embedded_model):
    server = VLLMServer(real_settings, embedded_model,
                        adapters={"plan": trained["adapter"], "plan-t": trained_transcript["adapter"]})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def target_loss(model, tokenizer, messages) -> float:
    import torch

    example = encode_example(tokenizer, messages)
    with torch.no_grad():
        out = model(input_ids=torch.tensor([example["input_ids"]]), labels=torch.tensor([example["labels"]]))
    return float(out.loss)


def test_training_lowers_the_target_loss(trained, embedded_model):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(embedded_model)
    messages = trained["record"]["messages"]
    base = AutoModelForCausalLM.from_pretrained(embedded_model, dtype=torch.float32).eval()
    base_loss = target_loss(base, tokenizer, messages)
    tuned = PeftModel.from_pretrained(base, str(trained["adapter"])).eval()  # the saved adapter, reloaded
    tuned_loss = target_loss(tuned, tokenizer, messages)
    assert tuned_loss < 0.2 * base_loss, (base_loss, tuned_loss)
    curve = trained["manifest"]["result"]["loss_curve"]
    assert curve[-1]["loss"] < curve[0]["loss"]


def test_vllm_renders_the_prompt_into_the_training_prompt_ids(trained, server, embedded_model):
    tokenizer = load_tokenizer(embedded_model)
    messages = trained["record"]["messages"]
    example = encode_example(tokenizer, messages)
    root = server.base_url.rsplit("/v1", 1)[0]
    response = httpx.post(root + "/tokenize", json={
        "model": "plan", "messages": messages[:-1], "add_generation_prompt": True}, timeout=60)
    response.raise_for_status()
    assert response.json()["tokens"] == example["input_ids"][: example["prompt_length"]]


def test_served_adapter_produces_the_target_and_the_base_does_not(trained, server, real_settings, embedded_model):
    from langchain_core.messages import convert_to_messages

    messages = trained["record"]["messages"]
    prompt = convert_to_messages([(m["role"], m["content"]) for m in messages[:-1]])
    target = messages[-1]["content"]
    plan = chat_model("plan", real_settings, server.base_url, temperature=0.0, max_tokens=64, stop=[])
    base = chat_model("meta", real_settings, server.base_url, temperature=0.0, max_tokens=64, stop=[])
    assert (plan.model_name, base.model_name) == ("plan", BASE_MODEL_NAME)
    tuned_reply, base_reply = plan.invoke(prompt), base.invoke(prompt)
    tokenizer = load_tokenizer(embedded_model)
    example = encode_example(tokenizer, messages)
    assert tuned_reply.response_metadata["token_usage"]["prompt_tokens"] == example["prompt_length"]
    assert tuned_reply.content.strip() == target
    assert base_reply.content.strip() != target
    assert token_f1(tuned_reply.content, target) > token_f1(base_reply.content, target)


def test_serve_check_hot_loads_into_the_running_server(trained, server, real_settings, embedded_model, capsys):
    settings = real_settings.model_copy(
        update={"server": real_settings.server.model_copy(update={"base_url": server.base_url})}
    )
    adapters = {"plan": trained["adapter"], "plan-copy": trained["adapter"]}  # 'plan' is replaced in place
    prompts = {name: trained["record"] for name in adapters}
    answers = serve_check(settings, embedded_model, adapters, prompts)
    assert {a.adapter for a in answers} == {"plan", "plan-copy"}
    assert all(a.exact for a in answers), answers
    assert "hot-loaded" in capsys.readouterr().out
    assert {"plan", "plan-copy", BASE_MODEL_NAME} <= set(list_models(server.base_url))
    assert server.process is not None and server.process.poll() is None  # the check stops nothing it did not start


def test_serve_check_starts_and_stops_its_own_server(trained, real_settings, embedded_model, tmp_path, capsys):
    from autoact.serving.vllm_server import vllm_python

    home = tmp_path / "home"
    home.mkdir()
    # a record left by a server that is gone: the check must not trust it
    (home / "endpoint.json").write_text(json.dumps({"base_url": "http://127.0.0.1:9/v1", "pid": None}))
    settings = Settings(home=home, server={"python": vllm_python(real_settings)})
    answers = serve_check(settings, embedded_model, {"plan": trained["adapter"]},
                          {"plan": trained["record"]})
    assert [a.exact for a in answers] == [True]
    out = capsys.readouterr().out
    url = re.search(r"started vLLM at (\S+)", out).group(1)
    with pytest.raises(ServerError):
        list_models(url, timeout=2)


def test_cli_trains_three_adapters_and_checks_them_served(tmp_path, server, monkeypatch, capsys):
    from autoact.app.cli import main

    run = write_run(tmp_path / "run", per_agent=3)
    monkeypatch.setenv("AUTOACT_SERVER__BASE_URL", server.base_url)
    code = main(["finetune", "--run", str(run), "--max-steps", "2", "--batch-size", "2", "--threads", "1",
                 "--logging-steps", "1", "--no-progress", "--serve-check"])
    out = capsys.readouterr().out
    assert code == 0, out
    for name in ("plan", "tool", "reflect"):
        assert (run / "adapters" / name / "adapter_model.safetensors").is_file()
        assert re.search(rf"\[serve-check\] {name} \(demo-0-{name}", out), out
    assert {"plan", "tool", "reflect"} <= set(list_models(server.base_url))
    assert "hot-loaded ['plan', 'reflect', 'tool']" in out


def test_transcript_round_trip_on_the_completions_endpoint(trained_transcript, server, real_settings, embedded_model):
    from autoact.serving.client import completion_model

    record = trained_transcript["record"]
    tokenizer = load_tokenizer(embedded_model)
    example = encode_example(tokenizer, record)
    # vLLM tokenises the transcript prompt into exactly the ids the adapter was trained on
    root = server.base_url.rsplit("/v1", 1)[0]
    response = httpx.post(root + "/tokenize", json={"model": "plan-t", "prompt": record["prompt"]}, timeout=60)
    response.raise_for_status()
    assert response.json()["tokens"] == example["input_ids"][: example["prompt_length"]]
    tuned = completion_model("plan", real_settings, server.base_url, temperature=0.0, max_tokens=64)
    tuned = tuned.model_copy(update={"model_name": "plan-t"})
    base = completion_model("meta", real_settings, server.base_url, temperature=0.0, max_tokens=64)
    assert base.model_name == BASE_MODEL_NAME
    tuned_reply, base_reply = tuned.invoke(record["prompt"]), base.invoke(record["prompt"])
    assert tuned_reply == record["completion"]  # the target, then the end of text it was trained to write
    assert base_reply != record["completion"]
