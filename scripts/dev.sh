#!/usr/bin/env bash
# Headwater's main job on its embedded default, on a machine with only python3:
# sets up .venv, then runs `headwater dev` — an embedded Kubernetes API (the emulator the
# api tests use), the real operator, and a local kubelet stand-in that runs each flow-run
# pod's `headwater execute` as a local process — over examples/quickstart, pipeline and
# assets, until every FlowRun has finished. State (kubeconfig, results, pod logs) goes
# under .headwater/dev. Extra arguments go to `headwater dev` (see docs/sandbox.md); for
# the SDK alone, `python examples/flows/ingest.py` runs a flow with no cluster at all.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh
exec .venv/bin/headwater dev --until-complete "$@"
