"""Bounded-concurrency work against the model server, with a live progress bar.

Synthesis and evaluation both send many independent episodes to the vLLM endpoint;
this runs them ``concurrency`` at a time with asyncio and shows done / kept /
failed and generated tokens per second as they finish.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


@dataclass
class Progress:
    total: int
    desc: str
    done: int = 0
    kept: int = 0
    failed: int = 0
    tokens: int = 0
    started: float = field(default_factory=time.perf_counter)
    bar: Any = None

    def __post_init__(self) -> None:
        self.bar = tqdm(total=self.total, desc=self.desc, unit="item", dynamic_ncols=True, mininterval=0.5)

    def update(self, kept: bool = False, failed: bool = False, tokens: int = 0) -> None:
        self.done += 1
        self.kept += int(kept)
        self.failed += int(failed)
        self.tokens += tokens
        self.bar.set_postfix(kept=self.kept, failed=self.failed, tok_s=f"{self.tokens_per_s:.1f}", refresh=False)
        self.bar.update(1)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.elapsed, 1e-9)

    def close(self) -> None:
        self.bar.close()

    def summary(self) -> dict[str, float]:
        return {
            "done": self.done,
            "kept": self.kept,
            "failed": self.failed,
            "completion_tokens": self.tokens,
            "seconds": round(self.elapsed, 2),
            "tokens_per_s": round(self.tokens_per_s, 2),
            "items_per_min": round(60 * self.done / max(self.elapsed, 1e-9), 2),
        }


async def run_bounded(
    items: Iterable[T],
    worker: Callable[[T], Awaitable[dict[str, Any]]],
    concurrency: int,
    progress: Progress,
) -> list[dict[str, Any]]:
    """Run ``worker`` on every item, at most ``concurrency`` at once.

    The worker returns a dict; its ``kept``/``failed``/``tokens`` keys feed the bar.
    An exception from the worker counts as failed and is returned as
    ``{"error": str}`` — one bad item never stops the run.
    """
    semaphore = asyncio.Semaphore(concurrency)

    async def one(item: T) -> dict[str, Any]:
        async with semaphore:
            try:
                result = await worker(item)
            except Exception as exc:  # recorded, reported, never fatal
                result = {"error": f"{type(exc).__name__}: {exc}", "failed": True}
        progress.update(
            kept=bool(result.get("kept")), failed=bool(result.get("failed")), tokens=int(result.get("tokens", 0))
        )
        return result

    try:
        return await asyncio.gather(*(one(item) for item in items))
    finally:
        progress.close()
