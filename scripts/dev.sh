#!/usr/bin/env bash
# Headwater's main job on its embedded default, on a machine with only python3:
# sets up .venv, then runs `headwater dev` — an embedded Kubernetes API (the emulator the
# api tests use), the real operator, a local kubelet stand-in that runs each flow-run
# pod's `headwater execute` as a local process, and the web UI (its URL is printed:
# `UI: http://127.0.0.1:<port>/runs`) — over examples/quickstart, pipeline, assets,
# blocks and chain, until Ctrl-C. `bash scripts/dev.sh --until-complete` stops once
# every FlowRun has finished instead (no UI). State (kubeconfig, results, pod logs) goes under
# .headwater/dev. Extra arguments go to `headwater dev` (see docs/sandbox.md); for the
# SDK alone, `python examples/flows/ingest.py` runs a flow with no cluster at all.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh
exec .venv/bin/headwater dev "$@"
