#!/usr/bin/env bash
# Sets everything up (idempotent) and runs the whole test suite, slow tests included:
# they start the real vLLM server, train real adapters and drive a real browser.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m "not slow"`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser
.venv/bin/autoact model prepare --all
mkdir -p test-artifacts
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
# pytest's 5 means no test was collected: that is a failure here, not a pass.
exit $status
