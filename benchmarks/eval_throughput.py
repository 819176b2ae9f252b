"""Throughput of the evaluation loop against the raw server, on one vLLM server.

    python benchmarks/eval_throughput.py --questions 8 --concurrency 8 [--no-serial]

In one run on the same server:

(a) raw generation tokens/s at concurrency C: the very requests the eval loop sent in
    (b) (same prompts, model names and sampling parameters, seed included), replayed straight to the
    OpenAI-compatible endpoint C at a time, each forced to generate exactly the
    number of tokens it generated in (b) (``max_tokens`` = that count, EOS ignored, no
    stop strings);
(b) the eval loop's generated tokens/s at concurrency C (graphs, environment, tools,
    journal and all), over the wall time of the loop;
(c) the eval loop at concurrency 1, one question at a time as the original code base
    ran its benchmarks;
(d) the replay of (a) at concurrency 1: (a)/(d) is what concurrency buys the server
    itself on this machine. Since (b) <= (a), (b)/(c) <= (a)/(d) × (d)/(c): where the
    loop alone keeps up with the server ((c) ≈ (d)), (a)/(d) is the ceiling of (b)/(c);
(e) the replay of (a) with the loop's dependencies kept: each question's requests one
    after another, in the order the loop sent them, C questions at a time, nothing
    between two calls. It is what a client that costs nothing would reach on this
    workload, so (b)/(a) = (b)/(e) × (e)/(a) splits the loop's shortfall into its own
    cost, (b)/(e), and the shape of the work, (e)/(a): chains of dependent calls and
    the last questions running alone, which no client can remove.

It prints (b)/(a), the share of the server's raw speed the loop keeps, and (b)/(c),
what running questions concurrently buys, and the mean number of requests in flight
in (a) and (b): an episode is a chain of calls, so between two calls it holds no
request (its tool runs), and the last episodes of a run go on alone. Without ``--base-url`` a server is started
for the run (with the adapters the method needs) and stopped at the end. Results
also go to ``--json`` (default: OUT/throughput.json).

It also prints the client's CPU time per model call in (b) and (c): the CPU time of
this process during the loop (all its threads; the server is another process) over
the loop's model calls. On a machine whose cores the server shares, that time is
taken from the server. (b) also runs the callback that records its requests and the
process's first-run work (lazy imports). And, where the server exposes vLLM's
Prometheus counters at ``/metrics`` (at the server root, not under /v1), the
prefix-cache hit rate of the prompt tokens in each phase. "n/a" where the counters are
absent: a vLLM server started with ``--disable-log-stats`` has none (autoact's servers,
unless ``[server] log_stats``; the one this script starts keeps them).

Every phase starts with an empty prefix cache: the replays send exactly the prompts
(b) sent, so on a warm cache their prefill would be almost free and (a), (d), (e)
would run faster than any loop could. The cache is emptied through vLLM's
``POST /reset_prefix_cache``, a development endpoint: the server this script starts
has it (``VLLM_SERVER_DEV_MODE=1``, on 127.0.0.1); where a ``--base-url`` server lacks
it, the figures say that the cache was not reset.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from langchain_core.callbacks import BaseCallbackHandler

from autoact.eval.runner import eval_endpoint, method_file, plan_eval, run_methods
from autoact.serving.endpoint import api_key_from_env, auth_headers, tls_context
from autoact.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "hotpotqa" / "easy.jsonl"
ROLES = {"system": "system", "human": "user", "ai": "assistant"}
#: vLLM's prefix-cache counters (prompt tokens looked up, and found cached), current
#: name first: Prometheus exposes a counter as ``<name>_total``; earlier V1 engines named
#: them ``gpu_prefix_cache_*``, and the V0 engine had only a hit-rate gauge.
CACHE_COUNTERS = {
    kind: [f"vllm:{gpu}prefix_cache_{kind}{total}" for gpu in ("", "gpu_") for total in ("_total", "")]
    for kind in ("queries", "hits")
}
CACHE_GAUGE = "vllm:gpu_prefix_cache_hit_rate"
#: One sample line of the Prometheus text format: name, optional {labels}, value.
SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{.*\})?\s+(\S+)")


def sampling_of(params: dict[str, Any]) -> dict[str, Any]:
    """The sampling parameters a request was sent with (top_k travels in extra_body).
    The replays send them too: a seeded request takes vLLM's per-request sampling path,
    slower than greedy, and raw speed must be measured on the same work."""
    return {k: params[k] for k in ("temperature", "top_p", "seed") if params.get(k) is not None}


class RequestRecorder(BaseCallbackHandler):
    """Every request the graphs send (model, chat messages or transcript prompt, extra
    body) and the number of tokens the server generated for it."""

    # model calls only: LangChain then skips this handler for the graph's other events,
    # which would add to the loop's CPU time in (b)
    ignore_chain = ignore_agent = ignore_retriever = ignore_retry = ignore_custom_event = True

    def __init__(self) -> None:
        self.pending: dict[Any, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []

    def on_chat_model_start(self, serialized, messages, *, run_id, invocation_params=None, metadata=None,
                            **kwargs) -> None:
        params = invocation_params or {}
        self.pending[run_id] = {
            "question_id": (metadata or {}).get("question_id"),
            "started": time.perf_counter(),
            "model": params.get("model") or params.get("model_name"),
            "sampling": sampling_of(params),
            "messages": [{"role": ROLES[m.type], "content": str(m.content)} for m in messages[0]],
            "extra_body": dict(params.get("extra_body") or {}),
        }

    def on_llm_start(self, serialized, prompts, *, run_id, invocation_params=None, metadata=None, **kwargs) -> None:
        """A transcript prompt (the default format) sent to /v1/completions."""
        params = invocation_params or {}
        self.pending[run_id] = {
            "question_id": (metadata or {}).get("question_id"),
            "started": time.perf_counter(),
            "model": params.get("model") or params.get("model_name"),
            "sampling": sampling_of(params),
            "prompt": prompts[0],
            "extra_body": dict(params.get("extra_body") or {}),
        }

    def on_llm_end(self, response, *, run_id, **kwargs) -> None:
        request = self.pending.pop(run_id, None)
        if request is None:
            return
        generation = response.generations[0][0]
        usage = getattr(getattr(generation, "message", None), "usage_metadata", None) or {}
        if not usage:  # completions: the batch's token usage
            token_usage = (response.llm_output or {}).get("token_usage") or {}
            usage = {"output_tokens": token_usage.get("completion_tokens"),
                     "input_tokens": token_usage.get("prompt_tokens")}
        request["seconds"] = time.perf_counter() - request["started"]
        request["completion_tokens"] = int(usage.get("output_tokens") or 0)
        request["prompt_tokens"] = int(usage.get("input_tokens") or 0)
        if request["completion_tokens"] > 0:
            self.requests.append(request)


async def send(client: Any, request: dict[str, Any]) -> int:
    """One recorded request straight to the server, with its own sampling parameters,
    forced to generate exactly as many tokens as it did in the loop; returns the tokens
    generated."""
    n = request["completion_tokens"]
    # the structured-output guide is left out: the replay must generate exactly n tokens
    extra = {k: v for k, v in request["extra_body"].items() if k != "structured_outputs"}
    extra.update(ignore_eos=True, min_tokens=n)
    sampling = {"temperature": 0.0, **request.get("sampling", {})}
    if "prompt" in request:
        reply = await client.completions.create(
            model=request["model"], prompt=request["prompt"], max_tokens=n, extra_body=extra, **sampling
        )
    else:
        reply = await client.chat.completions.create(
            model=request["model"], messages=request["messages"], max_tokens=n, extra_body=extra, **sampling
        )
    return int(reply.usage.completion_tokens)


def chains(requests: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The recorded requests grouped by question, each group in the order it was sent,
    the groups in the order their questions started. A request without a question id
    (a loop that passed none) is a chain of its own."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for i, request in enumerate(sorted(requests, key=lambda r: r.get("started", 0.0))):
        key = request.get("question_id")
        groups.setdefault(key if key is not None else ("request", i), []).append(request)
    return list(groups.values())


async def replay(base_url: str, requests: list[dict[str, Any]], concurrency: int,
                 chained: bool = False) -> dict[str, Any]:
    """(a) and (d): the recorded requests straight to the server, ``concurrency`` at a
    time; (e) with ``chained``: ``concurrency`` questions at a time, each question's
    requests one after another."""
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key_from_env() or "EMPTY", max_retries=2, timeout=600)
    semaphore = asyncio.Semaphore(concurrency)
    generated: list[int] = []
    busy: list[float] = []

    async def one(chain: list[dict[str, Any]]) -> None:
        async with semaphore:
            for request in chain:
                t0 = time.perf_counter()
                tokens = await send(client, request)
                busy.append(time.perf_counter() - t0)
                generated.append(tokens)

    units = chains(requests) if chained else [[r] for r in requests]
    cache_before = cache_metrics(base_url)
    start = time.perf_counter()
    await asyncio.gather(*(one(unit) for unit in units))
    seconds = time.perf_counter() - start
    await client.close()
    return {
        "requests": len(requests),
        "chains": len(units),
        "completion_tokens": sum(generated),
        "expected_tokens": sum(r["completion_tokens"] for r in requests),
        "seconds": round(seconds, 2),
        "tokens_per_s": round(sum(generated) / seconds, 2),
        "mean_in_flight": round(sum(busy) / seconds, 2),
        "prefix_cache_hit_rate": hit_rate(cache_before, cache_metrics(base_url)),
    }


def parse_cache_metrics(text: str) -> dict[str, float]:
    """``queries`` and ``hits`` (each summed over its label sets: one per engine and
    model), else ``hit_rate`` from the old gauge; {} when the text has neither."""
    sums: dict[str, float] = {}
    wanted = {*CACHE_COUNTERS["queries"], *CACHE_COUNTERS["hits"], CACHE_GAUGE}
    for line in text.splitlines():
        sample = SAMPLE.match(line.strip())
        if sample and sample[1] in wanted:
            try:
                sums[sample[1]] = sums.get(sample[1], 0.0) + float(sample[2])
            except ValueError:
                continue
    counters = {kind: next((sums[n] for n in names if n in sums), None) for kind, names in CACHE_COUNTERS.items()}
    if None not in counters.values():
        return counters
    return {"hit_rate": sums[CACHE_GAUGE]} if CACHE_GAUGE in sums else {}


def server_root(base_url: str) -> str:
    """vLLM's own endpoints (/metrics, /reset_prefix_cache) sit at the root, not under /v1."""
    return base_url.rstrip("/").removesuffix("/v1")


