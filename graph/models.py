"""The chat model of each role, injected or made from the run-time context.

Injected models (tests, synthesis) are used as given. Otherwise the model of a role
comes from ``autoact.serving.client.chat_model`` on the context's endpoint; the context may
name the served model (an adapter) per role, and it must then be served. Clients
and the endpoint's model list are cached per resolver (one per graph), built once even
when many episodes ask at the same time.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from langchain_core.language_models import BaseChatModel

from autoact.serving import client
from autoact.settings import Settings, load_settings

from .context import BaseContext, model_name_override

SERVED_TTL_S = 30.0


class ModelResolver:
    def __init__(self, models: dict[str, BaseChatModel] | None = None, settings: Settings | None = None):
        self.injected = dict(models or {})
        self._settings = settings
        self._cache: dict[tuple, BaseChatModel] = {}
        self._served: dict[str, tuple[float, list[str]]] = {}
        self._lock = threading.Lock()  # the cache's dict, held briefly
        self._building = threading.RLock()

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    def base_url(self, context: BaseContext) -> str:
        return (context.base_url or client.endpoint_url(self.settings)).rstrip("/")

    def served(self, url: str) -> list[str]:
        now = time.monotonic()
        cached = self._served.get(url)
        if cached and now - cached[0] < SERVED_TTL_S:
            return cached[1]
        names = client.served_models(url)
        self._served[url] = (now, names)
        return names

    def _key(self, role: str, context: BaseContext) -> tuple:
        """(role, endpoint, model name override, temperature, max_tokens, seed)."""
        sampling = self.settings.sampling_for(role)
        return (
            role,
            self.base_url(context),
            model_name_override(context, role),
            sampling.temperature if context.temperature is None else context.temperature,
            sampling.max_tokens if context.max_tokens is None else context.max_tokens,
            sampling.seed if context.seed is None else context.seed,
        )

    def at_hand(self, role: str, context: BaseContext) -> bool:
        """Whether :meth:`get` needs no I/O: the model is injected, or built already for an
        endpoint that the context or the loaded settings name (else finding the endpoint
        may read a file)."""
        if self.injected:
            return True
        if self._settings is None or not (context.base_url or self._settings.server.base_url):
            return False
        key = self._key(role, context)
        with self._lock:
            return key in self._cache

    def _cached(self, key: tuple, build: Callable[[], Any]) -> Any:
        """The client under ``key``, built once: episodes that miss the cache together
        wait for one build instead of each fetching the model list and building their own."""
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        with self._building:
            with self._lock:
                if key in self._cache:
                    return self._cache[key]
            model = build()
            with self._lock:
                self._cache[key] = model
            return model

    def get(self, role: str, context: BaseContext) -> BaseChatModel:
        if role in self.injected:
            return self.injected[role]
        if self.injected:
            raise KeyError(f"no model injected for role {role!r} (injected: {sorted(self.injected)})")
        key = self._key(role, context)
        _, url, name, temperature, max_tokens, seed = key

        def build() -> BaseChatModel:
            served = self.served(url)
            settings = self.settings
            if name:
                if name not in served:
                    raise ValueError(f"the context names model {name!r} for {role}, but {url} serves {served}")
                settings = settings.model_copy(update={"adapters": {**settings.adapters, role: name}})
            return client.chat_model(role, settings, url, served, temperature=temperature, max_tokens=max_tokens, seed=seed)

        return self._cached(key, build)

    def get_completion(self, role: str, context: BaseContext) -> Any:
        """The completions client of a role (transcript prompts): the same served model
        and sampling as :meth:`get`. An injected model serves both kinds of call."""
        if role in self.injected or self.injected:
            return self.get(role, context)
        chat = self.get(role, context)  # resolves and checks the served model name
        key = ("completion", role, chat.openai_api_base, chat.model_name, chat.temperature, chat.max_tokens, chat.seed)

        def build() -> Any:
            settings = self.settings.model_copy(update={"adapters": {**self.settings.adapters, role: chat.model_name}})
            served = self.served(chat.openai_api_base)
            return client.completion_model(role, settings, chat.openai_api_base, served, temperature=chat.temperature,
                                    max_tokens=chat.max_tokens, seed=chat.seed)

        return self._cached(key, build)

    def model_name(self, role: str, context: BaseContext) -> str | None:
        """The served model name a role's calls go to (None for an injected model
        that names none)."""
        return getattr(self.get(role, context), "model_name", None)

    def serves(self, role: str) -> bool:
        """Whether the role's calls reach a real server (structured outputs need vLLM;
        injected test models ignore them)."""
        return role not in self.injected

    def takes_structured_outputs(self, role: str) -> bool:
        """Whether the role's calls reach a vLLM server, which constrains output to a regex."""
        return self.serves(role) and self.settings.server.is_vllm

    def continues_prefills(self, role: str) -> bool:
        """Whether the role's model continues an opened assistant turn: vLLM does
        (``continue_final_message``), an injected test model is given the prefill as its
        last message; a plain OpenAI-compatible endpoint is not asked to."""
        return not self.serves(role) or self.settings.server.is_vllm

    def call_kwargs(self, role: str, context: BaseContext, stop: list[str], max_tokens: int | None) -> dict[str, Any]:
        """Per-call options: stop sequences always; a larger token budget on request."""
        kwargs: dict[str, Any] = {"stop": stop}
        if max_tokens is not None and role not in self.injected:
            kwargs["max_tokens"] = max_tokens
        return kwargs
