"""Nodes written once, run both synchronously and asynchronously.

A node's logic is a generator (or a plain function, for nodes that need nothing): it yields what it needs from the outside world — a
:class:`ModelCall` or :class:`Blocking` work (the environment, loading a task) —
receives the result, and finally returns the node's ``Command``. :func:`dual_node`
turns it into a runnable with a sync driver (``graph.invoke``: calls in place) and
an async driver (``graph.ainvoke``: awaits the model, runs blocking work in a
thread), so synthesis and evaluation can run many episodes concurrently with
asyncio while the CLI and tests simply call ``invoke``.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Generator

import openai
from langchain_core.language_models import BaseLLM
from langchain_core.messages import AIMessage, convert_to_messages
from langchain_core.runnables import RunnableLambda, ensure_config
from langchain_openai.chat_models.base import BaseChatOpenAI
from langgraph.runtime import get_runtime

from autoact.prompts.builders import PREFILLS, STOP_SEQUENCES
from autoact.prompts.transcript import OPENINGS
from autoact.prompts.transcript import STOPS as TRANSCRIPT_STOPS

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
    prefill: str | None = None  # None: the kind's prefill (builders.PREFILLS / transcript.OPENINGS)
    guide: str | None = None

    @property
    def transcript(self) -> bool:
        return isinstance(self.messages, str)


@dataclass
class Blocking:
    """Synchronous work (environment steps, task loading): a thread under asyncio."""

    fn: Callable[[], Any]


@dataclass
class ContextOverflow:
    """The server refused the prompt as longer than the model's context."""

    message: str


@dataclass
class Deps:
    models: ModelResolver
    backend: Backend
    context_schema: type[BaseContext]


Logic = Callable[[dict, BaseContext, Deps], Generator[Any, Any, Any]]


def _is_context_error(exc: openai.BadRequestError) -> bool:
    text = str(exc).lower()
    return "context length" in text or "maximum context" in text or "too long" in text or "max_model_len" in text


def current_context(deps: Deps) -> BaseContext:
    runtime = get_runtime()
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
    kwargs = deps.models.call_kwargs(call.role, context, STOP_SEQUENCES[call.kind], call.max_tokens)
    messages = convert_to_messages(call.messages)
    prefill = (call.prefill if call.prefill is not None else PREFILLS.get(call.kind)) if context.prefill else None
    extra = dict(getattr(model, "extra_body", None) or {})
    if prefill:
        messages.append(AIMessage(content=prefill))
        extra.update(add_generation_prompt=False, continue_final_message=True)
    if call.guide and context.structured and deps.models.serves(call.role):
        extra["structured_outputs"] = {"regex": call.guide}
    if extra and isinstance(model, BaseChatOpenAI):
        kwargs["extra_body"] = extra
    return model, messages, kwargs, prefill


def _prepare_transcript(call: ModelCall, context: BaseContext, deps: Deps):
    model = deps.models.get_completion(call.role, context)
    kwargs = deps.models.call_kwargs(call.role, context, TRANSCRIPT_STOPS[call.kind], call.max_tokens)
    opening = OPENINGS[call.kind]
    prompt = call.messages
    if call.prefill is not None:
        if not prompt.endswith(opening):
            raise ValueError(f"a {call.kind} transcript prompt must end with {opening!r}")
        prompt, opening = prompt[: len(prompt) - len(opening)] + call.prefill, call.prefill
    if call.guide and context.structured and deps.models.serves(call.role):
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


def _run_sync(request: Any, context: BaseContext, deps: Deps) -> Any:
    if isinstance(request, Blocking):
        return request.fn()
    if isinstance(request, ModelCall):
        model, messages, kwargs, prefill = _prepare(request, context, deps)
        try:
            if request.transcript and isinstance(model, BaseLLM):
                return _complete(completion_message(model.generate([messages], **_traced(), **kwargs)), prefill)
            return _complete(model.invoke(messages, **kwargs), prefill)
        except openai.BadRequestError as exc:
            if _is_context_error(exc):
                return ContextOverflow(str(exc))
            raise
    raise TypeError(f"a node yielded {request!r}; expected ModelCall or Blocking")


async def _run_async(request: Any, context: BaseContext, deps: Deps) -> Any:
    if isinstance(request, Blocking):
        return await asyncio.to_thread(request.fn)
    if isinstance(request, ModelCall):
        # resolving the model may ask the server for its model list (blocking I/O):
        # keep it off the event loop, which `langgraph dev` rightly refuses to block
        model, messages, kwargs, prefill = await asyncio.to_thread(_prepare, request, context, deps)
        try:
            if request.transcript and isinstance(model, BaseLLM):
                return _complete(completion_message(await model.agenerate([messages], **_traced(), **kwargs)), prefill)
            # a chat model given a transcript (an injected test model) reads it as one user turn
            return _complete(await model.ainvoke(messages, **kwargs), prefill)
        except openai.BadRequestError as exc:
            if _is_context_error(exc):
                return ContextOverflow(str(exc))
            raise
    raise TypeError(f"a node yielded {request!r}; expected ModelCall or Blocking")


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


def dual_node(name: str, logic: Logic, deps: Deps) -> RunnableLambda:
    """A graph node running ``logic`` with a sync and an async driver."""

    def sync(state: dict) -> Any:
        context = current_context(deps)
        gen = logic(state, context, deps)
        if not inspect.isgenerator(gen):
            return gen
        try:
            request = next(gen)
            while True:
                try:
                    result = _run_sync(request, context, deps)
                except BaseException as exc:  # let the logic see the error where it asked
                    request = gen.throw(exc)
                else:
                    request = gen.send(result)
        except StopIteration as stop:
            return stop.value

    async def run_async(state: dict) -> Any:
        context = current_context(deps)
        gen = logic(state, context, deps)
        if not inspect.isgenerator(gen):
            return gen
        try:
            request = next(gen)
            while True:
                try:
                    result = await _run_async(request, context, deps)
                except BaseException as exc:
                    request = gen.throw(exc)
                else:
                    request = gen.send(result)
        except StopIteration as stop:
            return stop.value

    return RunnableLambda(sync, afunc=run_async, name=name)