def cache_metrics(base_url: str) -> dict[str, float]:
    """The server's prefix-cache figures now ({} when it has no /metrics or no such figures)."""
    try:
        response = httpx.get(server_root(base_url) + "/metrics", headers=auth_headers(), timeout=10.0, verify=tls_context())
        response.raise_for_status()
    except httpx.HTTPError:
        return {}
    return parse_cache_metrics(response.text)


def hit_rate(before: dict[str, float], after: dict[str, float]) -> float | None:
    """Hits over queries between two readings of the counters; the gauge's last value
    where there are no counters; None without either (or without queries)."""
    if "queries" in before and "queries" in after:
        queried = after["queries"] - before["queries"]
        return round((after["hits"] - before["hits"]) / queried, 4) if queried > 0 else None
    return after.get("hit_rate")


def model_calls(plan) -> int:
    """Model calls of a loop's questions, as their records count them."""
    lines = method_file(plan.out_dir, plan.methods[0].name).read_text().splitlines()
    return sum(int(json.loads(line).get("calls") or 0) for line in lines if line.strip())


def reset_prefix_cache(base_url: str) -> bool:
    """Empty the server's prefix cache; False where the server has no such endpoint
    (vLLM without ``VLLM_SERVER_DEV_MODE``) or refuses (requests still running)."""
    try:
        response = httpx.post(server_root(base_url) + "/reset_prefix_cache", headers=auth_headers(), timeout=30.0, verify=tls_context())
        response.raise_for_status()
    except httpx.HTTPError:
        return False
    try:
        return bool(response.json().get("success", True))
    except ValueError:
        return True


