"""What the graphs' nodes share: their dependencies, and the model call.

Every node is a plain ``async def`` LangGraph node ``(state, runtime)``; :func:`node`
binds a node function ``logic(state, context, deps)`` to the graph's :class:`Deps`
(the role models, the task backend, the context schema) and reads the run's typed
context from the runtime. Blocking work (loading a task, an environment step, the
sandbox) runs in a thread (``asyncio.to_thread``), so that synthesis and evaluation
run many episodes concurrently on one event loop. :func:`call_model` sends one
:class:`ModelCall` (chat messages or a transcript) and returns the whole answer, or a
:class:`ContextOverflow` when the server refuses the prompt as too long.

Sync callers run a graph with ``asyncio.run(graph.ainvoke(...))``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import openai
from langchain_core.language_models import BaseLLM
from langchain_core.messages import AIMessage, convert_to_messages
from langchain_core.runnables import ensure_config
from langchain_openai.chat_models.base import BaseChatOpenAI
from langgraph.runtime import Runtime

from autoact.prompts.kinds import KINDS

from .context import BaseContext
from .environment import Backend
from .models import ModelResolver


@dataclass
class ModelCall:
    """Ask the model of ``role`` for a reply to ``messages``: chat messages (builder
    output, sent to ``/v1/chat/completions``) or a transcript prompt (one text, sent
    to ``/v1/completions``, see :mod:`autoact.prompts.transcript`). ``kind`` picks the
    stop sequences and the opening the answer starts with. ``guide``: a regular
    expression the continuation must match (vLLM structured outputs)."""

    role: str
    kind: str
    messages: list[dict[str, str]] | str
    max_tokens: int | None = None
    prefill: str | None = None  # None: the kind's (prompts.kinds: chat_prefill / opening)
    guide: str | None = None

    @property
    def transcript(self) -> bool:
        return isinstance(self.messages, str)


@dataclass
class ContextOverflow:
    """The server refused the prompt as longer than the model's context."""

    message: str


@dataclass
class Deps:
    """What a graph's nodes are built with: the role models, the task backend and the
    graph's context schema."""

    models: ModelResolver
    backend: Backend
    context_schema: type[BaseContext]


#: A node's logic: ``async def logic(state, context, deps) -> Command | dict``.
Logic = Callable[[dict, BaseContext, Deps], Awaitable[Any]]


def _is_context_error(exc: openai.BadRequestError) -> bool:
    text = str(exc).lower()
    return "context length" in text or "maximum context" in text or "too long" in text or "max_model_len" in text


def context_of(runtime: Runtime | None, deps: Deps) -> BaseContext:
    """The run's context as the graph's typed schema (a dict from Studio or a test is
    validated into it; no context at all is the schema's defaults)."""
    context = getattr(runtime, "context", None)
    if context is None:
        return deps.context_schema()
    if isinstance(context, dict):
        return deps.context_schema(**context)
    return context


def _prepare(call: ModelCall, context: BaseContext, deps: Deps):
    """(model, input, call options, opening). Chat: with prefill on, the assistant turn
    is opened with the kind's prefill text and the server continues it. Transcript:
    the prompt already ends with the kind's opening; a ``prefill`` replaces it."""
    if call.transcript:
        return _prepare_transcript(call, context, deps)
    model = deps.models.get(call.role, context)
    kwargs = deps.models.call_kwargs(call.role, context, list(KINDS[call.kind].chat_stops), call.max_tokens)
    messages = convert_to_messages(call.messages)
    prefill = None
    if context.prefill and deps.models.continues_prefills(call.role):
        prefill = call.prefill if call.prefill is not None else KINDS[call.kind].chat_prefill
    extra = dict(getattr(model, "extra_body", None) or {})
    if prefill:
        messages.append(AIMessage(content=prefill))
        extra.update(add_generation_prompt=False, continue_final_message=True)
    if call.guide and context.structured and deps.models.takes_structured_outputs(call.role):
        extra["structured_outputs"] = {"regex": call.guide}
    if extra and isinstance(model, BaseChatOpenAI):
        kwargs["extra_body"] = extra
    return model, messages, kwargs, prefill


