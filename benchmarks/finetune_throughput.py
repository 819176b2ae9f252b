"""Training throughput of `autoact finetune` against a bare peft loop (a script, not a test).

Both paths train the same LoRA (the recipe's r=8, alpha=16, all linear layers) on the
embedded model, on the same encoded examples, in the same batches (length-grouped
with the same seed), in the same precision, for the same number of optimiser steps:

* trainer: ``autoact.finetune.train.train_adapter`` — the Hugging Face Trainer path
  that ``autoact finetune`` runs (timed from the start to the end of its training
  loop, as its manifest reports it);
* bare: a plain loop of forward, backward, gradient clipping, AdamW and the cosine
  schedule on the peft model, nothing else.

Both use the same collator, so by default both compute the output layer only where
a target token is predicted (``--full-logits``: everywhere, as a plain loop would).
Tokens/s counts the non-padding tokens of the batches (prompt and target). Data:
``--run RUN`` (its ``data/{plan,tool,reflect}.jsonl``), ``--data FILE`` (repeatable),
or, with neither, records that the product's record builder cuts from synthetic
two-step trajectories.

    .venv/bin/python benchmarks/finetune_throughput.py [--run RUN] [--steps 12] [--batch-size 4] [--threads 1] [--repeat 2]

The best run of each path is reported: on a shared machine the slower runs measure
the neighbours more than the code.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

from autoact.finetune.config import FinetuneConfig
from autoact.finetune.masking import MaskedCompletionCollator, encode_records, supports_target_logits
from autoact.finetune.records import AGENTS, agent_data_file, read_jsonl
from autoact.finetune.train import load_peft_model, load_tokenizer, train_adapter
from autoact.modelhub import resolve_model
from autoact.prompts.records import training_records
from autoact.settings import Settings

# (person, place, field) facts for synthetic trajectories when no run data is given
FACTS = [
    ("Ada Lovelace", "London", "mathematics"), ("Marie Curie", "Warsaw", "physics"),
    ("Alan Turing", "Maida Vale", "computing"), ("Nikola Tesla", "Smiljan", "electrical engineering"),
    ("Rosalind Franklin", "Notting Hill", "chemistry"), ("Srinivasa Ramanujan", "Erode", "mathematics"),
    ("Grace Hopper", "New York City", "computing"), ("Niels Bohr", "Copenhagen", "physics"),
    ("Emmy Noether", "Erlangen", "algebra"), ("Dmitri Mendeleev", "Tobolsk", "chemistry"),
]


def synthetic_records(n: int) -> list[dict]:
    """Records of all three agents, built by the product's builder from made-up episodes."""
    tools = [
        {"name": "Retrieve", "description": "Retrieve the page of an entity from the corpus.", "usage": "Retrieve[entity]"},
        {"name": "Lookup", "description": "The next sentence with the keyword in the last page.", "usage": "Lookup[keyword]"},
        {"name": "Search", "description": "The passages that best match a query.", "usage": "Search[query]"},
    ]
    records: list[dict] = []
    i = 0
    while len(records) < n:
        person, place, field = FACTS[i % len(FACTS)]
        steps = [
            {"thought": f"I need to find where {person} was born.", "action": "Retrieve", "argument": person,
             "observation": f"{person} worked in {field}. {person} was born in {place}. " * (1 + i % 3)},
            {"thought": f"{person} was born in {place}.", "action": "Finish", "argument": place,
             "observation": "Episode finished."},
        ]
        cut = training_records(steps, "Answer questions about people and places.", tools,
                               f"In which place was the {field} pioneer {person} born?",
                               [{"thought": f"The page says {person} was born in {place}.", "verdict": "right"}],
                               record_id=f"bench-{i}", prompt_format="chat")
        for agent in AGENTS:
            records.extend(cut[agent])
        i += 1
    return records[:n]


def load_records(args: argparse.Namespace) -> tuple[list[dict], str]:
    if args.data:
        return [r for p in args.data for r in read_jsonl(Path(p))], ", ".join(args.data)
    if args.run:
        files = [agent_data_file(Path(args.run), a) for a in AGENTS if agent_data_file(Path(args.run), a).is_file()]
        if not files:
            raise SystemExit(f"{args.run}: no data/{{plan,tool,reflect}}.jsonl")
        return [r for f in files for r in read_jsonl(f)], ", ".join(str(f) for f in files)
    return synthetic_records(args.records), f"{args.records} synthetic records (record builder)"


