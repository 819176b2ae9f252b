"""The LangServe chat app: the group-planning, ReAct and CodeAct graphs behind FastAPI.

Each graph is mounted at ``/<name>`` (``/group``, ``/react``, ``/codeact``; the
baselines ``/cot``, ``/plan_solve`` and ``/reflexion`` on request) with LangServe's
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
wraps a compiled graph and hands it the context the app was made with. In a chat a
CodeAct reply in plain words, without code, is the answer (``plain_answer_ends``).

A bad request or a failing model server is answered with its own status and a short
``{"detail": ...}`` rather than a bare 500, and a reply never echoes a large input:

* a request body over ``max_body_bytes`` is refused with 413 (by its Content-Length,
  or by counting a chunked body), one that is not UTF-8 or holds JSON nested deeper
  than :data:`MAX_JSON_DEPTH` with 400, a question over ``max_question_chars`` with
  422; validation errors (422) leave out the input they refuse;
* the model server unreachable: 503, checked before a run starts, so that ``/stream``
  and the other streams answer 503 rather than 200 and an error event; its refusal
  of a request (400, 413, 422) keeps its status and carries its message, its other
  errors are 502 (429: 503);
* with an API key, every request needs ``Authorization: Bearer <key>`` (401 otherwise).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from itertools import accumulate
from typing import Annotated, Any, AsyncIterator, Callable, ClassVar, Iterator, Sequence

import openai
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from langchain_core.messages import AIMessage, AIMessageChunk, AnyMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import patch_config
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, field_validator

from autoact.graph.environment import default_backend
from autoact.graph.nodes import message_text
from autoact.graph.registry import graph_kind, graph_names
from autoact.serving.client import ModelServerUnreachable, endpoint_url
from autoact.serving.endpoint import api_key_from_env
from autoact.serving.vllm_server import ServerError, list_models
from autoact.settings import Settings, load_settings
from autoact.tools import sandbox
from autoact.usage import usage_totals

log = logging.getLogger(__name__)

#: The graphs it mounts unless told (``serve-chat --graphs``); it can mount every registered one.
DEFAULT_GRAPHS = ("group", "react", "codeact")
#: Context a route sets unless the app's context says otherwise: a chat reply need not
#: be code (evaluation and synthesis keep asking CodeAct for code).
CHAT_CONTEXT = {"codeact": {"plain_answer_ends": True}}

#: State keys copied into the answer's ``response_metadata["episode"]``.
EPISODE_KEYS = ("question", "trajectory", "reflections", "answer", "reward", "score", "halt_reason", "usage")

#: Request limits (``autoact serve-chat --max-body-bytes / --max-question-chars``).
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_QUESTION_CHARS = 8000
#: JSON nesting a request may have (a chat turn needs about 6 levels).
MAX_JSON_DEPTH = 64
#: Longest message taken from the model server or a validation error into a reply.
MAX_DETAIL_CHARS = 500
#: How long the model server has to list its models before a run (reachability).
REACHABILITY_TIMEOUT_S = 5.0
#: How long an answer counts: a server that dies within it fails the run itself (502/503).
REACHABILITY_TTL_S = 2.0


# ---- request and reply types ---------------------------------------------------------------
class ChatRequest(BaseModel):
    """One chat turn. The playground sends the whole conversation each time; the
    graph answers the last message and carries the earlier ones along."""

    model_config = ConfigDict(extra="forbid")

    #: the longest question taken (see :func:`chat_request_type`)
    max_question_chars: ClassVar[int] = DEFAULT_MAX_QUESTION_CHARS

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
        text = message_text(last)
        if not text:
            raise ValueError("the last message (the question) is empty")
        if len(text) > cls.max_question_chars:
            raise ValueError(
                f"the question is {len(text)} characters long; the limit is {cls.max_question_chars}"
            )
        return messages


def chat_request_type(max_question_chars: int = DEFAULT_MAX_QUESTION_CHARS) -> type[ChatRequest]:
    """:class:`ChatRequest` with another question limit (same name and schema)."""
    if max_question_chars < 1:
        raise ValueError(f"max_question_chars must be at least 1, got {max_question_chars}")
    if max_question_chars == ChatRequest.max_question_chars:
        return ChatRequest
    return type(ChatRequest.__name__, (ChatRequest,), {
        "max_question_chars": max_question_chars, "__module__": __name__, "__doc__": ChatRequest.__doc__,
    })


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
    text = message_text(final) if final is not None else str(state.get("answer") or "")
    episode = {key: state.get(key) for key in EPISODE_KEYS if key in state}
    _, prompt, completion = usage_totals(state.get("usage") or {})
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

    def __init__(
        self, graph: Any, context: dict[str, Any], name: str, request_type: type[ChatRequest] = ChatRequest
    ):
        self.graph = graph
        self.context = dict(context)
        self.name = name
        self.request_type = request_type

    @property
    def InputType(self) -> type:  # noqa: N802 (the Runnable API's name)
        return self.request_type

    @property
    def OutputType(self) -> type:  # noqa: N802
        return AIMessage

    def get_input_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        return self.request_type

    def get_output_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        return ChatReply

    # the graph's input: the validated conversation
    def _graph_input(self, value: Any) -> dict[str, Any]:
        if isinstance(value, self.request_type):
            request = value
        elif isinstance(value, ChatRequest):  # validated under another limit
            request = self.request_type.model_validate({"messages": value.messages})
        elif isinstance(value, dict):
            request = self.request_type.model_validate(value)
        else:
            raise TypeError(f"a chat turn takes {{'messages': [...]}}, got {type(value).__name__}")
        return {"messages": list(request.messages)}

    def _child_config(self, config: RunnableConfig, run_manager: Any) -> RunnableConfig:
        return patch_config(config, callbacks=run_manager.get_child())

    # ---- invoke -------------------------------------------------------------------------------
    def _run(self, value: Any, run_manager: Any, config: RunnableConfig) -> AIMessage:
        # the graph's nodes are async: a sync caller (no running event loop) runs it on its own
        state = asyncio.run(
            self.graph.ainvoke(self._graph_input(value), self._child_config(config, run_manager), context=self.context)
        )
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
    """The run context of each graph: :data:`CHAT_CONTEXT`'s, then the fields of
    ``context`` its schema knows, validated now so that a bad setting stops the app at
    startup with a clear message. A field no graph knows is refused."""
    unknown_graphs = [g for g in graphs if g not in graph_names()]
    if unknown_graphs or not graphs:
        raise ValueError(f"unknown graph(s) {unknown_graphs or list(graphs)}; the graphs are {list(graph_names())}")
    schemas = {name: graph_kind(name).context for name in graphs}
    values = {k: v for k, v in (context or {}).items() if v is not None}
    known = set().union(*(schema.model_fields for schema in schemas.values()))
    stray = sorted(set(values) - known)
    if stray:
        raise ValueError(f"unknown context field(s) {stray}; the graphs {list(graphs)} take {sorted(known)}")
    out = {}
    for name, schema in schemas.items():
        mine = {**CHAT_CONTEXT.get(name, {}), **{k: v for k, v in values.items() if k in schema.model_fields}}
        out[name] = schema(**mine).model_dump(exclude_unset=True)
    return out


# ---- request guards --------------------------------------------------------------------------------
def _short(text: Any, limit: int = MAX_DETAIL_CHARS) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def _refuse(scope: Any, receive: Any, send: Any, status: int, detail: str, **headers: str) -> None:
    await JSONResponse({"detail": detail}, status_code=status, headers=headers or None)(scope, receive, send)


class ApiKeyGuard:
    """ASGI middleware: every request needs ``Authorization: Bearer <key>`` (401)."""

    def __init__(self, app: Any, api_key: str):
        self.app = app
        self._digest = hashlib.sha256(api_key.encode()).digest()

    def authorized(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        digest = hashlib.sha256(token.strip().encode()).digest()
        return scheme.lower() == "bearer" and hmac.compare_digest(digest, self._digest)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        authorization = dict(scope.get("headers") or ()).get(b"authorization", b"").decode("latin-1")
        if self.authorized(authorization):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        await _refuse(scope, receive, send, 401, "missing or wrong API key: send the header "
                      "'Authorization: Bearer <key>'", **{"WWW-Authenticate": "Bearer"})


#: A JSON string (escapes included), and what is not a bracket.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest, without parsing it
    (parsing a deep text recurses once per level)."""
    brackets = _NOT_BRACKETS.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(_DEPTH_STEP[c] for c in brackets), default=0)


