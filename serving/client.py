"""The model client layer: one factory for the chat model of a role.

Every sub-agent is a LangChain ``ChatOpenAI`` pointed at the vLLM endpoint; its
``model`` field names the role's LoRA adapter, or ``base`` when the role has no
adapter (yet) or the server does not serve it. Errors name the endpoint: one that
does not answer is :class:`ModelServerUnreachable`; one that answers something
other than the OpenAI API (an HTML page from a proxy, another service on the port,
a cut-off body) is :class:`ModelServerBadAnswer`, quoting the start of the answer.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Callable

import httpx
import openai
from langchain_openai import ChatOpenAI, OpenAI

from autoact.io import atomic_write_text
from autoact.serving import vllm_server
from autoact.serving.endpoint import api_key_from_env, auth_headers, tls_context
from autoact.serving.vllm_server import ServerError
from autoact.settings import BASE_MODEL_NAME, ROLES, SamplingSettings, Settings


#: How much of a bad answer an error quotes.
QUOTED_CHARS = 200


class ModelServerUnreachable(ServerError):
    pass


class ModelServerBadAnswer(ServerError):
    """The server at an endpoint answered, but not with what the API promises."""


def bad_answer(url: str, body: str, expected: str) -> ModelServerBadAnswer:
    shown = " ".join(body.split())  # one line, whatever the page's layout
    if len(shown) > QUOTED_CHARS:
        shown = shown[:QUOTED_CHARS] + "…"
    return ModelServerBadAnswer(f"the model server at {url} answered with something other than {expected}: {shown!r}")


def served_models(url: str) -> list[str]:
    """The model names served at ``url`` (…/v1); errors name the endpoint."""
    try:
        return vllm_server.list_models(url)  # looked up per call: tests replace it
    except ServerError as exc:
        raise ModelServerUnreachable(str(exc)) from exc
    except (ValueError, AttributeError, KeyError, TypeError) as exc:  # not JSON, or not a model list
        models = url.rstrip("/") + "/models"
        try:  # list_models keeps no body: fetch it once more to quote it
            body = httpx.get(models, timeout=5.0, headers=auth_headers()).text
        except httpx.HTTPError as again:
            body = f"(no answer when asked again: {again})"
        raise bad_answer(models, body, "a JSON model list") from exc


def endpoint_file(settings: Settings) -> Path:
    """Where ``autoact serve`` records the endpoint it started or attached to."""
    return settings.home / "endpoint.json"


def write_endpoint(settings: Settings, info: dict) -> Path:
    return atomic_write_text(endpoint_file(settings), json.dumps(info, indent=2))


def endpoint_url(settings: Settings) -> str:
    """The endpoint to use: the setting, else the one ``autoact serve`` recorded."""
    if settings.server.base_url:
        return settings.server.base_url.rstrip("/")
    path = endpoint_file(settings)
    if path.is_file():
        return json.loads(path.read_text())["base_url"].rstrip("/")
    raise ModelServerUnreachable(
        "no model server configured: start one with `autoact serve`, or set "
        "server.base_url (AUTOACT_SERVER__BASE_URL) to an OpenAI-compatible endpoint"
    )


def role_model_name(role: str, settings: Settings, served: list[str]) -> str:
    """The ``model`` field for a role: its adapter if served, else the base (on a plain
    OpenAI-compatible endpoint, ``server.model_name``)."""
    adapter = settings.adapter_for(role)
    if adapter and adapter in served:
        return adapter
    return BASE_MODEL_NAME if settings.server.is_vllm else str(settings.server.model_name)


def _vllm_extras(settings: Settings, top_k: int) -> dict[str, Any] | None:
    """vLLM's extension fields of every request (top_k: not an OpenAI field; -1 = off)."""
    return {"top_k": top_k} if settings.server.is_vllm and top_k > 0 else None


def _checked(raw: Any) -> Any:
    """A raw openai answer, if it holds a non-empty ``choices`` list; else the
    error naming the URL and quoting the body (openai hands a body that is not JSON
    over as a str, on which LangChain then fails without naming anything)."""
    try:
        answer = raw.parse()
    except ValueError:  # a JSON content type over a body that is not JSON
        answer = None
    if isinstance(answer, str) or not isinstance(getattr(answer, "choices", None), list) or not answer.choices:
        response = raw.http_response
        raise bad_answer(str(response.request.url), response.text, "a JSON completion")
    return raw


def _then(result: Any, fn: Callable[[Any], Any]) -> Any:
    """``fn(result)``; for the async client's awaitable, a coroutine of it."""
    if inspect.isawaitable(result):
        async def chained() -> Any:
            return fn(await result)

        return chained()
    return fn(result)


