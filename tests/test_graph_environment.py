"""The graphs' task cache: a context may name several data files (HotpotQA's easy and
medium files in one learning run)."""

from autoact.graph.context import GroupContext, ReactContext
from autoact.graph.environment import Backend


def test_a_task_with_several_data_files_is_loaded_once():
    calls = []

    def load_task(name, data=None, corpus=None):
        calls.append((name, data, corpus))
        return object()

    backend = Backend(load_task=load_task)
    files = ["easy.jsonl", "medium.jsonl"]
    context = ReactContext(task="hotpotqa", data=files)
    first = backend.task(context)
    assert backend.task(ReactContext(task="hotpotqa", data=list(files))) is first
    assert calls == [("hotpotqa", files, None)]
    # one file and the other order are other tasks
    assert backend.task(ReactContext(task="hotpotqa", data="easy.jsonl")) is not first
    assert backend.task(GroupContext(task="hotpotqa", data=files[::-1])) is not first
    assert len(calls) == 3
