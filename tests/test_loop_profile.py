"""The loop profiler of benchmarks/loop_cpu.py: categories, C-function attribution,
and worker threads included."""

import sys
import threading
import time
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
loop_cpu = pytest.importorskip("loop_cpu")


def test_files_fall_into_the_category_of_their_module():
    repo = loop_cpu.REPO
    site = repo / ".venv" / "lib" / "python3.11" / "site-packages"
    assert loop_cpu.category(str(repo / "graph" / "parsing.py")) == "parsing (actions, replies)"
    assert loop_cpu.category(str(repo / "graph" / "nodes.py")) == "graph nodes and model calls"
    assert loop_cpu.category(str(repo / "prompts" / "builders.py")) == "prompt building"
    assert loop_cpu.category(str(site / "openai" / "_base_client.py")) == "HTTP client (openai, httpx)"
    assert loop_cpu.category(str(site / "langgraph" / "pregel" / "main.py")) == "LangGraph runtime"
    assert loop_cpu.category(str(site / "uuid_utils" / "x.py")) == "other packages (uuid_utils)"
    assert loop_cpu.category("/usr/lib/python3.11/typing.py").startswith("standard library")
    assert loop_cpu.category("<frozen abc>").startswith("standard library")


def test_a_c_function_is_charged_to_its_callers_in_proportion():
    repo = loop_cpu.REPO
    parse = (str(repo / "graph" / "parsing.py"), 1, "parse")
    build = (str(repo / "prompts" / "builders.py"), 1, "build")

    class FakeStats:
        # pstats layout: (file, line, name) -> (primitive calls, calls, self, cumulative, callers)
        stats = {
            parse: (1, 1, 0.5, 1.0, {}),
            build: (1, 1, 0.25, 0.5, {}),
            ("~", 0, "<built-in method builtins.isinstance>"): (
                9, 9, 0.9, 0.9, {parse: (6, 6, 0.6, 0.6), build: (3, 3, 0.3, 0.3)}),
        }

    seconds = loop_cpu.split_by_category(FakeStats())
    assert seconds["parsing (actions, replies)"] == pytest.approx(0.5 + 0.6)
    assert seconds["prompt building"] == pytest.approx(0.25 + 0.3)
    assert sum(seconds.values()) == pytest.approx(0.5 + 0.25 + 0.9)


def _busy_in_a_worker() -> None:
    end = time.thread_time() + 0.05
    while time.thread_time() < end:
        pass


def test_the_profile_sees_cpu_spent_in_worker_threads():
    with loop_cpu.AllThreadsProfile() as profiler:
        worker = threading.Thread(target=_busy_in_a_worker)
        worker.start()
        worker.join()
    stats = profiler.stats()
    # cumulative: the loop's own time plus the thread_time() calls it makes (a C function)
    spent = [v[3] for (f, _l, name), v in stats.stats.items() if name == "_busy_in_a_worker"]
    assert len(profiler.profiles) == 2
    assert spent and spent[0] > 0.04
