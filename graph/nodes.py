"""Node logic shared by the ReAct and group graphs: start, the prelude of every
agent turn (:func:`begin_turn`), execute, finish, reflection, invalid outputs, the
context budget, usage accounting and finalize.

Node logic is ``async def logic(state, context, deps)`` (bound into a LangGraph node
by :func:`autoact.graph.calls.node`); blocking work runs in a thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Callable

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.types import Command

from autoact.prompts import builders, guides
from autoact.prompts.kinds import KINDS
from autoact.actions import FINISH, REFLECT, Action
from autoact.settings import BASE_MODEL_NAME
from autoact.usage import merge_usage

from .context import BaseContext
from .state import AgentState
from .calls import ContextOverflow, Deps, ask_model
from .environment import instance_dict
from .parsing import ParsedStep, parse_reflection

#: Longest observation kept in state (prompts show ``observation_chars`` of it).
MAX_STORED_OBSERVATION = 2000
#: Characters per token assumed before the server has reported any usage.
DEFAULT_CHARS_PER_TOKEN = 3.0
#: Tokens the chat template adds around each message.
TEMPLATE_TOKENS_PER_MESSAGE = 8


# ---- the question ---------------------------------------------------------------------
def message_text(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, list):  # content parts (chat UIs): keep the text ones
        content = " ".join(
            part.get("text", "") if isinstance(part, dict) else str(part) for part in content
        )
    return str(content or "").strip()


def last_question(messages: list[Any]) -> str:
    for message in reversed(messages or []):
        if getattr(message, "type", None) == "human":
            return message_text(message)
    return ""


# ---- task and tools ---------------------------------------------------------------------------
async def task_and_tools(context: BaseContext, deps: Deps):
    """(task, tool specs): loaded off the event loop the first time (data, corpus, index),
    then taken from the backend's cache in place (a thread hop costs more CPU than that)."""
    loaded = deps.backend.loaded(context)
    if loaded is not None:
        return loaded

    def load() -> tuple[Any, list[dict[str, str]]]:
        task = deps.backend.task(context)
        return task, deps.backend.tools(task, context)

    return await asyncio.to_thread(load)


def tool_names(tools: list[dict[str, str]]) -> list[str]:
    return [t["name"] for t in tools]


# ---- prompts in the context's format ------------------------------------------------------------
async def shows_examples(context: BaseContext, deps: Deps, role: str):
    """Whether the role's transcript prompt carries worked examples: by default only
    for the base model (a fine-tuned adapter was trained on prompts without them)."""
    if context.worked_examples != "auto":
        return context.worked_examples == "always"
    if deps.models.at_hand(role, context):  # no thread hop for a model already resolved
        name = deps.models.model_name(role, context)
    else:
        name = await asyncio.to_thread(lambda: deps.models.model_name(role, context))
    return name in (None, BASE_MODEL_NAME)


async def worked_examples(deps: Deps, task: Any, names: list[str], source: str):
    """The task's worked examples for these tools (text actions): from the backend's
    cache in place, made off the event loop the first time."""
    examples = deps.backend.cached_examples(task, names, source)
    if examples is None:
        examples = await asyncio.to_thread(lambda: deps.backend.examples(task, names, source))
    return examples


async def agent_prompt(kind: str, role: str, context: BaseContext, deps: Deps, task: Any, tools: list[dict[str, str]],
                 question: str, history: list, reflections: list, **extra: Any):
    """The prompt of one agent call: chat messages or a transcript, per the context."""
    if context.prompt_format == "chat":
        return KINDS[kind].chat_prompt(task.description, tools, question, history=history, reflections=reflections,
                                       obs_chars=context.observation_chars, **extra)
    examples: list = []
    if await shows_examples(context, deps, role):
        examples = await worked_examples(deps, task, tool_names(tools), context.example_source)
    return KINDS[kind].transcript_prompt(task.description, tools, question, history=history, reflections=reflections,
                                         examples=examples, obs_chars=context.observation_chars, **extra)


@dataclass
class Turn:
    """What an agent node holds before its model call: the offered tools (``{name,
    description, usage}``), the prompt and the episode's usage so far."""

    tools: list[dict[str, str]]
    prompt: list[dict[str, str]] | str
    usage: dict

    @property
    def names(self) -> list[str]:
        """The valid action names: the tools and Finish."""
        return builders.action_names(self.tools)


