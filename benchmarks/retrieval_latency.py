"""Index build time and query latency on the shared HotpotQA corpus.

The corpus is the context paragraphs of ``../shared/data/hotpotqa/{easy,medium}.jsonl``;
the queries are the questions themselves (Search) and their supporting titles
(Retrieve). Indexes are built in a fresh temporary home, so the build is measured
from scratch, then reloaded from disk as a later run would.

    python benchmarks/retrieval_latency.py [--dense] [--queries N] [--data FILE ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from autoact.tools.corpus import Corpus
from autoact.tools.index import CorpusIndex
from autoact.tools.tasks import load_task


def _ms(samples: list[float]) -> str:
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, int(0.95 * len(samples)))]
    return f"median {statistics.median(samples) * 1000:.3f} ms, p95 {p95 * 1000:.3f} ms, n={len(samples)}"


def _timed(fn, items) -> list[float]:
    out = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - start)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", help="HotpotQA JSONL files (default: the shared easy + medium)")
    parser.add_argument("--queries", type=int, default=200, help="number of queries to time (default 200)")
    parser.add_argument("--dense", action="store_true", help="also build and time the dense (MiniLM) index")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for embedding (default 1)")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    task = load_task("hotpotqa", data=args.data)
    corpus: Corpus = task.corpus
    print(f"loaded {len(task.instances)} questions and {len(corpus)} paragraphs in {time.perf_counter() - t0:.2f} s")
    questions = [i.question for i in task.instances][: args.queries]
    titles = [t for i in task.instances for t in i.meta["supporting_titles"]][: args.queries]

    with tempfile.TemporaryDirectory(prefix="autoact-bench-") as home:
        index = CorpusIndex(corpus, Path(home))
        start = time.perf_counter()
        index.build(("bm25",))
        print(f"BM25 build (tokenise + index + save): {time.perf_counter() - start:.2f} s")
        reloaded = CorpusIndex(corpus, Path(home))
        start = time.perf_counter()
        reloaded.build(("bm25",))
        print(f"BM25 reload from disk: {(time.perf_counter() - start) * 1000:.1f} ms")
        reloaded.search(questions[0])  # warm-up
        print(f"Search (BM25, top 3): {_ms(_timed(lambda q: reloaded.search(q, k=3), questions))}")
        print(f"Retrieve (title match): {_ms(_timed(corpus.find, titles))}")
        misspelt = [t[:-1] + "x" if len(t) > 4 else t for t in titles]
        print(f"Retrieve (fuzzy title): {_ms(_timed(corpus.find, misspelt))}")
        unknown = [f"Unknown entity {n}" for n in range(min(50, len(titles)))]
        print(f"Retrieve miss (similar titles): {_ms(_timed(lambda e: (corpus.find(e), corpus.similar_titles(e)), unknown))}")

        if args.dense:
            import torch

            torch.set_num_threads(args.threads)
            start = time.perf_counter()
            index.build(("dense",))
            build = time.perf_counter() - start
            print(f"dense build (embed {len(corpus)} paragraphs with MiniLM, {args.threads} thread(s)): "
                  f"{build:.1f} s ({len(corpus) / build:.0f} paragraphs/s)")
            again = CorpusIndex(corpus, Path(home))
            start = time.perf_counter()
            again.build(("dense",))
            print(f"dense reload from disk: {(time.perf_counter() - start) * 1000:.1f} ms")
            again.search(questions[0], mode="dense")  # loads the encoder
            print(f"Search (dense, top 3, includes query embedding): "
                  f"{_ms(_timed(lambda q: again.search(q, k=3, mode='dense'), questions))}")
            print(f"Search (hybrid, top 3): {_ms(_timed(lambda q: again.search(q, k=3, mode='hybrid'), questions))}")
            hits_bm25 = sum(
                any(h.paragraph.title in i.meta["supporting_titles"] for h in again.search(i.question, k=3))
                for i in task.instances[: args.queries]
            )
            hits_dense = sum(
                any(h.paragraph.title in i.meta["supporting_titles"] for h in again.search(i.question, 3, "dense"))
                for i in task.instances[: args.queries]
            )
            n = min(args.queries, len(task.instances))
            print(f"questions with a supporting paragraph in the top 3: BM25 {hits_bm25}/{n}, dense {hits_dense}/{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
