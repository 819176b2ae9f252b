"""Masking: labels are -100 exactly on the prompt tokens, and the prompt is what inference sends."""

from __future__ import annotations

import pytest
from finetune_samples import PLAN_SYSTEM, plan_record, reflect_record, tool_record

from autoact.finetune.masking import (
    IGNORE_INDEX,
    MaskedCompletionCollator,
    TemplateMismatch,
    encode_example,
    encode_records,
    split_prompt_target,
)


@pytest.fixture(scope="module")
def tokenizer():
    from autoact.modelhub import prepare_embedded_model
    from autoact.settings import Settings
    from autoact.finetune.train import load_tokenizer

    return load_tokenizer(str(prepare_embedded_model(Settings().home, "smollm2-135m")))


RECORDS = [plan_record(0), tool_record(1), reflect_record(2)]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r["agent"])
def test_labels_are_masked_exactly_on_the_prompt(tokenizer, record):
    messages = record["messages"]
    example = encode_example(tokenizer, messages)
    ids, labels = example["input_ids"], example["labels"]
    # the prompt as inference renders it: chat template + generation prompt
    prompt_text = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    n = len(prompt_ids)
    assert ids[:n] == prompt_ids
    assert labels[:n] == [IGNORE_INDEX] * n
    assert IGNORE_INDEX not in labels[n:]
    assert labels[n:] == ids[n:]
    assert example["prompt_length"] == n
    # the learned part is the target and the end-of-turn token, nothing after it
    assert ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids[n:-1]) == messages[-1]["content"]


def test_prompt_and_full_text_share_the_template(tokenizer):
    messages = plan_record(0)["messages"]
    prompt, completion = split_prompt_target(tokenizer, messages)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    assert prompt.endswith("<|im_start|>assistant\n")
    assert full.startswith(prompt + completion)
    assert completion == messages[-1]["content"] + tokenizer.eos_token
    assert full[len(prompt + completion):].strip() == ""  # only the template's trailing newline is dropped


def test_default_system_prompt_is_the_same_on_both_sides(tokenizer):
    # SmolLM2's template adds a system message when the first one is not; training sees it as inference does
    messages = [m for m in plan_record(0)["messages"] if m["role"] != "system"]
    example = encode_example(tokenizer, messages)
    prompt = tokenizer.decode(example["input_ids"][: example["prompt_length"]])
    assert prompt.startswith("<|im_start|>system\n")
    assert prompt == tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=False)


def test_boundary_merge_is_avoided(tokenizer):
    # a target starting with letters that could join the prompt's last token when tokenised together
    messages = [{"role": "user", "content": "Say it"}, {"role": "assistant", "content": "\n\nyes"}]
    example = encode_example(tokenizer, messages)
    n = example["prompt_length"]
    prompt_text = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=False)
    assert example["input_ids"][:n] == tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(example["input_ids"][n:]) == "\n\nyes" + tokenizer.eos_token


def test_too_long_records_lose_history_not_their_target(tokenizer):
    history = "\n".join(f"Thought: step {n}\nAction: Retrieve[Page {n}]\nObservation: {'word ' * 30}" for n in range(12))
    long = {"id": "long", "agent": "plan", "messages": [
        {"role": "system", "content": PLAN_SYSTEM},
        {"role": "user", "content": f"Question: Where was Ada born?\n{history}\nThought: last\nAction: Lookup[born]"},
        {"role": "assistant", "content": "Thought: The page says London.\nAction: Finish"}]}
    unfit = {"id": "unfit", "agent": "plan", "messages": [
        {"role": "user", "content": "word " * 400}, plan_record(0)["messages"][-1]]}
    dataset, skipped = encode_records(tokenizer, [plan_record(1), long, unfit], max_length=256, progress=False)
    # a record with no history lines to drop still cannot fit: counted, never silently lost
    assert skipped == ["unfit"] and dataset.truncated_ids == ["long"] and len(dataset) == 2
    example = encode_example(tokenizer, long, max_length=256)
    assert len(example["input_ids"]) <= 256 and example["truncated"] > 0
    text = tokenizer.decode(example["input_ids"])
    assert PLAN_SYSTEM in text and "Question: Where was Ada born?" in text  # the task prompt stays
    assert "[earlier steps omitted]" in text and "step 0" not in text and "step 11" in text  # oldest go first
    assert text.endswith("Thought: The page says London.\nAction: Finish" + tokenizer.eos_token)  # the target stays
    assert encode_example(tokenizer, unfit["messages"], max_length=256) is None