async def begin_turn(state: AgentState, context: BaseContext, deps: Deps, kind: str, *, role: str | None = None,
                     step_limit: bool = True, on_overflow: str = "context", max_tokens: int | None = None,
                     **extra: Any) -> Turn | Command:
    """The prelude every agent node shares: the step limit, the task and its tools, the
    prompt of ``kind`` in the context's format, and the context budget. A halt
    :class:`Command` (``max_steps``, or ``on_overflow`` when the prompt leaves no room
    to answer) where the episode cannot go on, else the :class:`Turn`. ``role``: whose
    model answers (default: the kind's sub-agent); ``extra`` goes to the builder."""
    steps = state.get("trajectory", [])
    if step_limit and len(steps) >= context.max_steps:
        return halt("max_steps")
    role = role or KINDS[kind].role
    task, tools = await task_and_tools(context, deps)
    prompt = await agent_prompt(kind, role, context, deps, task, tools, state["question"], steps,
                                state.get("reflections", []), **extra)
    usage = state.get("usage", {})
    if over_budget(prompt, usage, context, deps, role, max_tokens=max_tokens):
        return halt(on_overflow)
    return Turn(tools, prompt, usage)


def repeated(step: dict) -> bool:
    """Whether a step repeated an earlier action with the same result (the execute
    node then replaced its observation with the ``repeated`` note)."""
    note = builders.fragment("repeated", observation="").split(":")[0]
    return str(step.get("observation", "")).startswith(note)


def finish_forced(context: BaseContext, steps: list) -> bool:
    """The repeat guard: after an action that repeated an earlier one, the next step
    must be Finish (small models otherwise loop on ``Lookup[year]`` until the step
    limit, although the page they hold has the answer)."""
    return context.repeat_guard and bool(steps) and repeated(steps[-1])


def choices_of(state: AgentState) -> list[str] | None:
    instance = state.get("instance") or {}
    return list(instance.get("choices") or []) or None


# ---- start / execute / finalize ----------------------------------------------------------------
def start_logic(first: Callable[[BaseContext], str]):
    """The first node: reads the question, starts the environment, resets the episode
    (a chat thread's next turn starts a fresh episode; ``messages`` keep the chat)."""

    async def start(state: AgentState, context: BaseContext, deps: Deps):
        question = last_question(state.get("messages", []))
        data = state.get("instance") or None
        new_messages = []
        if not question and data and data.get("question"):
            question = str(data["question"]).strip()
            new_messages.append(HumanMessage(content=question))
        if not question:
            raise ValueError("no question: send a human message (or an instance with a question)")
        task, tools = await task_and_tools(context, deps)
        instance = deps.backend.instance(data, question)
        shown, env_state = await asyncio.to_thread(lambda: deps.backend.reset(task, tool_names(tools), instance))
        update = {
            "messages": new_messages,
            "instance": instance_dict(instance),
            "question": shown or question,
            "trajectory": [],
            "reflections": [],
            "answer": None,
            "reward": None,
            "score": None,
            "halt_reason": None,
            "usage": {},
            "env_state": env_state,
            "pending": None,
            "subgoals": [],
            "invalid_streak": 0,
        }
        return Command(goto=first(context), update=update)

    return start


def execute_logic(next_node: Callable[[BaseContext], str]):
    """Runs the pending action through the environment and appends the step."""

    async def execute(state: AgentState, context: BaseContext, deps: Deps):
        pending = state.get("pending")
        if not pending:
            raise RuntimeError("execute reached without a pending action")
        result, env_state = await env_step(state, context, deps, Action(pending["action"], pending["argument"]))
        observation = str(result.observation)[:MAX_STORED_OBSERVATION]
        if any(
            (s["action"], s["argument"], s["observation"]) == (pending["action"], pending["argument"], observation)
            for s in state.get("trajectory", [])
        ):
            # small models loop on one action; say so instead of repeating the page
            observation = builders.fragment("repeated", observation=builders.truncate(observation, 150))
        step = {**pending, "observation": observation}
        return Command(
            goto=next_node(context),
            update={"trajectory": [*state.get("trajectory", []), step], "env_state": env_state, "pending": None},
        )

    return execute


