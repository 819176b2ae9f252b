"""Serving figures of the real vLLM server on this machine (a script, not a test).

Starts the server with the embedded model and three adapters (plan/tool/reflect,
random non-zero LoRA weights of rank 8), then prints: time to ready, generated
tokens/s for one request and for C concurrent requests, on the base (identity
adapter) and on an adapter, and the resident memory of the server's processes.

    .venv/bin/python benchmarks/serving_throughput.py [--concurrency 8] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from autoact.modelhub import prepare_embedded_model
from autoact.serving.vllm_server import VLLMServer
from autoact.settings import Settings

PROMPTS = [
    "Write a short paragraph about the history of bridges.",
    "Explain how a lighthouse works.",
    "Describe a walk through a forest in autumn.",
    "What makes a good scientific experiment?",
    "Tell a short story about a lost key.",
    "Explain why the sky is blue.",
    "Describe the life cycle of a butterfly.",
    "How do trains stay on their tracks?",
]


def random_adapter(model_path: str, out: Path, seed: int) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    cfg = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(model, cfg).save_pretrained(str(out))
    return out


async def generate(client: httpx.AsyncClient, url: str, model: str, prompt: str, max_tokens: int) -> int:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "min_tokens": max_tokens,  # same length for every request: comparable figures
        "temperature": 0.0,
    }
    r = await client.post(url + "/chat/completions", json=body)
    r.raise_for_status()
    return r.json()["usage"]["completion_tokens"]


async def tokens_per_second(url: str, model: str, concurrency: int, max_tokens: int) -> float:
    async with httpx.AsyncClient(timeout=600) as client:
        await generate(client, url, model, PROMPTS[0], 8)  # warm-up
        start = time.perf_counter()
        prompts = [PROMPTS[i % len(PROMPTS)] for i in range(concurrency)]
        counts = await asyncio.gather(*(generate(client, url, model, p, max_tokens) for p in prompts))
        return sum(counts) / (time.perf_counter() - start)


def server_rss_gb(pid: int) -> float:
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    return sum(p.memory_info().rss for p in procs if p.is_running()) / 2**30


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()

    settings = Settings()
    model = str(prepare_embedded_model(settings.home))
    with tempfile.TemporaryDirectory() as tmp:
        adapters = {name: random_adapter(model, Path(tmp) / name, i) for i, name in enumerate(("plan", "tool", "reflect"))}
        start = time.perf_counter()
        with VLLMServer(settings, model, adapters=adapters) as server:
            ready = time.perf_counter() - start
            print(f"server ready in {ready:.1f} s ({settings.server.dtype}, LoRA on, 3 adapters + identity base)")
            for model_name in ("base", "plan"):
                for c in (1, args.concurrency):
                    tps = asyncio.run(tokens_per_second(server.base_url, model_name, c, args.max_tokens))
                    print(f"{model_name:>5}  concurrency {c:>2}: {tps:7.1f} generated tokens/s")
            print(f"server resident memory: {server_rss_gb(server.process.pid):.2f} GiB")


if __name__ == "__main__":
    main()