def trainer_path(records: list[dict], model_path: str, config: FinetuneConfig) -> dict:
    with tempfile.TemporaryDirectory(prefix="autoact-bench-") as tmp:
        manifest = train_adapter(records, model_path, Path(tmp) / "adapter", config, name="bench")
    r = manifest["result"]
    return {"tokens": r["tokens_this_session"], "seconds": r["train_seconds"], "steps": r["steps_this_session"]}


def bare_path(records: list[dict], model_path: str, config: FinetuneConfig) -> dict:
    """forward/backward/step on the peft model: the floor any trainer adds its overhead to."""
    import torch
    from torch.utils.data import DataLoader
    from transformers import get_cosine_schedule_with_warmup
    from transformers.trainer_pt_utils import LengthGroupedSampler

    tokenizer = load_tokenizer(model_path)
    dataset, _ = encode_records(tokenizer, records, config.max_length, progress=False)
    torch.manual_seed(config.seed)
    model = load_peft_model(model_path, config)
    model.train()
    generator = torch.Generator().manual_seed(config.seed)
    sampler = LengthGroupedSampler(config.batch_size, dataset=dataset, generator=generator)
    collate = MaskedCompletionCollator(tokenizer.pad_token_id,
                                       target_logits_only=config.target_logits_only and supports_target_logits(model))
    loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, collate_fn=collate)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = get_cosine_schedule_with_warmup(optimizer, math.ceil(config.warmup_ratio * config.max_steps),
                                               config.max_steps)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.precision == "bf16")
    tokens = steps = 0
    start = time.perf_counter()
    while steps < config.max_steps:
        for batch in loader:
            with autocast:
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            tokens += int(batch["attention_mask"].sum())
            steps += 1
            if steps == config.max_steps:
                break
    return {"tokens": tokens, "seconds": time.perf_counter() - start, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a run directory with data/<agent>.jsonl")
    parser.add_argument("--data", action="append", help="a JSONL record file (repeatable)")
    parser.add_argument("--records", type=int, default=96, help="synthetic records when no data is given")
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for both paths")
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--repeat", type=int, default=2, help="alternating runs of each path; the best is reported")
    parser.add_argument("--full-logits", action="store_true",
                        help="both paths compute logits at every position (default: only where targets are predicted)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    settings = Settings()
    model_path = resolve_model(args.model, settings.home)
    records, source = load_records(args)
    config = FinetuneConfig(max_steps=args.steps, batch_size=args.batch_size, max_length=args.max_length,
                            precision=args.precision, threads=args.threads, save_steps=10 ** 6,
                            target_logits_only=not args.full_logits,
                            logging_steps=10 ** 6, progress=False)
    print(f"data: {source}: {len(records)} records; {args.steps} steps of batch {args.batch_size}, "
          f"{args.precision}, {args.threads} thread(s), {'full' if args.full_logits else 'target-only'} logits, "
          f"model {model_path}")
    # the paths alternate, so that load from other processes on the machine hits both alike
    runs: dict[str, list[dict]] = {"trainer": [], "bare": []}
    for rep in range(1, args.repeat + 1):
        for name, fn in (("trainer", trainer_path), ("bare", bare_path)):
            result = fn(records, model_path, config)
            result["tokens_per_s"] = result["tokens"] / result["seconds"]
            runs[name].append(result)
            print(f"[{rep}/{args.repeat}] {name:>7}: {result['steps']} steps, {result['tokens']} tokens in "
                  f"{result['seconds']:.1f} s = {result['tokens_per_s']:.1f} tokens/s", flush=True)
    best = {name: max(r["tokens_per_s"] for r in results) for name, results in runs.items()}
    ratio = best["trainer"] / best["bare"]
    print(f"trainer (autoact finetune): {best['trainer']:.1f} tokens/s (best of {args.repeat})")
    print(f"bare peft loop:             {best['bare']:.1f} tokens/s (best of {args.repeat})")
    print(f"ratio trainer/bare:         {ratio:.2f}")
    if args.json:
        figures = {"runs": runs, "best_tokens_per_s": best, "ratio_trainer_to_bare": ratio,
                   "settings": {"steps": args.steps, "batch_size": args.batch_size, "threads": args.threads,
                                "precision": args.precision, "target_logits_only": not args.full_logits,
                                "records": len(records), "source": source}}
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