def _prepare_transcript(call: ModelCall, context: BaseContext, deps: Deps):
    model = deps.models.get_completion(call.role, context)
    kind = KINDS[call.kind]
    kwargs = deps.models.call_kwargs(call.role, context, list(kind.transcript_stops), call.max_tokens)
    opening = kind.opening
    prompt = call.messages
    if call.prefill is not None:
        if not prompt.endswith(opening):
            raise ValueError(f"a {call.kind} transcript prompt must end with {opening!r}")
        prompt, opening = prompt[: len(prompt) - len(opening)] + call.prefill, call.prefill
    if call.guide and context.structured and deps.models.takes_structured_outputs(call.role):
        kwargs["extra_body"] = {**(getattr(model, "extra_body", None) or {}),
                                "structured_outputs": {"regex": call.guide}}
    return model, prompt, kwargs, opening


def _traced() -> dict[str, Any]:
    """The running node's callbacks, tags and metadata for a ``generate`` call, which,
    unlike ``invoke``, does not read them from the context: without them LangGraph's
    event stream (Studio) and tracing would not see the completion calls."""
    config = ensure_config()
    return {key: config.get(key) for key in ("callbacks", "tags", "metadata", "run_name")}


def _complete(message: Any, prefill: str | None) -> AIMessage:
    """The whole answer: the prefill (or the transcript's opening) plus the
    continuation, unless the model wrote the prefill again itself."""
    ai = _as_ai(message)
    if prefill:
        text = str(ai.content or "")
        if not text.lstrip().startswith(prefill):
            ai = ai.model_copy(update={"content": prefill + text})
    return ai


async def call_model(call: ModelCall, context: BaseContext, deps: Deps) -> AIMessage | ContextOverflow:
    """Send one call to the role's model; the whole answer (prefill included), or
    :class:`ContextOverflow` when the server refuses the prompt as too long."""
    # resolving the model may ask the server for its model list (blocking I/O):
    # keep it off the event loop, which `langgraph dev` rightly refuses to block
    if deps.models.at_hand(call.role, context):
        model, messages, kwargs, prefill = _prepare(call, context, deps)
    else:
        model, messages, kwargs, prefill = await asyncio.to_thread(_prepare, call, context, deps)
    try:
        if call.transcript and isinstance(model, BaseLLM):
            return _complete(completion_message(await model.agenerate([messages], **_traced(), **kwargs)), prefill)
        # a chat model given a transcript (an injected test model) reads it as one user turn
        return _complete(await model.ainvoke(messages, **kwargs), prefill)
    except openai.BadRequestError as exc:
        if _is_context_error(exc):
            return ContextOverflow(str(exc))
        raise


async def ask_model(context: BaseContext, deps: Deps, role: str, kind: str, messages: list[dict[str, str]] | str,
                    **options: Any) -> AIMessage | ContextOverflow:
    """:func:`call_model` of ``ModelCall(role, kind, messages, **options)``."""
    return await call_model(ModelCall(role, kind, messages, **options), context, deps)


def completion_message(result: Any) -> AIMessage:
    """A completions result (LangChain ``LLMResult``) as an AI message with usage."""
    text = result.generations[0][0].text
    usage = (result.llm_output or {}).get("token_usage") or {}
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    meta = {"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion}
    return AIMessage(content=text, usage_metadata=meta if usage else None)


def _as_ai(message: Any) -> AIMessage:
    if isinstance(message, AIMessage):
        return message
    return AIMessage(content=getattr(message, "content", str(message)))


def node(logic: Logic, deps: Deps) -> Callable[..., Awaitable[Any]]:
    """``logic`` as a LangGraph node: ``async (state, runtime)``, with the run's context
    typed and the graph's dependencies bound."""

    async def run(state: dict, runtime: Runtime) -> Any:
        return await logic(state, context_of(runtime, deps), deps)

    run.__name__ = run.__qualname__ = getattr(logic, "__name__", "node")
    return run
