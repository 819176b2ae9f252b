"""The agent loop's own CPU per model call, against an instant stub server.

    python benchmarks/loop_cpu.py [--methods react,no-finetune,autoact] [--repeat 8] [--concurrency 8]
        [--profile DIR]

Starts ``benchmarks/stub_server.py`` on a free port (stopped by its process id at the
end), warms up once (imports, caches), then runs the demo task's 20 test questions
``--repeat`` times per method and prints the CPU time of this process (all threads;
the stub is another process) per model call: min, median and max. Without a model the
loop's Python is all there is to measure.

With ``--profile DIR`` each method also runs once more under cProfile, in every thread
of the loop (the event loop's and the worker threads that resolve models and run
tools), and the loop's CPU per call is split by where it goes: self time of each
function, grouped by the package or project module that holds it (graph nodes,
prompt building, parsing, tools, journal and runner, LangGraph, LangChain, the HTTP
client, pydantic, asyncio). The profiler slows every function call, so the split is
given as shares of the profiled time and as milliseconds of the unprofiled median;
the raw profiles go to ``DIR/METHOD.pstats`` (``python -m pstats``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path

import stub_server
from autoact.eval.runner import plan_eval
from autoact.settings import load_settings
from eval_throughput import timed_loop  # the same measure as eval_throughput's (b) and (c)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

#: where the loop's CPU goes: (category, project folders or top-level packages whose
#: functions' self time it sums); the first match wins, so parsing precedes graph
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("parsing (actions, replies)", ("graph/parsing.py", "core/actions.py")),
    ("prompt building", ("prompts/",)),
    ("tools and environment", ("tools/", "graph/environment.py")),
    ("graph nodes and model calls", ("graph/",)),
    ("journal, runner, metrics", ("eval/", "core/io.py", "core/metrics.py", "core/usage.py", "core/concurrency.py")),
    ("settings", ("core/settings.py",)),
    ("LangGraph runtime", ("langgraph",)),
    ("LangChain (models, messages, callbacks)", ("langchain_core", "langchain_openai", "langsmith")),
    ("HTTP client (openai, httpx)", ("openai", "httpx", "httpcore", "httpx2", "httpcore2", "h11", "anyio", "sniffio",
                                     "ssl", "socket")),
    ("pydantic", ("pydantic", "pydantic_core")),
    ("asyncio and threads", ("asyncio", "threading", "concurrent", "selectors", "queue")),
    ("json", ("json",)),
    ("standard library (typing, inspect, abc, …)", ("typing", "typing_extensions", "inspect", "abc", "dataclasses",
                                                   "functools", "contextvars", "copy", "enum", "re", "uuid")),
)


def cpu_per_call(settings, method: str, url: str, concurrency: int, out: Path, limit: int | None = None) -> float:
    plan = plan_eval(settings, "demo", [method], out, limit=limit)
    return asyncio.run(timed_loop(plan, url, concurrency))["client_cpu_ms_per_call"]


class AllThreadsProfile:
    """cProfile in this thread and in every thread started while it is on: the loop
    resolves models and runs tools in ``asyncio.to_thread`` workers, which a plain
    ``cProfile.Profile`` (one thread) would miss. The workers end with the event loop,
    so their profilers stop with them."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def _start_here(self, *_: object) -> None:
        sys.setprofile(None)
        profile = cProfile.Profile(time.thread_time)  # CPU of this thread: waits on sockets and locks are not work
        with self._lock:
            self.profiles.append(profile)
        profile.enable()

    def __enter__(self) -> "AllThreadsProfile":
        threading.setprofile(self._start_here)
        self._start_here()
        return self

    def __exit__(self, *exc: object) -> None:
        threading.setprofile(None)
        self.profiles[0].disable()

    def stats(self) -> pstats.Stats:
        stats = pstats.Stats(self.profiles[0])
        for profile in self.profiles[1:]:
            stats.add(profile)
        return stats


