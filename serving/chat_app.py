"""The LangServe chat app: the group-planning and ReAct graphs behind FastAPI.

Each graph is mounted at ``/<name>`` (``/group``, ``/react``) with LangServe's
``/invoke``, ``/batch``, ``/stream``, ``/stream_log``, ``/stream_events`` and the chat
playground (``/<name>/playground/``). One request is one chat turn:

* input ``{"messages": [...]}``: the conversation so far, whose last message is the
  user's question (a human message); anything else is refused with a 422 that says
  what is wrong;
* output the answer as an AI message; its ``response_metadata["episode"]`` holds the
  run (question, trajectory, reflections, answer, halt reason, score, usage per role)
  and ``usage_metadata`` the tokens of every model call of the turn.

The graphs take their run-time settings (endpoint, task, tools, max steps, …) as a
LangGraph ``context`` per run, which LangServe does not pass: :class:`ChatTurn`
wraps a compiled graph and hands it the context the app was made with.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, AsyncIterator, Iterator, Sequence

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from langchain_core.messages import AIMessage, AIMessageChunk, AnyMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import patch_config
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, field_validator

from autoact.settings import Settings

log = logging.getLogger(__name__)

GRAPHS = ("group", "react")

#: State keys copied into the answer's ``response_metadata["episode"]``.
EPISODE_KEYS = ("question", "trajectory", "reflections", "answer", "reward", "score", "halt_reason", "usage")


# ---- request and reply types ---------------------------------------------------------------
def _message_text(message: Any) -> str:
    content = getattr(message, "content", "")
    if isinstance(content, list):  # content parts: keep the text ones
        content = " ".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return str(content or "").strip()


class ChatRequest(BaseModel):
    """One chat turn. The playground sends the whole conversation each time; the
    graph answers the last message and carries the earlier ones along."""

    model_config = ConfigDict(extra="forbid")

    messages: list[AnyMessage] = Field(
        ...,
        min_length=1,
        description="the conversation so far; the last message is the user's question (type 'human')",
    )

    @field_validator("messages")
    @classmethod
    def _ends_with_a_question(cls, messages: list[AnyMessage]) -> list[AnyMessage]:
        last = messages[-1]
        if last.type != "human":
            raise ValueError(f"the last message must be the user's question (type 'human'), not type {last.type!r}")
        if not _message_text(last):
            raise ValueError("the last message (the question) is empty")
        return messages


class _PlaygroundSchema:
    """JSON schema tweak for the chat playground, which recognises an AI-message
    output by ``properties.type.enum`` containing ``"ai"`` inside an ``anyOf``;
    pydantic writes a one-value Literal as ``const`` only, so the enum is added."""

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema = handler(core_schema)
        resolved = handler.resolve_ref_schema(schema)
        type_field = resolved.get("properties", {}).get("type", {})
        if "const" in type_field:
            type_field.setdefault("enum", [type_field["const"]])
        return {"anyOf": [schema]}


class ChatReply(RootModel[Annotated[AIMessage, _PlaygroundSchema()]]):
    """The answer as an AI message (the episode in ``response_metadata``)."""


def reply_message(state: dict[str, Any], graph: str) -> AIMessage:
    """The turn's answer (the AI message the graph appended) with the episode attached."""
    messages = state.get("messages") or []
    final = messages[-1] if messages and getattr(messages[-1], "type", None) == "ai" else None
    text = _message_text(final) if final is not None else str(state.get("answer") or "")
    episode = {key: state.get(key) for key in EPISODE_KEYS if key in state}
    usage = state.get("usage") or {}
    prompt = sum(int(u.get("prompt_tokens", 0)) for u in usage.values())
    completion = sum(int(u.get("completion_tokens", 0)) for u in usage.values())
    return AIMessage(
        content=text,
        id=getattr(final, "id", None),
        response_metadata={"graph": graph, "episode": episode},
        usage_metadata={"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion},
    )


def _as_chunk(message: AIMessage) -> AIMessageChunk:
    return AIMessageChunk(
        content=message.content,
        id=message.id,
        response_metadata=message.response_metadata,
        usage_metadata=message.usage_metadata,
    )


# ---- the runnable ---------------------------------------------------------------------------------
class ChatTurn(Runnable[dict, AIMessage]):
    """A compiled graph as a chat runnable that runs with a fixed LangGraph context.

    ``invoke`` returns the answer as an ``AIMessage``; ``stream`` yields it as one
    ``AIMessageChunk`` when the episode ends (the chat playground shows streamed
    chunks). The graph's nodes and model calls are traced as child runs.
    """

    def __init__(self, graph: Any, context: dict[str, Any], name: str):
        self.graph = graph
        self.context = dict(context)
        self.name = name

    @property
    def InputType(self) -> type:  # noqa: N802 (the Runnable API's name)
        return ChatRequest

    @property
    def OutputType(self) -> type:  # noqa: N802
        return AIMessage

    def get_input_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        return ChatRequest

    def get_output_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        return ChatReply

    # the graph's input: the validated conversation
    @staticmethod
    def _graph_input(value: Any) -> dict[str, Any]:
        if isinstance(value, ChatRequest):
            request = value
        elif isinstance(value, dict):
            request = ChatRequest.model_validate(value)
        else:
            raise TypeError(f"a chat turn takes {{'messages': [...]}}, got {type(value).__name__}")
        return {"messages": list(request.messages)}

    def _child_config(self, config: RunnableConfig, run_manager: Any) -> RunnableConfig:
        return patch_config(config, callbacks=run_manager.get_child())

    # ---- invoke -------------------------------------------------------------------------------
    def _run(self, value: Any, run_manager: Any, config: RunnableConfig) -> AIMessage:
        state = self.graph.invoke(self._graph_input(value), self._child_config(config, run_manager), context=self.context)
        return reply_message(state, self.name)

    async def _arun(self, value: Any, run_manager: Any, config: RunnableConfig) -> AIMessage:
        state = await self.graph.ainvoke(
            self._graph_input(value), self._child_config(config, run_manager), context=self.context
        )
        return reply_message(state, self.name)

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AIMessage:
        return self._call_with_config(self._run, input, config, **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AIMessage:
        return await self._acall_with_config(self._arun, input, config, **kwargs)

    # ---- stream -------------------------------------------------------------------------------
    def _stream_turn(self, values: Iterator[Any], run_manager: Any, config: RunnableConfig) -> Iterator[AIMessageChunk]:
        value = None
        for value in values:
            pass
        yield _as_chunk(self._run(value, run_manager, config))

    async def _astream_turn(
        self, values: AsyncIterator[Any], run_manager: Any, config: RunnableConfig
    ) -> AsyncIterator[AIMessageChunk]:
        value = None
        async for value in values:
            pass
        yield _as_chunk(await self._arun(value, run_manager, config))

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[AIMessageChunk]:
        yield from self._transform_stream_with_config(iter([input]), self._stream_turn, config, **kwargs)

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[AIMessageChunk]:
        async def one() -> AsyncIterator[Any]:
            yield input

        async for chunk in self._atransform_stream_with_config(one(), self._astream_turn, config, **kwargs):
            yield chunk


# ---- contexts ---------------------------------------------------------------------------------------
def graph_contexts(context: dict[str, Any] | None, graphs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The run context of each graph: the fields of ``context`` its schema knows,
    validated now so that a bad setting stops the app at startup with a clear message.
    A field no graph knows is refused."""
    from autoact.graph.context import GroupContext, ReactContext

    schemas = {"group": GroupContext, "react": ReactContext}
    unknown_graphs = [g for g in graphs if g not in schemas]
    if unknown_graphs or not graphs:
        raise ValueError(f"unknown graph(s) {unknown_graphs or list(graphs)}; the graphs are {list(GRAPHS)}")
    values = {k: v for k, v in (context or {}).items() if v is not None}
    known = set().union(*(schemas[g].model_fields for g in graphs))
    stray = sorted(set(values) - known)
    if stray:
        raise ValueError(f"unknown context field(s) {stray}; the graphs {list(graphs)} take {sorted(known)}")
    out = {}
    for name in graphs:
        schema = schemas[name]
        mine = {k: v for k, v in values.items() if k in schema.model_fields}
        out[name] = schema(**mine).model_dump(exclude_unset=True)
    return out


# ---- the app ------------------------------------------------------------------------------------------
def create_app(
    settings: Settings | None = None,
    *,
    base_url: str | None = None,
    context: dict[str, Any] | None = None,
    graphs: Sequence[str] = GRAPHS,
    models: dict[str, Any] | None = None,
    backend: Any = None,
    preload: bool = False,
) -> FastAPI:
    """The FastAPI app with one LangServe chat route per graph.

    ``base_url``: the model endpoint (…/v1), else the settings' or the recorded one;
    ``context``: graph context fields (task, tools, max_steps, mode, …) for every run;
    ``models`` / ``backend``: injected chat models and task backend (tests);
    ``preload``: load the task and check its tools now rather than on the first request.
    """
    from langserve import add_routes

    from autoact.graph.environment import default_backend
    from autoact.graph.group import build_group_graph
    from autoact.graph.react import build_react_graph
    from autoact.models import ModelServerUnreachable

    context = dict(context or {})
    if base_url:
        context["base_url"] = base_url.rstrip("/")
    contexts = graph_contexts(context, graphs)
    backend = backend or default_backend()
    builders = {"group": build_group_graph, "react": build_react_graph}

    if preload:
        from autoact.graph.context import GroupContext, ReactContext

        schemas = {"group": GroupContext, "react": ReactContext}
        for name in graphs:
            ctx = schemas[name](**contexts[name])
            backend.tools(backend.task(ctx), ctx)

    app = FastAPI(
        title="autoact chat",
        description="Group planning (plan / tool / reflect agents) and ReAct graphs as chat endpoints.",
    )

    @app.exception_handler(ModelServerUnreachable)
    async def _no_model_server(request: Request, exc: ModelServerUnreachable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.exception_handler(ValidationError)
    async def _bad_batch_input(request: Request, exc: ValidationError) -> JSONResponse:
        # LangServe validates each /batch input outside its 422 translation, so a bad
        # input there surfaces as a raw ValidationError; anything else stays a 500.
        if exc.title != ChatRequest.__name__:
            log.error("unexpected validation error in %s", request.url.path, exc_info=exc)
            return JSONResponse(status_code=500, content={"detail": "Internal Server Error"})
        return JSONResponse(status_code=422, content={"detail": exc.errors(include_url=False, include_context=False)})

    for name in graphs:
        graph = builders[name](models, backend=backend, settings=settings, name=name)
        add_routes(
            app,
            ChatTurn(graph, contexts[name], name),
            path=f"/{name}",
            playground_type="chat",  # every endpoint on: the playground also reads /c/{config}/…_schema
        )

    @app.get("/", include_in_schema=False)
    async def _home() -> RedirectResponse:
        return RedirectResponse(url=f"/{graphs[0]}/playground/")

    @app.get("/health")
    async def _health() -> dict[str, Any]:
        return {"status": "ok", "graphs": list(graphs), "context": contexts}

    return app
