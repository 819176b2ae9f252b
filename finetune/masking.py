"""Tokenisation with prompt masking, exactly as the model is used at inference.

At inference vLLM applies the tokenizer's chat template to the prompt messages with
``add_generation_prompt=True`` and the model generates the target, ending with the
end-of-turn token. A training example is therefore

    ids    = tokens(prompt_text) + tokens(target_text + end-of-turn)
    labels = [-100] * len(tokens(prompt_text)) + tokens(target_text + end-of-turn)

where ``prompt_text`` and the full text both come from the same chat template. The
prompt and the completion are tokenised separately and concatenated, so the prompt
ids are exactly those vLLM feeds the model (tokenising the full string at once can
merge tokens across the boundary). Whatever the template puts after the end-of-turn
token (SmolLM2's adds a newline) is never generated, so it is not trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IGNORE_INDEX = -100


class TemplateMismatch(ValueError):
    """The chat template renders a conversation that does not start with its prompt."""


def split_prompt_target(tokenizer: Any, messages: list[dict]) -> tuple[str, str]:
    """(prompt text, completion text) rendered by the tokenizer's chat template."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise TemplateMismatch("the tokenizer has no chat template; fine-tuning needs the one inference uses")
    prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full.startswith(prompt):
        raise TemplateMismatch(
            "the chat template renders the conversation differently from its prompt with the generation "
            f"prompt, so the prompt format at inference would not match training:\n{prompt!r}\nvs\n{full!r}"
        )
    completion = full[len(prompt):]
    eos = tokenizer.eos_token
    if eos and eos in completion:
        # keep the target and its end-of-turn token, drop what follows it
        completion = completion[: completion.rindex(eos) + len(eos)]
    return prompt, completion


#: The line that replaces history dropped from an over-long record.
OMITTED = "[earlier steps omitted]"


def shorten_history(text: str) -> str | None:
    """``text`` with the oldest history line of its episode dropped (the episode is
    what follows the last ``Question:`` line; the header before it and the lines the
    target continues stay). None when no history line is left to drop."""
    head, sep, episode = text.rpartition("\nQuestion:")
    if not sep:
        head, sep, episode = "", "", text
    first, newline, rest = episode.partition("\n")  # the question line
    lines = rest.split("\n")
    if lines and lines[0] == OMITTED:
        lines = lines[1:]
    # keep the last two lines: the agent's own opening (e.g. the thought and action it completes)
    if len(lines) <= 2:
        return None
    return f"{head}{sep}{first}\n" + "\n".join([OMITTED, *lines[1:]])


def _encode(tokenizer: Any, prompt: str, completion: str, special: bool) -> tuple[list[int], list[int]]:
    prompt_ids = tokenizer(prompt, add_special_tokens=special)["input_ids"]
    target_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    eos_id = tokenizer.eos_token_id
    if eos_id is not None and (not target_ids or target_ids[-1] != eos_id):
        target_ids = target_ids + [eos_id]  # a completion, or a template without an end-of-turn marker
    if len(target_ids) < 2:
        raise TemplateMismatch(f"the target {completion!r} tokenises to nothing")
    return prompt_ids, target_ids


def record_prompt_target(tokenizer: Any, record: dict) -> tuple[str, str, bool]:
    """(prompt text, target text, whether the prompt gets the tokenizer's special
    tokens): a transcript record as vLLM's ``/v1/completions`` tokenises it, a chat
    record through the chat template."""
    if "messages" in record and record.get("format") != "transcript":
        prompt, completion = split_prompt_target(tokenizer, record["messages"])
        return prompt, completion, False
    return record["prompt"], record["completion"], True


def encode_example(tokenizer: Any, record: dict | list[dict], max_length: int | None = None) -> dict | None:
    """``input_ids`` and ``labels`` of one record (a record, or a chat message list).

    A record longer than ``max_length`` loses its oldest history lines (a marker line
    says so; the header with the task and the lines the target continues are kept),
    never its target: the late steps and the reflection are the longest records, and
    dropping them would teach the agents only how episodes begin. ``truncated`` counts
    the lines dropped; None is returned only when even the shortest form is too long.
    """
    if isinstance(record, list):
        record = {"messages": record}
    if "messages" in record and record.get("format") != "transcript":
        # chat: the history lives in the last user message; it is shortened there
        return _encode_chat(tokenizer, record, max_length)
    prompt, completion, special = record_prompt_target(tokenizer, record)
    prompt_ids, target_ids = _encode(tokenizer, prompt, completion, special)
    dropped = 0
    while max_length is not None and len(prompt_ids) + len(target_ids) > max_length:
        shorter = shorten_history(prompt)
        if shorter is None:
            return None
        prompt, dropped = shorter, dropped + 1
        prompt_ids = tokenizer(prompt, add_special_tokens=special)["input_ids"]
    ids = prompt_ids + target_ids
    return {
        "input_ids": ids,
        "labels": [IGNORE_INDEX] * len(prompt_ids) + list(target_ids),
        "prompt_length": len(prompt_ids),
        "truncated": dropped,
    }