async def finalize_logic(state: AgentState, context: BaseContext, deps: Deps):
    """Appends the answer (or why there is none) to the chat as an AI message, and
    drops the episode's instance so that a thread's next turn does not inherit it."""
    answer = state.get("answer")
    text = answer if answer else builders.fragment("no_answer", reason=state.get("halt_reason") or "unknown")
    return {"messages": [AIMessage(content=text)], "instance": None}


async def env_step(state: AgentState, context: BaseContext, deps: Deps, action: Action):
    """``action`` on the episode's environment (restored from the state's snapshot), off
    the event loop: (its ``StepResult``, the new snapshot). The environment is the
    episode's one authority: it runs the tools, scores Finish and records Reflect."""
    task, tools = await task_and_tools(context, deps)
    return await asyncio.to_thread(
        lambda: deps.backend.step(task, tool_names(tools), state.get("env_state"), action)
    )


def halt(reason: str, update: dict | None = None) -> Command:
    return Command(goto="finalize", update={**(update or {}), "halt_reason": reason, "pending": None})


# ---- model calls: usage and budget -----------------------------------------------------------------
def prompt_chars(messages: list[dict[str, str]] | str) -> int:
    if isinstance(messages, str):
        return len(messages)
    return sum(len(m["content"]) for m in messages)


def record_usage(usage: dict, role: str, response: AIMessage, chars: int) -> dict:
    """``usage`` with one call of ``role`` added (its tokens from the response's usage metadata)."""
    meta = getattr(response, "usage_metadata", None) or {}
    return merge_usage(usage, {role: {
        "calls": 1,
        "prompt_tokens": int(meta.get("input_tokens", 0) or 0),
        "completion_tokens": int(meta.get("output_tokens", 0) or 0),
        "prompt_chars": chars if meta.get("input_tokens") else 0,
    }})


def estimated_tokens(messages: list[dict[str, str]], usage: dict) -> int:
    """Prompt tokens, estimated from the characters-per-token the server reported so far."""
    chars = sum(u.get("prompt_chars", 0) for u in usage.values())
    tokens = sum(u.get("prompt_tokens", 0) for u in usage.values())
    per_token = chars / tokens if chars and tokens else DEFAULT_CHARS_PER_TOKEN
    wrapped = 0 if isinstance(messages, str) else TEMPLATE_TOKENS_PER_MESSAGE * len(messages)
    return int(prompt_chars(messages) / per_token) + wrapped


def over_budget(messages: list[dict[str, str]], usage: dict, context: BaseContext, deps: Deps, role: str,
                max_tokens: int | None = None) -> bool:
    """Whether prompt plus generation would overflow the model's context."""
    budget = max_tokens or context.max_tokens or deps.models.settings.sampling_for(role).max_tokens
    return estimated_tokens(messages, usage) + budget > context.max_context_tokens


def response_text(response: AIMessage) -> str:
    return message_text(response)


def can_prefill(context: BaseContext, deps: Deps, role: str, messages: list[dict[str, str]] | str) -> bool:
    """Whether a call can start the answer with given text: a transcript prompt always
    can (the text is part of the prompt), a chat prompt where the server continues an
    opened assistant turn."""
    return context.prefill and (isinstance(messages, str) or deps.models.continues_prefills(role))


async def ask_step(context: BaseContext, deps: Deps, role: str, kind: str, messages: list[dict[str, str]] | str, usage: dict,
             parse: Callable[[str], ParsedStep], action_prefix: str = builders.ACTION, guide: str | None = None):
    """Ask for a ``Thought/Action`` step and parse it: (parsed or None on context
    overflow, usage). ``guide`` constrains the format on a vLLM server. Small models
    often stop after the thought; then the step is asked again with ``Thought: <their
    thought>\nAction:`` already written, so they only name the action (the text is
    still exactly the target format)."""
    response = await ask_model(context, deps, role, kind, messages, guide=guide)
    if isinstance(response, ContextOverflow):
        return None, usage
    usage = record_usage(usage, role, response, prompt_chars(messages))
    parsed = parse(response_text(response))
    if can_prefill(context, deps, role, messages) and parsed.error == "no_action" and parsed.thought:
        prefix = f"{builders.THOUGHT} {builders.one_line(parsed.thought)}\n{action_prefix}"
        response = await ask_model(context, deps, role, kind, messages, prefill=prefix)
        if isinstance(response, ContextOverflow):
            return None, usage
        usage = record_usage(usage, role, response, prompt_chars(messages))
        parsed = parse(response_text(response))
    return parsed, usage


