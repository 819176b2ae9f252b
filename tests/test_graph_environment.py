"""The graphs' backend: the task cache (a context may name several data files, HotpotQA's
easy and medium files in one learning run) and the environment as the episode's authority."""

from autoact.actions import FINISH, REFLECT, Action
from autoact.graph.context import GroupContext, ReactContext
from autoact.graph.environment import Backend

from graph_fakes import GOLD, QUESTION, fake_backend


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


def test_the_environment_scores_finish_and_records_reflect():
    """One episode authority: the backend's environment scores the answer and keeps the
    verdicts, in the snapshot the graph carries."""
    backend = fake_backend()
    context = ReactContext(task="fake")
    task = backend.task(context)
    _, snapshot = backend.reset(task, ["Retrieve"], backend.instance(GOLD, QUESTION))
    seen, snapshot = backend.step(task, ["Retrieve"], snapshot, Action("Retrieve", "Paris"))
    assert seen.observation.startswith("Paris")
    finished, snapshot = backend.step(task, ["Retrieve"], snapshot, Action(FINISH, "Seine"))
    assert finished.done and finished.info["score"] == {"reward": 1.0, "em": 1.0}
    _, snapshot = backend.step(task, ["Retrieve"], snapshot, Action(REFLECT, "wrong"))
    assert snapshot["answer"] == "Seine" and snapshot["verdicts"] == ["wrong"]
    # the no-tool baselines score through the same environment
    assert backend.score(task, backend.instance(GOLD, QUESTION), "Loire") == {"reward": 0.0, "em": 0.0}
    assert backend.score(task, backend.instance(None, QUESTION), "Seine") is None