async def timed_loop(plan, url: str, concurrency: int, callbacks: list | None = None) -> dict[str, Any]:
    """One eval loop: its figures, this process's CPU time per model call and the
    prefix-cache hit rate over it."""
    cache_before = cache_metrics(url)
    cpu = time.process_time()
    run = await run_methods(plan, url, concurrency, callbacks=callbacks)
    cpu = time.process_time() - cpu
    figures = loop_figures(next(iter(run.values())))
    calls = model_calls(plan)
    figures.update({
        "model_calls": calls,
        "client_cpu_s": round(cpu, 3),
        "client_cpu_ms_per_call": round(1000 * cpu / calls, 2) if calls else None,
        "prefix_cache_hit_rate": hit_rate(cache_before, cache_metrics(url)),
    })
    return figures


def loop_figures(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("done", "failed", "completion_tokens", "seconds", "tokens_per_s", "items_per_min")
    return {k: run[k] for k in keys}


def ratio(x: dict[str, Any] | None, y: dict[str, Any] | None) -> float | None:
    """x's tokens/s over y's; None where either phase did not run or y made nothing."""
    if not x or not y or not y["tokens_per_s"]:
        return None
    return round(x["tokens_per_s"] / y["tokens_per_s"], 3)


async def measure(plan_c, plan_1, url: str, concurrency: int, serial: bool = True) -> dict[str, Any]:
    """The five phases (four without ``serial``: (c) and (d) run one request at a
    time, most of the time of a run with many questions)."""
    recorder = RequestRecorder()
    resets: list[bool] = []

    def cold(label: str) -> None:
        resets.append(reset_prefix_cache(url))
        print(f"{label} …", file=sys.stderr)

    cold(f"(b) eval loop, concurrency {concurrency}")
    b = await timed_loop(plan_c, url, concurrency, callbacks=[recorder])
    # requests in flight on average: below C when episodes wait on tools or the last ones run alone
    b["mean_in_flight"] = round(sum(r["seconds"] for r in recorder.requests) / b["seconds"], 2)
    cold(f"(a) raw replay of {len(recorder.requests)} requests, concurrency {concurrency}")
    a = await replay(url, recorder.requests, concurrency)
    cold(f"(e) raw replay, each question's requests in sequence, concurrency {concurrency}")
    e = await replay(url, recorder.requests, concurrency, chained=True)
    c = d = None
    if serial:
        cold(f"(d) raw replay of {len(recorder.requests)} requests, concurrency 1")
        d = await replay(url, recorder.requests, 1)
        cold("(c) eval loop, concurrency 1")
        c = await timed_loop(plan_1, url, 1)
    prompt_tokens = [r["prompt_tokens"] for r in recorder.requests]
    return {
        "a_raw": a,
        "b_loop": b,
        "c_loop_serial": c,
        "d_raw_serial": d,
        "e_raw_chained": e,
        "prefix_cache_reset": all(resets),
        "requests": {
            "count": len(recorder.requests),
            "prompt_tokens_mean": round(sum(prompt_tokens) / max(len(prompt_tokens), 1), 1),
            "completion_tokens_mean": round(a["expected_tokens"] / max(len(recorder.requests), 1), 1),
        },
        "b_over_a": ratio(b, a),
        "b_over_c": ratio(b, c),
        "a_over_d": ratio(a, d),
        "c_over_d": ratio(c, d),
        "b_over_e": ratio(b, e),
        "e_over_a": ratio(e, a),
    }


def per_call(loop: dict[str, Any]) -> str:
    if loop["client_cpu_ms_per_call"] is None:
        return "n/a (no model calls)"
    return f"{loop['client_cpu_ms_per_call']:.1f} ms ({loop['client_cpu_s']} s over {loop['model_calls']} calls)"


def percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100 * rate:.1f} %"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", default="hotpotqa")
    p.add_argument("--data", nargs="+", help=f"data files (hotpotqa default: {DEFAULT_DATA}; demo brings its own)")
    p.add_argument("--method", default="react", help="the method whose loop is measured (default react)")
    p.add_argument("--questions", type=int, default=16, help="questions (per level) in each loop run")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--max-steps", type=int, default=6)
    p.add_argument("--base-url", help="an existing endpoint (…/v1); default: start one")
    p.add_argument("--config", help="settings file")
    p.add_argument("--run", help="run directory (adapters for autoact methods)")
    p.add_argument("--out", help="where the loops write their records (default: a temporary folder)")
    p.add_argument("--json", help="write the figures here (default: OUT/throughput.json)")
    p.add_argument("--no-structured", action="store_true",
                   help="the loop without vLLM structured outputs (the replays never send them), to see "
                        "whether guided decoding is part of the gap between (b) and (e)")
    p.add_argument("--no-serial", action="store_true",
                   help="skip (c) and (d), one request at a time: for runs with many questions")
    args = p.parse_args(argv)

    data = args.data or ([str(DEFAULT_DATA)] if args.benchmark == "hotpotqa" else None)
    for path in data or []:
        if not Path(path).exists():
            print(f"data not found: {path} (pass --data)", file=sys.stderr)
            return 2
    # a server started here (127.0.0.1) gets vLLM's development endpoints, for /reset_prefix_cache
    os.environ.setdefault("VLLM_SERVER_DEV_MODE", "1")
    overrides = {"run_dir": Path(args.run)} if args.run else {}
    settings = load_settings(args.config, **overrides)
    # a server started here keeps its engine statistics: the prefix-cache counters at /metrics
    settings = settings.model_copy(update={"server": settings.server.model_copy(update={"log_stats": True})})
    out = Path(args.out or tempfile.mkdtemp(prefix="eval-throughput-"))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    common = dict(data=data, limit=args.questions, max_steps=args.max_steps)
    if args.no_structured:
        common["structured"] = False
    # fresh directories: a resumed loop would skip its questions
    plan_c = plan_eval(settings, args.benchmark, [args.method], out / f"{stamp}-c{args.concurrency}", **common)
    plan_1 = plan_eval(settings, args.benchmark, [args.method], out / f"{stamp}-c1", **common)
    with eval_endpoint(settings, plan_c.methods, args.base_url) as url:
        figures = asyncio.run(measure(plan_c, plan_1, url, args.concurrency, serial=not args.no_serial))
    figures.update({
        "benchmark": args.benchmark, "method": args.method, "questions": len(plan_c.instances),
        "concurrency": args.concurrency, "max_steps": args.max_steps, "model": settings.model, "base_url": url,
        "structured": not args.no_structured,
    })
    path = Path(args.json or out / "throughput.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2))

    a, b, c, d = figures["a_raw"], figures["b_loop"], figures["c_loop_serial"], figures["d_raw_serial"]
    e = figures["e_raw_chained"]
    print(f"{args.method} on {figures['questions']} {args.benchmark} questions, {figures['requests']['count']} requests "
          f"(mean {figures['requests']['prompt_tokens_mean']} prompt / {figures['requests']['completion_tokens_mean']} "
          "completion tokens)")
    print(f"(a) raw server, concurrency {args.concurrency}: {a['tokens_per_s']:8.1f} tokens/s "
          f"({a['completion_tokens']} tokens in {a['seconds']} s; {a['mean_in_flight']} requests in flight on average)")
    print(f"(b) eval loop, concurrency {args.concurrency}: {b['tokens_per_s']:8.1f} tokens/s "
          f"({b['completion_tokens']} tokens in {b['seconds']} s; {b['mean_in_flight']} requests in flight on average)")
    if c and d:
        print(f"(c) eval loop, concurrency 1:  {c['tokens_per_s']:8.1f} tokens/s "
              f"({c['completion_tokens']} tokens in {c['seconds']} s)")
        print(f"(d) raw server, concurrency 1: {d['tokens_per_s']:8.1f} tokens/s "
              f"({d['completion_tokens']} tokens in {d['seconds']} s)")
    print(f"(e) raw server, chains, C {args.concurrency}: {e['tokens_per_s']:8.1f} tokens/s "
          f"({e['completion_tokens']} tokens in {e['seconds']} s; {e['chains']} questions; "
          f"{e['mean_in_flight']} requests in flight on average)")
    print(f"(b)/(a) = {figures['b_over_a']} = (b)/(e) {figures['b_over_e']} (the loop's own cost) "
          f"x (e)/(a) {figures['e_over_a']} (the work's chains and tail)")
    if c and d:
        print(f"(b)/(c) = {figures['b_over_c']}   "
              f"(a)/(d) = {figures['a_over_d']} (the server's own gain from concurrency)   "
              f"(c)/(d) = {figures['c_over_d']} (the loop alone against the server)")
    print(f"client CPU per model call: (b) {per_call(b)}" + (f", (c) {per_call(c)}" if c else ""))
    print("prefix-cache hit rate (prompt tokens): " + ", ".join(
        f"({k}) {percent(x['prefix_cache_hit_rate'])}" for k, x in zip("abcde", (a, b, c, d, e)) if x)
        + ("; the cache was emptied before each phase" if figures["prefix_cache_reset"]
           else "; NOT emptied between phases (the server has no /reset_prefix_cache): the replays ran on a warm cache"))
    print(f"figures: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
