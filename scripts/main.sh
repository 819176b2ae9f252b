#!/usr/bin/env bash
# Sets everything up (idempotent) and runs the main job on the embedded default model.
# Extra arguments go to `autoact demo` (see `.venv/bin/autoact demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/autoact demo "$@"