def category(filename: str) -> str:
    """The category of a function by the file that defines it (see CATEGORIES)."""
    parts = Path(filename).parts
    # an installed package (the folder right under site-packages) or the standard library
    anchor = next((i for i, p in enumerate(parts) if p in ("site-packages", "dist-packages")), None)
    if anchor is None and filename.startswith("<frozen"):
        return "standard library (typing, inspect, abc, …)"
    if anchor is None:
        try:
            key = Path(filename).resolve().relative_to(REPO).as_posix()
        except (ValueError, OSError):
            key = None
        if key is not None:
            return next((name for name, keys in CATEGORIES if any(key.startswith(k) for k in keys)), "other")
        anchor = next((i for i, p in enumerate(parts) if p.startswith("python3")), None)
    top = parts[anchor + 1].removesuffix(".py") if anchor is not None and anchor + 1 < len(parts) else ""
    found = next((name for name, keys in CATEGORIES if top in keys), None)
    if found:
        return found
    return "standard library (typing, inspect, abc, …)" if "site-packages" not in parts else f"other packages ({top})"


def split_by_category(stats: pstats.Stats) -> dict[str, float]:
    """Self (exclusive) CPU seconds per category. A C function (``isinstance``, a
    pydantic validator, ``socket.send``) has no file: its time goes to its callers'
    categories in proportion to the time each caller spent in it."""
    seconds: dict[str, float] = {}

    def add(name: str, value: float) -> None:
        seconds[name] = seconds.get(name, 0.0) + value

    for (filename, _line, _name), (_cc, _nc, tottime, _ct, callers) in stats.stats.items():
        if filename != "~":
            add(category(filename), tottime)
            continue
        spent = {caller: edge[2] for caller, edge in callers.items()}
        whole = sum(spent.values())
        if not whole:
            add("C functions (caller unknown)", tottime)
            continue
        for (caller_file, _l, _n), t in spent.items():
            add(category(caller_file) if caller_file != "~" else "C functions (caller unknown)", tottime * t / whole)
    return seconds


def profile_method(settings, method: str, url: str, concurrency: int, out: Path, median_ms: float,
                   profile_dir: Path) -> None:
    plan = plan_eval(settings, "demo", [method], out)
    with AllThreadsProfile() as profiler:
        figures = asyncio.run(timed_loop(plan, url, concurrency))
    stats = profiler.stats()
    profile_dir.mkdir(parents=True, exist_ok=True)
    stats.dump_stats(str(profile_dir / f"{method}.pstats"))
    seconds = split_by_category(stats)
    total = sum(seconds.values()) or 1.0
    calls = figures["model_calls"] or 1
    print(f"{method}: where the loop's CPU goes ({calls} model calls; profiled {1000 * total / calls:.1f} ms per call, "
          f"unprofiled median {median_ms:.1f}; threads profiled: {len(profiler.profiles)})")
    print(f"  {'category':<42} {'share':>6} {'ms/call':>8}")
    for name, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<42} {100 * s / total:5.1f}% {median_ms * s / total:8.2f}")
    top = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:8]
    print("  the functions with the most self time:")
    for (filename, line, name), (_cc, ncalls, tottime, _ct, _callers) in top:
        where = name if filename == "~" else f"{Path(filename).name}:{line} {name}"
        print(f"    {100 * tottime / total:5.1f}%  {ncalls / calls:7.1f} calls per model call  {where}")
    print(flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="react,no-finetune,autoact")
    parser.add_argument("--repeat", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--profile", metavar="DIR", help="also split each method's CPU by category (cProfile), "
                        "writing DIR/METHOD.pstats")
    args = parser.parse_args(argv)
    with stub_server.running() as url:
        settings = load_settings()
        with tempfile.TemporaryDirectory() as tmp:
            for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
                cpu_per_call(settings, method, url, args.concurrency, Path(tmp) / f"{method}-warm", limit=1)
                per_call = sorted(cpu_per_call(settings, method, url, args.concurrency, Path(tmp) / f"{method}-{i}")
                                  for i in range(args.repeat))
                print(f"{method}: CPU ms per model call over {len(per_call)} runs: "
                      f"min {per_call[0]:.1f}, median {per_call[len(per_call) // 2]:.1f}, max {per_call[-1]:.1f}",
                      flush=True)
                if args.profile:
                    profile_method(settings, method, url, args.concurrency, Path(tmp) / f"{method}-profiled",
                                   per_call[len(per_call) // 2], Path(args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
