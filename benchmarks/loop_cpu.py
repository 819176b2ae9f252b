"""The agent loop's own CPU per model call, against an instant stub server.

    python benchmarks/loop_cpu.py [--methods react,no-finetune,autoact] [--repeat 8] [--concurrency 8]

Starts ``benchmarks/stub_server.py`` on a free port (stopped by its process id at the
end), warms up once (imports, caches), then runs the demo task's 20 test questions
``--repeat`` times per method and prints the CPU time of this process (all threads;
the stub is another process) per model call: min, median and max. Without a model the
loop's Python is all there is to measure.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from autoact.eval.runner import plan_eval
from eval_throughput import timed_loop  # the same measure as eval_throughput's (b) and (c)
from autoact.settings import load_settings

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_per_call(settings, method: str, url: str, concurrency: int, out: Path, limit: int | None = None) -> float:
    plan = plan_eval(settings, "demo", [method], out, limit=limit)
    return asyncio.run(timed_loop(plan, url, concurrency))["client_cpu_ms_per_call"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="react,no-finetune,autoact")
    parser.add_argument("--repeat", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    port = free_port()
    stub = subprocess.Popen([sys.executable, str(HERE / "stub_server.py"), str(port)])
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(50):
            try:
                httpx.get(f"{url}/models", timeout=1.0)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        settings = load_settings()
        with tempfile.TemporaryDirectory() as tmp:
            for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
                cpu_per_call(settings, method, url, args.concurrency, Path(tmp) / f"{method}-warm", limit=1)
                per_call = sorted(cpu_per_call(settings, method, url, args.concurrency, Path(tmp) / f"{method}-{i}")
                                  for i in range(args.repeat))
                print(f"{method}: CPU ms per model call over {len(per_call)} runs: "
                      f"min {per_call[0]:.1f}, median {per_call[len(per_call) // 2]:.1f}, max {per_call[-1]:.1f}",
                      flush=True)
    finally:
        stub.terminate()
        stub.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
