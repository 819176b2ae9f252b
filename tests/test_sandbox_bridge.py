"""The sandbox's tool bridge: a cell calls the caller's tools as functions, and
nothing the cell writes on the bridge's pipes raises in the caller, calls an
unregistered tool, or outlives the cell's bounds."""

from __future__ import annotations

import json
import threading
import time

import pytest

from autoact.tools.sandbox import PythonSandbox, SandboxLimits, run_python

LIMITS = SandboxLimits(cpu_s=3, wall_s=10, memory_mb=512, file_mb=1, tool_calls=5, tool_argument_chars=100,
                       tool_answer_chars=300)

#: Cell code that finds the bridge's descriptors the way hostile code would: through
#: the tool function's closure (a cell can also scan its descriptors).
FIND_FDS = (
    "import os, json\n"
    "bridge = next(c.cell_contents for c in retrieve.__closure__ if hasattr(c.cell_contents, 'request_fd'))\n"
    "REQ, RESP = bridge.request_fd, bridge.response_fd\n"
    "def answer():\n"
    "    data = b''\n"
    "    while not data.endswith(b'\\n'):\n"
    "        data += os.read(RESP, 65536)\n"
    "    return json.loads(data)\n"
)


class Recorder:
    """Tools that record their calls (thread-safe: the sandbox calls them from a worker)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def tool(self, name: str, answer=lambda argument: f"<{argument}>"):
        def fn(argument: str) -> str:
            with self.lock:
                self.calls.append((name, argument))
            return answer(argument)

        return fn

    def tools(self) -> dict:
        return {"retrieve": self.tool("retrieve", lambda a: f"page of {a}"),
                "lookup": self.tool("lookup", lambda a: f"sentence with {a}")}


def test_a_cell_calls_two_tools_in_a_loop():
    recorder = Recorder()
    code = ("found = []\nfor name in ['Velmora', 'Ostrand']:\n"
            "    found.append(retrieve(name) + ' | ' + lookup('founded'))\nprint(found[1])\nlen(found)")
    result = run_python(code, limits=LIMITS, tools=recorder.tools())
    assert result.status == "ok", result.observation()
    assert result.observation() == "page of Ostrand | sentence with founded\nOut: 2"
    assert recorder.calls == [("retrieve", "Velmora"), ("lookup", "founded"),
                              ("retrieve", "Ostrand"), ("lookup", "founded")]
    assert [c["tool"] for c in result.tool_calls] == ["retrieve", "lookup", "retrieve", "lookup"]
    assert result.tool_calls[0] == {"tool": "retrieve", "argument": "Velmora", "answer": "page of Velmora"}


def test_non_string_arguments_are_sent_as_text_and_a_missing_one_as_empty():
    recorder = Recorder()
    result = run_python("retrieve(1802), lookup()", limits=LIMITS, tools=recorder.tools())
    assert result.value == "('page of 1802', 'sentence with ')" and recorder.calls[0] == ("retrieve", "1802")


def test_an_unregistered_name_is_not_callable():
    recorder = Recorder()
    result = run_python("search('lighthouse')", limits=LIMITS, tools=recorder.tools())
    assert result.status == "error" and "NameError: name 'search' is not defined" in result.error
    assert recorder.calls == []


def test_a_request_for_an_unregistered_tool_written_to_the_pipe_is_refused():
    recorder = Recorder()
    code = FIND_FDS + ("os.write(REQ, json.dumps({'id': 7, 'tool': 'shell', 'argument': 'ls'}).encode() + b'\\n')\n"
                       "answer()")
    result = run_python(code, limits=LIMITS, tools=recorder.tools())
    assert result.status == "ok", result.observation()
    assert result.value.startswith("{'id': 7, 'ok': False, 'error': \"unknown tool 'shell'")
    assert recorder.calls == [] and result.tool_calls == []


@pytest.mark.parametrize("line, problem", [
    (b"garbage", "not valid JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b"[" * 2000, "not valid JSON"),  # too deep to decode (RecursionError)
    (b'{"id": 1, "tool": "retrieve", "argument": "' + b"9" * 150 + b'"}', "longer than 100 characters"),
    (b'{"id": 1, "tool": "retrieve", "argument": "' + b"9" * 5000 + b'"}', "longer than 2224 bytes"),
    (b'{"id": "x", "tool": "retrieve", "argument": "a"}', "no integer id"),
    (b'{"id": 1e999, "tool": "retrieve", "argument": "a"}', "no integer id"),
    (b'{"id": 1, "tool": "retrieve", "argument": 5}', "must be a string"),
    (b'{"id": 1, "tool": ["retrieve"], "argument": "a"}', "unknown tool"),
    (b"", "not valid JSON"),
])
def test_garbage_on_the_request_pipe_gets_an_error_answer_and_the_bridge_keeps_working(line, problem):
    recorder = Recorder()
    code = FIND_FDS + f"os.write(REQ, {line!r} + b'\\n')\nrefused = answer()\nrefused, retrieve('Velmora')"
    result = run_python(code, limits=LIMITS, tools=recorder.tools())
    assert result.status == "ok", result.observation()
    assert problem in result.value and "'ok': False" in result.value and "'page of Velmora'" in result.value
    assert recorder.calls == [("retrieve", "Velmora")]


def test_an_overlong_request_line_stops_the_cell():
    code = FIND_FDS + f"os.write(REQ, b'x' * {LIMITS.tool_request_bytes + 70_000})\nimport time\ntime.sleep(30)"
    started = time.monotonic()
    result = run_python(code, limits=LIMITS, tools=Recorder().tools())
    assert result.status == "tool-limit" and "ToolLimitError: a tool request was longer than" in result.error
    assert time.monotonic() - started < 8


def test_an_overlong_argument_is_refused_in_the_cell():
    recorder = Recorder()
    result = run_python("retrieve('x' * 101)", limits=LIMITS, tools=recorder.tools())
    assert result.status == "error" and "ValueError: retrieve(): the argument has 101 characters" in result.error
    assert recorder.calls == []


def test_more_calls_than_the_bound_stop_with_a_clear_error():
    recorder = Recorder()
    result = run_python("for i in range(20):\n    retrieve(str(i))", limits=LIMITS, tools=recorder.tools())
    assert result.status == "error" and "ToolLimitError: more than 5 tool calls in one cell" in result.error
    assert len(recorder.calls) == 5


def test_a_request_flood_on_the_pipe_is_stopped_by_the_caller():
    recorder = Recorder()
    request = json.dumps({"id": 1, "tool": "retrieve", "argument": "a"}).encode() + b"\n"
    code = FIND_FDS + f"os.write(REQ, {request!r} * 200)\nimport time\ntime.sleep(30)"
    started = time.monotonic()
    result = run_python(code, limits=LIMITS, tools=recorder.tools())
    assert result.status == "tool-limit" and "ToolLimitError: more than 5 tool calls in a cell" in result.error
    assert len(recorder.calls) == 5 and time.monotonic() - started < 8


def test_a_tool_that_raises_becomes_an_error_string_in_the_cell():
    def broken(argument: str) -> str:
        raise KeyError(argument)

    result = run_python("text = retrieve('Velmora')\nprint(type(text).__name__, text)", limits=LIMITS,
                        tools={"retrieve": broken})
    assert result.status == "ok" and result.stdout.strip() == "str retrieve failed: KeyError: 'Velmora'"


def test_long_answers_are_cut_to_the_bound():
    result = run_python("len(retrieve('a'))", limits=LIMITS, tools={"retrieve": lambda a: "x" * 10_000})
    assert result.ok and LIMITS.tool_answer_chars <= int(result.value) < LIMITS.tool_answer_chars + 40


def test_the_deadline_holds_while_a_tool_sleeps():
    release = threading.Event()

    def slow(argument: str) -> str:
        release.wait(20)
        return "late"

    started = time.monotonic()
    result = run_python("retrieve('Velmora')", limits=SandboxLimits(cpu_s=2, wall_s=1.5), tools={"retrieve": slow})
    elapsed = time.monotonic() - started
    release.set()
    assert result.status == "timeout" and "waiting for the tool retrieve" in result.error
    assert elapsed < 5


def test_replayed_cells_call_tools_again_but_only_the_new_cells_calls_are_reported():
    recorder = Recorder()
    session = PythonSandbox(LIMITS, tools=recorder.tools())
    first = session.run("page = retrieve('Velmora')")
    assert first.ok and [c["argument"] for c in first.tool_calls] == ["Velmora"]
    second = session.run("print(page)\nlookup('harbour')")
    assert second.ok, second.observation()
    assert second.observation() == "page of Velmora\nOut: 'sentence with harbour'"
    assert recorder.calls == [("retrieve", "Velmora"), ("retrieve", "Velmora"), ("lookup", "harbour")]
    assert [(c["tool"], c["argument"]) for c in second.tool_calls] == [("lookup", "harbour")]


def test_the_bound_covers_each_replayed_cell():
    """Every replayed cell may use its own calls: five cells of five calls each replay fine."""
    recorder = Recorder()
    session = PythonSandbox(LIMITS, tools=recorder.tools())
    for n in range(3):
        result = session.run(f"v{n} = [retrieve(str(i)) for i in range(5)]")
        assert result.ok, result.observation()
    assert len(recorder.calls) == 5 + 10 + 15


def test_tool_names_must_be_identifiers():
    with pytest.raises(ValueError, match="identifier"):
        PythonSandbox(LIMITS, tools={"not a name": str})
    with pytest.raises(ValueError, match="identifier"):
        run_python("1", limits=LIMITS, tools={"class": str})