@dataclass
class MaskedCompletionCollator:
    """Pads a batch on the right: ``pad_token_id`` for ids, -100 for labels, 0 for the mask.

    With ``target_logits_only`` it also passes the model ``logits_to_keep``, a mask of
    the positions that predict a target token, and ``shift_labels``, those tokens in
    the same order: the model then projects only those positions onto the vocabulary.
    The loss is the same (the other positions carry label -100), but a prompt is most
    of a record, so the output layer and cross-entropy over ~50k tokens shrink to a
    few positions per example (about a fifth less time a step on CPU for SmolLM2).
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None
    target_logits_only: bool = False

    def __call__(self, features: list[dict]) -> dict:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            step = self.pad_to_multiple_of
            longest = (longest + step - 1) // step * step
        ids, labels, mask = [], [], []
        for f in features:
            pad = longest - len(f["input_ids"])
            ids.append(list(f["input_ids"]) + [self.pad_token_id] * pad)
            labels.append(list(f["labels"]) + [IGNORE_INDEX] * pad)
            mask.append([1] * len(f["input_ids"]) + [0] * pad)
        batch = {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "attention_mask": torch.tensor(mask, dtype=torch.long),
        }
        if self.target_logits_only:
            # position t predicts token t + 1
            following = torch.nn.functional.pad(batch["labels"][:, 1:], (0, 1), value=IGNORE_INDEX)
            keep = following != IGNORE_INDEX
            batch["logits_to_keep"] = keep
            batch["shift_labels"] = following[keep]
        return batch


def supports_target_logits(model: Any) -> bool:
    """Whether the model's forward takes ``logits_to_keep`` (so targets-only logits can be used)."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


class EncodedDataset:
    """A map-style dataset of encoded examples (what the Trainer's sampler indexes)."""

    def __init__(self, examples: list[dict]):
        self.examples = examples
        self.truncated_ids: list[str] = []

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict:
        example = self.examples[index]
        return {"input_ids": example["input_ids"], "labels": example["labels"]}

    @property
    def num_tokens(self) -> int:
        return sum(len(e["input_ids"]) for e in self.examples)

    @property
    def num_target_tokens(self) -> int:
        return sum(len(e["input_ids"]) - e["prompt_length"] for e in self.examples)


def encode_records(tokenizer: Any, records: list[dict], max_length: int, progress: bool = True) -> tuple[EncodedDataset, list[str]]:
    """Encode every record; returns the dataset and the ids of records that could not
    fit even with their history cut (the dataset's ``truncated_ids`` lists those cut)."""
    from tqdm.auto import tqdm

    examples, skipped, truncated = [], [], []
    for record in tqdm(records, desc="tokenising", unit="rec", disable=not progress, leave=False):
        example = encode_example(tokenizer, record, max_length)
        if example is None:
            skipped.append(record.get("id", "?"))
            continue
        if example["truncated"]:
            truncated.append(record.get("id", "?"))
        examples.append(example)
    dataset = EncodedDataset(examples)
    dataset.truncated_ids = truncated
    return dataset, skipped


def _encode_chat(tokenizer: Any, record: dict, max_length: int | None) -> dict | None:
    messages = [dict(m) for m in record["messages"]]
    dropped = 0
    while True:
        prompt, completion = split_prompt_target(tokenizer, messages)
        prompt_ids, target_ids = _encode(tokenizer, prompt, completion, False)
        if max_length is None or len(prompt_ids) + len(target_ids) <= max_length:
            break
        users = [i for i, m in enumerate(messages[:-1]) if m["role"] == "user"]
        shorter = shorten_history("\n" + messages[users[-1]]["content"]) if users else None
        if shorter is None:
            return None
        messages[users[-1]]["content"] = shorter.lstrip("\n")
        dropped += 1
    return {"input_ids": prompt_ids + target_ids, "labels": [IGNORE_INDEX] * len(prompt_ids) + list(target_ids),
            "prompt_length": len(prompt_ids), "truncated": dropped}
