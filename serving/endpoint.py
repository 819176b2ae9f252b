"""Finding the model endpoint a command should use, starting a server if none answers,
and how it is reached: the API key and the warning for a server other machines reach.

Shared by every command that talks to the model (ask, chat, synthesize, serve-chat).

Neither vLLM nor the chat app authenticates by default. ``AUTOACT_API_KEY`` (or
``--api-key`` of ``autoact serve`` / ``serve-chat``, which sets it for the command)
is the one key of both: a vLLM server started here requires it, the chat app
requires it, and every client here sends it as ``Authorization: Bearer <key>``.
The key is never written to a file; the endpoint file records only that one is needed.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import socket
import ssl
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from autoact.modelhub import resolve_model
from autoact.settings import Settings

#: The environment variable that holds the API key of the model server and the chat app.
API_KEY_ENV = "AUTOACT_API_KEY"


def api_key_from_env() -> str | None:
    """The API key clients send and servers started here require (None: no key)."""
    return (os.environ.get(API_KEY_ENV) or "").strip() or None


def use_api_key(value: str | None) -> str | None:
    """The API key of this command: ``value`` (an ``--api-key`` option), else the
    environment's. A given key is put in the environment, so that every client the
    command makes (model clients, a model server it starts) uses it."""
    key = (value or "").strip() or None
    if key:
        os.environ[API_KEY_ENV] = key
    return key or api_key_from_env()


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS settings shared by every HTTP client here: httpx otherwise builds them per
    client, and loading the CA bundle takes about 70 ms of CPU each time, taken from a
    model server on the same cores (even for http:// endpoints)."""
    import httpx

    return httpx.create_ssl_context()


def auth_headers(api_key: str | None = None) -> dict[str, str]:
    """The ``Authorization`` header for ``api_key`` (default: the environment's); none without a key."""
    key = api_key or api_key_from_env()
    return {"Authorization": f"Bearer {key}"} if key else {}


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost).

    An empty host, a wildcard (0.0.0.0, ::) or a name that does not resolve to
    loopback addresses only counts as reachable from other machines."""
    host = (host or "").strip().strip("[]")
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def exposure_warning(what: str, host: str, port: int | str, api_key: str | None) -> str | None:
    """The warning to print when ``what`` (a server) binds an address other machines
    reach; None on a loopback address."""
    if is_loopback(host):
        return None
    where = f"{host or '0.0.0.0'}:{port}"
    if api_key:
        return (
            f"WARNING: {what} listens on {where}, which other machines can reach. Requests need the API key, "
            "but the traffic (the key included) is plain HTTP: use this on trusted networks only, "
            "or behind a TLS proxy."
        )
    return (
        f"WARNING: {what} listens on {where}, which other machines can reach, and it has NO AUTHENTICATION: "
        "anyone who reaches that port can use it. Set an API key (--api-key, or the environment variable "
        f"{API_KEY_ENV}), or bind 127.0.0.1."
    )


def warn_if_exposed(what: str, host: str, port: int | str, api_key: str | None) -> None:
    """Print :func:`exposure_warning` to stderr, framed so that it stands out."""
    message = exposure_warning(what, host, port, api_key)
    if message:
        bar = "!" * 78
        print(f"{bar}\n{message}\n{bar}", file=sys.stderr, flush=True)


class EndpointUnsuitable(RuntimeError):
    """A server answers but cannot do what the command needs (an adapter it does not serve)."""


@contextlib.contextmanager
def model_endpoint(
    settings: Settings,
    base_url: str | None,
    serve: bool,
    adapters: Callable[[], dict[str, Path]] | None = None,
    check: Callable[[list[str], str], None] | None = None,
) -> Iterator[str]:
    """The endpoint a command uses, the one policy of every command that talks to the model:

    1. the URL given (``--base-url``) or configured (``server.base_url``): it must answer
       and pass ``check(served models, url)``;
    2. else the endpoint ``autoact serve`` recorded, if it answers and passes ``check``
       (one that fails it is passed over, said on stderr);
    3. else, with ``serve``, a vLLM server started for the command with ``adapters()``
       (default: the run's) and stopped after it, also on SIGTERM.

    ``check`` raises :class:`EndpointUnsuitable` for a server that lacks what is needed."""
    # imported here, not at the top: client.py and vllm_server.py import this module
    from autoact.serving import vllm_server
    from autoact.serving.client import ModelServerUnreachable, endpoint_url

    url = base_url or settings.server.base_url
    if url:
        try:
            served = vllm_server.list_models(url)
        except vllm_server.ServerError as exc:
            raise ModelServerUnreachable(str(exc)) from exc
        if check:
            check(served, url)
        yield url.rstrip("/")
        return
    found: str | None = None
    try:
        found = endpoint_url(settings)
        served = vllm_server.list_models(found)
        if check:
            check(served, found)
    except (ModelServerUnreachable, vllm_server.ServerError) as exc:
        if not serve:
            raise ModelServerUnreachable(
                f"no model server answers ({exc}): start one with `autoact serve`, or drop --no-serve") from exc
        found = None
    except EndpointUnsuitable as exc:
        print(f"not using the recorded server at {found}: {exc}", file=sys.stderr)
        found = None
    if found:
        yield found
        return
    chosen = adapters() if adapters else vllm_server.run_adapters(settings.run_dir)
    if not serve:
        raise ModelServerUnreachable("no model server answers: start one with `autoact serve`, or drop --no-serve")
    print(f"no model server answers: starting one for this command (adapters: {sorted(chosen) or 'none'})…",
          file=sys.stderr)
    start = time.perf_counter()
    server = vllm_server.VLLMServer(settings, resolve_model(settings.model, settings.home), adapters=chosen)
    server.start()
    print(f"model server ready at {server.base_url} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    with vllm_server.stop_on_sigterm():
        try:
            yield server.base_url
        finally:
            server.stop()
