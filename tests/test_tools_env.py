"""The task environment: episodes, malformed actions, Finish/Reflect, snapshots."""

import json

import pytest

from autoact.actions import Action
from autoact.tools.env import TaskEnv
from autoact.tools.sandbox import SandboxLimits
from autoact.tools.tasks import TaskInstance, load_task


@pytest.fixture(scope="module")
def task():
    return load_task("demo")


@pytest.fixture
def env(task, tmp_path):
    return TaskEnv(task, ["Retrieve", "Lookup", "Search", "Python"], home=tmp_path,
                   sandbox_limits=SandboxLimits(cpu_s=2, wall_s=6))


def test_single_hop_episode(env, task):
    question = env.reset(task.get("demo-005"))
    assert question == "Who founded Velmora?"
    step = env.step("Retrieve[Velmora]")
    assert "Ida Brann" in step.observation and step.reward == 0.0 and not step.done
    final = env.step("Finish[Ida Brann]")
    assert final.done and final.reward == 1.0
    assert final.info["score"]["em"] == 1.0 and final.info["gold"] == "Ida Brann"


def test_partial_credit_is_token_f1(env, task):
    env.reset("demo-005")  # by id
    final = env.step("Finish[the navigator Ida Brann]")
    assert final.reward == pytest.approx(0.8) and final.info["score"]["em"] == 0.0


@pytest.mark.parametrize(
    "action,kind",
    [
        ("Retrieve Velmora", "no-brackets"),
        ("Retrieve[Velmora", "unclosed-bracket"),
        ("Retrieve[]", "empty-argument"),
        ("Wikipedia[Velmora]", "unknown-action"),
        ("Calculator[1+1]", "unknown-action"),  # in the library, not enabled here
        ("", "empty"),
        (None, "empty"),
        ("Reflect[right]", "reflect-before-finish"),
    ],
)
def test_malformed_actions_are_observations(env, task, action, kind):
    env.reset(task.instances[0])
    step = env.step(action)
    assert not step.done and step.info["error"] == kind
    assert step.observation.startswith("Invalid action:")
    for usage in ("Retrieve[entity]", "Lookup[keyword]", "Search[query]", "Python[code]", "Finish[answer]"):
        assert usage in step.observation
    assert env.step("Retrieve[Velmora]").observation.startswith("Velmora is")  # the episode goes on


def test_tool_failure_is_an_observation(env, task, monkeypatch):
    env.reset(task.instances[0])

    def broken(self, argument):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(type(env.tools["Search"]), "act", broken)
    step = env.step("Search[anything]")
    assert step.info["error"] == "tool-error" and "disk on fire" in step.observation and not step.done


def test_reflect_right_closes_and_wrong_reopens(env, task):
    env.reset("demo-005")
    env.step("Finish[Harrowby]")
    blocked = env.step("Retrieve[Velmora]")
    assert blocked.done and "only Reflect" in blocked.observation
    bad = env.step("Reflect[maybe]")
    assert bad.info["error"] == "bad-verdict"
    wrong = env.step("Reflect[wrong]")
    assert not wrong.done and wrong.reward == 0.0 and wrong.info["verdict"] == "wrong"
    assert env.step("Retrieve[Velmora]").observation.startswith("Velmora is")
    again = env.step("Finish[Ida Brann]")
    assert again.done and again.reward == 1.0
    right = env.step("Reflect[right]")
    assert right.done and right.reward == 1.0 and env.verdicts == ["wrong", "right"]


def test_chat_question_without_gold(env):
    question = env.reset({"question": "Who built the Saltmarch Bridge?"})
    assert question == "Who built the Saltmarch Bridge?"
    env.step("Retrieve[Saltmarch Bridge]")
    final = env.step("Finish[Oskar Vellin]")
    assert final.done and final.reward is None and final.info["score"] is None


def test_multiple_choice_custom_instance(task, tmp_path):
    env = TaskEnv(task, [], home=tmp_path)
    env.reset(TaskInstance("mc", "Capital?\nOptions: (A) Velmora (B) Dunmere", "Velmora", ["Velmora", "Dunmere"]))
    assert env.step("Finish[A]").reward == 1.0
    env.reset(TaskInstance("mc", "Capital?\nOptions: (A) Velmora (B) Dunmere", "Velmora", ["Velmora", "Dunmere"]))
    final = env.step("Finish[Dunmere]")
    assert final.reward == 0.0 and final.info["score"]["acc"] == 0.0


def test_snapshot_rebuilds_the_episode(env, task, tmp_path):
    env.reset("demo-005")
    env.step("Retrieve[Velmora]")
    env.step("Lookup[harbour]")
    env.step("Python[seen = ['Velmora']]")
    state = json.loads(json.dumps(env.get_state()))  # must survive JSON
    rebuilt = TaskEnv.from_state(task, state, home=tmp_path)
    assert rebuilt.step("Lookup[harbour]").observation.startswith("(Result 2 / 3)")
    assert rebuilt.step("Python[seen[0]]").observation == "Out: 'Velmora'"
    assert rebuilt.steps == 5 and rebuilt.instance.id == "demo-005"
    final = rebuilt.step("Finish[Ida Brann]")
    state = rebuilt.get_state()
    again = TaskEnv(task, ["Retrieve", "Lookup", "Search", "Python"], home=tmp_path)
    again.set_state(state)
    assert again.done and again.reward == final.reward == 1.0
    assert again.step("Reflect[right]").info["verdict"] == "right"


def test_snapshot_of_other_setup_is_refused(env, task, tmp_path):
    env.reset("demo-005")
    state = env.get_state()
    with pytest.raises(ValueError, match="tools"):
        TaskEnv(task, ["Retrieve"], home=tmp_path).set_state(state)


def test_step_before_reset_and_unknown_tools(task, tmp_path):
    env = TaskEnv(task, home=tmp_path)
    assert env.tool_names == task.default_tools
    assert env.step("Retrieve[x]").info["error"] == "no-episode"
    with pytest.raises(ValueError, match="unknown tools"):
        TaskEnv(task, ["Teleport"])


def test_act_takes_an_action_already_read(env, task):
    """The graphs hand over the action they parsed: no second reading of its text, so
    an argument with brackets of its own reaches the tool whole."""
    env.reset("demo-005")
    calculated = env.act(Action("Python", "print([1, 2][1])"))
    assert calculated.observation.strip() == "2" and not calculated.done
    unknown = env.act(Action("Calculator", "1+1"))  # not among this environment's tools
    assert unknown.info["error"] == "unknown-action"
    final = env.act(Action("finish", "Ida Brann"))  # a name in any case, as the parser forgives
    assert final.done and final.reward == 1.0 and env.steps == 3