def test_transcript_records_are_encoded_as_the_completions_endpoint_sees_them(tokenizer):
    prompt = "Answer the question.\n\nQuestion: Where was Ada born?\nThought: I need Ada.\nAction: Retrieve["
    record = {"id": "t", "agent": "tool", "format": "transcript", "prompt": prompt, "completion": "Ada Lovelace]"}
    example = encode_example(tokenizer, record)
    n = example["prompt_length"]
    assert example["input_ids"][:n] == tokenizer(prompt)["input_ids"]  # no chat template
    assert example["labels"][:n] == [IGNORE_INDEX] * n
    assert tokenizer.decode(example["input_ids"][n:]) == "Ada Lovelace]" + tokenizer.eos_token
    # too long: the oldest history lines go, the header, the question and the opening stay
    steps = "\n".join(f"Thought: step {k}\nAction: Retrieve[Page {k}]\nObservation: {'word ' * 30}" for k in range(10))
    long = {**record, "prompt": f"Answer the question.\n\nQuestion: Where was Ada born?\n{steps}\n"
                                "Thought: I need Ada.\nAction: Retrieve["}
    cut = encode_example(tokenizer, long, max_length=200)
    text = tokenizer.decode(cut["input_ids"])
    assert len(cut["input_ids"]) <= 200 and cut["truncated"] > 0
    assert text.startswith("Answer the question.\n\nQuestion: Where was Ada born?\n[earlier steps omitted]\n")
    assert text.endswith("Thought: I need Ada.\nAction: Retrieve[Ada Lovelace]" + tokenizer.eos_token)


def test_a_template_that_changes_the_prompt_is_refused(tokenizer):
    class Rewriting:
        chat_template = "x"
        eos_token = "<|im_end|>"

        def apply_chat_template(self, messages, add_generation_prompt=False, tokenize=False):
            # the generation prompt differs from how an assistant turn is rendered
            text = "".join(f"<{m['role']}>{m['content']}" for m in messages)
            return text + ("<answer>" if add_generation_prompt else "")

    with pytest.raises(TemplateMismatch, match="differently"):
        split_prompt_target(Rewriting(), plan_record(0)["messages"])

    class NoTemplate:
        chat_template = None

    with pytest.raises(TemplateMismatch, match="no chat template"):
        split_prompt_target(NoTemplate(), plan_record(0)["messages"])


def test_collator_pads_ids_labels_and_mask():
    collate = MaskedCompletionCollator(pad_token_id=2)
    batch = collate([
        {"input_ids": [5, 6, 7], "labels": [-100, 6, 7]},
        {"input_ids": [5, 6, 7, 8, 9], "labels": [-100, -100, 7, 8, 9]},
    ])
    assert batch["input_ids"].tolist() == [[5, 6, 7, 2, 2], [5, 6, 7, 8, 9]]
    assert batch["labels"].tolist() == [[-100, 6, 7, -100, -100], [-100, -100, 7, 8, 9]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    padded = MaskedCompletionCollator(pad_token_id=0, pad_to_multiple_of=4)([{"input_ids": [1], "labels": [1]}])
    assert padded["input_ids"].shape == (1, 4)


def test_target_logits_mask_and_labels():
    collate = MaskedCompletionCollator(pad_token_id=2, target_logits_only=True)
    batch = collate([
        {"input_ids": [5, 6, 7], "labels": [-100, 6, 7]},
        {"input_ids": [5, 6, 7, 8, 9], "labels": [-100, -100, -100, 8, 9]},
    ])
    # position t is kept when it predicts a target token t + 1
    assert batch["logits_to_keep"].tolist() == [
        [True, True, False, False, False],
        [False, False, True, True, False],
    ]
    assert batch["shift_labels"].tolist() == [6, 7, 8, 9]
    assert batch["labels"].tolist()[1] == [-100, -100, -100, 8, 9]  # the labels themselves are unchanged


@pytest.mark.slow
def test_target_logits_give_the_same_loss_and_gradients(tokenizer):
    import torch

    from autoact.finetune.config import FinetuneConfig
    from autoact.finetune.train import load_peft_model

    from autoact.modelhub import prepare_embedded_model
    from autoact.settings import Settings

    torch.manual_seed(0)
    model = load_peft_model(str(prepare_embedded_model(Settings().home, "smollm2-135m")), FinetuneConfig(lora_dropout=0.0))
    # B = 0 at init would give zero gradients for A: perturb it so both are compared
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.01)
    features = [encode_example(tokenizer, r["messages"]) for r in (plan_record(0), reflect_record(1))]
    results = []
    for only in (False, True):
        model.zero_grad()
        batch = MaskedCompletionCollator(tokenizer.pad_token_id, target_logits_only=only)(features)
        loss = model(**batch).loss
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
        results.append((loss.item(), grads))
    (full_loss, full_grads), (kept_loss, kept_grads) = results
    assert kept_loss == pytest.approx(full_loss, rel=1e-5)
    for a, b in zip(full_grads, kept_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)