async def ask_reflection(context: BaseContext, deps: Deps, role: str, kind: str, messages: list[dict[str, str]] | str, usage: dict):
    """Ask for ``Thought/Action: Reflect[...]``: (thought, verdict or None, usage). A
    reflection that stops after its thought is completed from ``Action: Reflect[``."""
    response = await ask_model(context, deps, role, kind, messages, guide=guides.reflection())
    if isinstance(response, ContextOverflow):
        return "", None, usage
    usage = record_usage(usage, role, response, prompt_chars(messages))
    thought, verdict = parse_reflection(response_text(response))
    if can_prefill(context, deps, role, messages) and verdict is None and thought:
        prefix = f"{builders.THOUGHT} {builders.one_line(thought)}\n{builders.ACTION} {builders.REFLECT}["
        response = await ask_model(context, deps, role, kind, messages, prefill=prefix)
        if not isinstance(response, ContextOverflow):
            usage = record_usage(usage, role, response, prompt_chars(messages))
            _, verdict = parse_reflection(response_text(response))
    return thought, verdict, usage


# ---- invalid outputs, Finish, reflection --------------------------------------------------------------
def invalid_step(
    state: AgentState, context: BaseContext, parsed: ParsedStep, names: list[str], usage: dict, retry: str,
    *, plan_format: bool = False, usage_text: str = "",
) -> Command:
    """Record an output that is not a usable step, with an observation that says why,
    and try again, or halt after ``max_invalid`` in a row."""
    actions = ", ".join(names)
    if parsed.error == "unknown_action":
        observation = builders.fragment("unknown_action", action=parsed.action or "?", actions=actions)
    elif parsed.error in ("empty", "no_action"):
        observation = builders.fragment("invalid_plan" if plan_format else "invalid_react", actions=actions)
    else:  # a valid action whose argument is missing
        observation = builders.fragment("empty_argument", action=parsed.action, usage=usage_text)
    step = {"thought": parsed.thought, "action": parsed.action, "argument": parsed.argument, "observation": observation}
    streak = int(state.get("invalid_streak", 0)) + 1
    update = {
        "trajectory": [*state.get("trajectory", []), step],
        "usage": usage,
        "invalid_streak": streak,
        "pending": None,
    }
    if streak >= context.max_invalid:
        return halt("parse_error", update)
    if len(update["trajectory"]) >= context.max_steps:
        return halt("max_steps", update)
    return Command(goto=retry, update=update)


async def finish(state: AgentState, context: BaseContext, deps: Deps, thought: str, answer: str, usage: dict,
                 reflect_node: str):
    """Record the Finish step with the environment's score of the answer (None without
    a gold answer), and go on to reflection (or end, with reflection off)."""
    step = {"thought": thought, "action": FINISH, "argument": answer, "observation": ""}
    result, env_state = await env_step(state, context, deps, Action(FINISH, answer))
    scored = result.info.get("score")
    update = {
        "trajectory": [*state.get("trajectory", []), step],
        "env_state": env_state,
        "answer": answer,
        "score": scored,
        "reward": scored.get("reward") if scored else None,
        "usage": usage,
        "invalid_streak": 0,
        "pending": None,
        "subgoals": [],
    }
    if not context.reflect:
        return halt("finish", update)
    return Command(goto=reflect_node, update=update)


async def after_reflection(state: AgentState, context: BaseContext, deps: Deps, thought: str, verdict: str | None,
                           usage: dict, retry: str) -> Command:
    """Record the verdict in the environment (``Reflect[wrong]`` reopens the episode)
    and end on ``right``; on ``wrong`` retry while retries and steps are left. An
    unreadable verdict records no reflection and lets the answer stand."""
    if verdict is None:
        return halt("finish", {"usage": usage})
    _, env_state = await env_step(state, context, deps, Action(REFLECT, verdict))
    reflections = [*state.get("reflections", []), {"thought": thought, "verdict": verdict}]
    update = {"reflections": reflections, "usage": usage, "env_state": env_state}
    if verdict == "right":
        return halt("finish", update)
    wrong = sum(1 for r in reflections if r["verdict"] == "wrong")
    if wrong > context.max_reflections:
        return halt("max_reflections", update)
    if len(state.get("trajectory", [])) >= context.max_steps:
        return halt("max_steps", update)
    return Command(goto=retry, update=update)
