#!/usr/bin/env bash
# Build the robfig/cron peer (benchmarks/peers/robfig) into .tools/robfig-peer.
#
# robfig/cron v3 is the cron library of the Kubernetes CronJob controller and
# Argo CronWorkflows. No Go module proxy is needed: Debian's golang-go and
# golang-github-robfig-cron-dev (3.0.1, source under /usr/share/gocode/src)
# are installed with apt-get when missing, and go.mod's replace directive
# points the module at that source. Safe to run again.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SRC="$ROOT/benchmarks/peers/robfig"
OUT="$ROOT/.tools/robfig-peer"
CRON_SRC="/usr/share/gocode/src/github.com/robfig/cron"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

missing=()
if ! command -v go >/dev/null 2>&1; then
    missing+=(golang-go)
fi
if [ ! -f "$CRON_SRC/spec.go" ]; then
    missing+=(golang-github-robfig-cron-dev)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install_robfig: installing ${missing[*]} with apt-get" >&2
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

mkdir -p "$ROOT/.tools"
cd "$SRC"
GO111MODULE=on GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local go build -o "$OUT" .
echo "install_robfig: built $OUT ($(go version))" >&2
