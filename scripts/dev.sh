#!/usr/bin/env bash
# Headwater's main job on its embedded default, on a machine with only python3:
# sets up .venv, then runs the example flows locally with the SDK engine (no server,
# results under .headwater/ in the repo). Extra arguments are passed to the runner.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh
export PATH="$root/.venv/bin:$PATH"
export HEADWATER_HOME="${HEADWATER_HOME:-$root/.headwater}"
for flow in examples/flows/ingest.py examples/flows/assets.py; do
    echo "== python $flow"
    python "$flow"
done