def body_problem(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why a request body cannot be taken (None: it can, or it is not JSON at all,
    which the route reports itself)."""
    if not body:
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"the request body is not valid UTF-8 (at byte {exc.start})"
    depth = json_depth(text)
    if depth > max_depth:
        return f"the request body's JSON nests {depth} levels deep; the limit is {max_depth}"
    if _SURROGATE_ESCAPE.search(text):  # "\ud800" alone parses, but no UTF-8 can carry it on
        try:
            json.dumps(json.loads(text), ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return "the request body's JSON holds an unpaired surrogate (\\ud800-\\udfff) escape"
        except ValueError:
            return None
    return None


class BodyGuard:
    """ASGI middleware: a request body of at most ``max_bytes`` (413; by its
    Content-Length, else counted as a chunked body arrives), valid UTF-8 and JSON no
    deeper than ``max_depth`` (400). The body is read here and handed on."""

    def __init__(self, app: Any, max_bytes: int = DEFAULT_MAX_BODY_BYTES, max_depth: int = MAX_JSON_DEPTH):
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = f"the request body is larger than the limit of {self.max_bytes} bytes"
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
                if declared < 0:
                    raise ValueError(declared)
            except ValueError:
                return await _refuse(scope, receive, send, 400, "the Content-Length header is not a byte count")
            if declared > self.max_bytes:
                return await _refuse(scope, receive, send, 413, too_large, Connection="close")
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await _refuse(scope, receive, send, 413, too_large, Connection="close")
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        problem = body_problem(body, self.max_depth)
        if problem:
            return await _refuse(scope, receive, send, 400, problem)
        handed_on = False

        async def replay() -> dict[str, Any]:
            nonlocal handed_on
            if handed_on:
                return await receive()  # the disconnect a streaming response waits for
            handed_on = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


# ---- errors --------------------------------------------------------------------------------------------
def validation_errors(errors: Sequence[Any]) -> list[Any]:
    """Validation errors without the input they refuse (which may be huge), messages shortened."""
    out = []
    for error in errors:
        if isinstance(error, dict):
            error = {k: v for k, v in error.items() if k != "input"}
            if "msg" in error:
                error["msg"] = _short(error["msg"])
            out.append(error)
        else:
            out.append(_short(error))
    return out


def model_server_error(exc: openai.APIStatusError) -> tuple[int, str]:
    """The status and message of the reply when the model server answers ``exc``:
    its refusal of the request (400, 413, 422) keeps its status, a 429 is 503 (busy),
    anything else (401, 404, 5xx) is 502. The message is the server's own."""
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else body
    message = _short(message or exc.message)
    code = exc.status_code
    if code in (400, 413, 422):
        return code, f"the model server refused the request ({code}): {message}"
    if code == 429:
        return 503, f"the model server is busy (429): {message}"
    return 502, f"the model server failed ({code}): {message}"


def model_server_check(url_of: Callable[[], str]) -> Callable[..., Any]:
    """A LangServe ``per_req_config_modifier`` that checks that the model server
    answers before a run starts (ModelServerUnreachable → 503): once the 200 of a
    stream is sent, a failure can only be an error event inside it."""
    from starlette.concurrency import run_in_threadpool  # the web stack: only where an app is made

    answered_at: dict[str, float] = {}  # url -> when it last answered

    async def check(config: dict[str, Any], request: Request) -> dict[str, Any]:
        if getattr(request.state, "model_server_answers", False):  # /batch: once per request
            return config
        try:
            url = url_of()
            # a burst of chat turns costs one look-up, not one per request
            if time.monotonic() - answered_at.get(url, float("-inf")) < REACHABILITY_TTL_S:
                request.state.model_server_answers = True
                return config
            await run_in_threadpool(list_models, url, REACHABILITY_TIMEOUT_S)
            answered_at[url] = time.monotonic()
        except ModelServerUnreachable:
            raise
        except ServerError as exc:
            raise ModelServerUnreachable(str(exc)) from exc
        request.state.model_server_answers = True
        return config

    return check


# ---- the app ------------------------------------------------------------------------------------------
def create_app(
    settings: Settings | None = None,
    *,
    base_url: str | None = None,
    context: dict[str, Any] | None = None,
    graphs: Sequence[str] = DEFAULT_GRAPHS,
    models: dict[str, Any] | None = None,
    backend: Any = None,
    preload: bool = False,
    api_key: str | None = None,
    max_body_bytes: int | None = None,
    max_question_chars: int | None = None,
) -> FastAPI:
    """The FastAPI app with one LangServe chat route per graph.

    ``base_url``: the model endpoint (…/v1), else the settings' or the recorded one;
    ``context``: graph context fields (task, tools, max_steps, mode, …) for every run;
    ``models`` / ``backend``: injected chat models and task backend (tests; with
    injected models no model server is checked);
    ``preload``: load the task and check its tools now rather than on the first request;
    ``api_key``: the key every request must send as a bearer token (default
    ``AUTOACT_API_KEY``; "" for none);
    ``max_body_bytes`` / ``max_question_chars``: the request limits (default
    :data:`DEFAULT_MAX_BODY_BYTES`, :data:`DEFAULT_MAX_QUESTION_CHARS`).
    """
    from langserve import add_routes  # the web stack: only where an app is made

    api_key = api_key_from_env() if api_key is None else (api_key or None)
    max_body_bytes = DEFAULT_MAX_BODY_BYTES if max_body_bytes is None else max_body_bytes
    if max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be at least 1, got {max_body_bytes}")
    request_type = chat_request_type(DEFAULT_MAX_QUESTION_CHARS if max_question_chars is None else max_question_chars)
    context = dict(context or {})
    if base_url:
        context["base_url"] = base_url.rstrip("/")
    contexts = graph_contexts(context, graphs)
    backend = backend or default_backend()

    if preload:
        for name in graphs:
            ctx = graph_kind(name).context(**contexts[name])
            backend.tools(backend.task(ctx), ctx)
        if "codeact" in graphs:  # else every /codeact turn would fail at its start
            try:
                sandbox.ensure_python_tool()
            except sandbox.SandboxUnavailable as exc:
                raise ValueError(f"the codeact route runs code, but {exc} Or mount the other graphs only "
                                 "(--graphs group,react).") from exc

    app = FastAPI(
        title="autoact chat",
        description="Group planning (plan / tool / reflect agents), ReAct and CodeAct graphs as chat endpoints.",
    )

    # the last added runs first: the key is checked before a body is read
    app.add_middleware(BodyGuard, max_bytes=max_body_bytes, max_depth=MAX_JSON_DEPTH)
    if api_key:
        app.add_middleware(ApiKeyGuard, api_key=api_key)

    @app.exception_handler(ModelServerUnreachable)
    async def _no_model_server(request: Request, exc: ModelServerUnreachable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": _short(exc)})

    @app.exception_handler(openai.APIConnectionError)
    async def _model_server_lost(request: Request, exc: openai.APIConnectionError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": _short(f"cannot reach the model server: {exc}")})

    @app.exception_handler(openai.APIStatusError)
    async def _model_server_refused(request: Request, exc: openai.APIStatusError) -> JSONResponse:
        status, detail = model_server_error(exc)
        log.warning("%s: %s", request.url.path, detail)
        return JSONResponse(status_code=status, content={"detail": detail})

    @app.exception_handler(RequestValidationError)
    async def _bad_input(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": jsonable_encoder(validation_errors(exc.errors()))})

    @app.exception_handler(ValidationError)
    async def _bad_batch_input(request: Request, exc: ValidationError) -> JSONResponse:
        # LangServe validates each /batch input outside its 422 translation, so a bad
        # input there surfaces as a raw ValidationError; anything else stays a 500.
        if exc.title != ChatRequest.__name__:
            log.error("unexpected validation error in %s", request.url.path, exc_info=exc)
            return JSONResponse(status_code=500, content={"detail": "Internal Server Error"})
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        return JSONResponse(status_code=422, content={"detail": validation_errors(errors)})

    resolved: dict[str, Settings] = {}

    def endpoint_of(name: str) -> Callable[[], str]:
        def url() -> str:
            if contexts[name].get("base_url"):
                return contexts[name]["base_url"]
            if "settings" not in resolved:
                resolved["settings"] = settings or load_settings()
            return endpoint_url(resolved["settings"])

        return url

    for name in graphs:
        graph = graph_kind(name).build(models, backend=backend, settings=settings, name=name)
        add_routes(
            app,
            ChatTurn(graph, contexts[name], name, request_type),
            path=f"/{name}",
            playground_type="chat",  # every endpoint on: the playground also reads /c/{config}/…_schema
            # injected models need no server; real ones: 503 before a run (and a stream) starts
            per_req_config_modifier=None if models else model_server_check(endpoint_of(name)),
        )

    @app.get("/", include_in_schema=False)
    async def _home() -> RedirectResponse:
        return RedirectResponse(url=f"/{graphs[0]}/playground/")

    @app.get("/health")
    async def _health() -> dict[str, Any]:
        return {"status": "ok", "graphs": list(graphs), "context": contexts}

    return app