class _CheckedCompletions:
    """An openai (async) completions resource whose whole answers pass :func:`_checked`.

    LangChain's chat client reads answers through ``with_raw_response.create``, its
    completions client through ``create``; streamed answers pass unchecked."""

    def __init__(self, resource: Any, raw: bool = False) -> None:
        self._resource = resource
        self._raw = raw

    def __getattr__(self, name: str) -> Any:
        if name == "_resource":  # not set yet: a copy (copy, pickle) being built
            raise AttributeError(name)
        return getattr(self._resource, name)

    @property
    def with_raw_response(self) -> "_CheckedCompletions":
        return _CheckedCompletions(self._resource.with_raw_response, raw=True)

    def create(self, **kwargs: Any) -> Any:
        if kwargs.get("stream"):
            return self._resource.create(**kwargs)
        if self._raw:
            return _then(self._resource.create(**kwargs), _checked)
        return _then(self.with_raw_response.create(**kwargs), lambda raw: raw.parse())


class _NamesItsEndpoint:
    """Connection errors name the endpoint URL and the model; answers that are not
    completions name the URL and quote the body (:class:`_CheckedCompletions`).

    The overrides spell out ``run_manager``: LangChain passes per-call options
    (extra_body: the prefill flags, structured outputs) only to ``_generate`` methods
    whose signature names it (a ``*args`` override silently dropped them)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.client is not None:
            self.client = _CheckedCompletions(self.client)
        if self.async_client is not None:
            self.async_client = _CheckedCompletions(self.async_client)

    def _unreachable(self, exc: Exception) -> ModelServerUnreachable:
        return ModelServerUnreachable(
            f"cannot reach the model server at {self.openai_api_base} (model {self.model_name}): {exc}"
        )

    def _generate(self, prompts: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any):
        try:
            return super()._generate(prompts, stop=stop, run_manager=run_manager, **kwargs)
        except openai.APIConnectionError as exc:
            raise self._unreachable(exc) from exc

    async def _agenerate(self, prompts: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any):
        try:
            return await super()._agenerate(prompts, stop=stop, run_manager=run_manager, **kwargs)
        except openai.APIConnectionError as exc:
            raise self._unreachable(exc) from exc


class EndpointChatOpenAI(_NamesItsEndpoint, ChatOpenAI):
    """The chat client of a role (chat-format prompts)."""


class EndpointOpenAI(_NamesItsEndpoint, OpenAI):
    """The completions client of a role (transcript prompts)."""


def _endpoint_and_model(role: str, settings: Settings, base_url: str | None,
                        served: list[str] | None) -> tuple[str, str]:
    """(endpoint URL, served model name) of a role; ``served`` is fetched when not given,
    which also checks that the server answers."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {list(ROLES)}")
    url = (base_url or endpoint_url(settings)).rstrip("/")
    if served is None:
        served = served_models(url)
    return url, role_model_name(role, settings, served)


def _client_options(role: str, settings: Settings, base_url: str | None, served: list[str] | None,
                    sampling: SamplingSettings) -> dict[str, Any]:
    """What the chat and the completions client of ``role`` share: endpoint, model,
    sampling, retries and HTTP clients of their own. langchain-openai otherwise shares
    one async client per URL across the process, and it breaks ("Event loop is
    closed") when a second asyncio.run (e.g. synthesis, then evaluation) reaches the
    same endpoint. Both clients use the shared TLS settings (see tls_context)."""
    url, model = _endpoint_and_model(role, settings, base_url, served)
    return dict(
        http_client=openai.DefaultHttpxClient(timeout=settings.request_timeout_s, verify=tls_context()),
        http_async_client=httpx.AsyncClient(timeout=settings.request_timeout_s, verify=tls_context()),
        model=model,
        base_url=url,
        api_key=api_key_from_env() or "EMPTY",  # AUTOACT_API_KEY, when the server needs one
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_tokens=sampling.max_tokens,
        seed=sampling.seed,
        max_retries=settings.max_retries,
        timeout=settings.request_timeout_s,
        extra_body=_vllm_extras(settings, sampling.top_k),
    )


def completion_model(
    role: str,
    settings: Settings,
    base_url: str | None = None,
    served: list[str] | None = None,
    **overrides: Any,
) -> EndpointOpenAI:
    """The completions client for ``role``: the same model choice and sampling as
    :func:`chat_model`, for prompts that are one text (no chat template)."""
    sampling = settings.sampling_for(role).model_copy(update=overrides)
    return EndpointOpenAI(**_client_options(role, settings, base_url, served, sampling))


def chat_model(
    role: str,
    settings: Settings,
    base_url: str | None = None,
    served: list[str] | None = None,
    **overrides: Any,
) -> EndpointChatOpenAI:
    """The chat model for ``role`` (plan, tool, reflect or meta).

    ``served`` (the endpoint's model list) is fetched when not given, which also
    checks that the server answers. ``overrides`` replace sampling fields
    (temperature, max_tokens, stop, top_p, seed).
    """
    sampling = settings.sampling_for(role).model_copy(update=overrides)
    return EndpointChatOpenAI(**_client_options(role, settings, base_url, served, sampling),
                              stop=list(sampling.stop) or None, stream_usage=True)
