"""Finding the model endpoint a command should use, starting a server if none answers.

Shared by every command that talks to the model (ask, chat, synthesize, serve-chat).
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Iterator

from autoact.settings import Settings


@contextlib.contextmanager
def model_endpoint(settings: Settings, base_url: str | None, serve: bool) -> Iterator[str]:
    """The endpoint to use; starts a temporary server for the run when none answers."""
    from autoact.models import ModelServerUnreachable, endpoint_url
    from autoact.serving.vllm_server import ServerError, list_models

    url = base_url or settings.server.base_url
    if url:
        list_models(url)  # raises ServerError naming the URL
        yield url.rstrip("/")
        return
    found: str | None = None
    try:
        found = endpoint_url(settings)
        list_models(found)
    except (ModelServerUnreachable, ServerError) as exc:
        if not serve:
            raise ModelServerUnreachable(f"{exc} (start one with `autoact serve`, or drop --no-serve)") from exc
        found = None
    if found:
        yield found
        return
    from autoact.modelhub import resolve_model
    from autoact.serving.vllm_server import VLLMServer, run_adapters

    adapters = run_adapters(settings.run_dir)
    print(f"no model server answers: starting one for this command (adapters: {sorted(adapters) or 'none'})…",
          file=sys.stderr)
    start = time.perf_counter()
    server = VLLMServer(settings, resolve_model(settings.model, settings.home), adapters=adapters)
    server.start()
    print(f"model server ready at {server.base_url} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    try:
        yield server.base_url
    finally:
        server.stop()
