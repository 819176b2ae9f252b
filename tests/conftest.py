"""Fixtures shared by the test modules.

Real components (the embedded model, the vLLM server) are session-scoped: they are
expensive on 2 cores, and every test that uses them is marked ``slow``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autoact.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("AUTOACT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The plumbing tests run on the fast embedded model; the default one is for the main job.
os.environ.setdefault("AUTOACT_MODEL", "embedded:smollm2-135m")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the repository; tests that need it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared benchmark data not found at {SHARED_DATA} (set AUTOACT_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def real_settings() -> Settings:
    """Settings on the real cache (prepared fast model, vLLM environment), no config file."""
    return Settings(run_dir=Path("runs/test"), model="embedded:smollm2-135m")


@pytest.fixture(scope="session")
def embedded_model(real_settings: Settings) -> str:
    from autoact.modelhub import prepare_embedded_model

    return str(prepare_embedded_model(real_settings.home, "smollm2-135m"))
