#!/usr/bin/env bash
# Create (or refresh) the development environment in .venv: the three distributions
# installed editable — sdk/ (headwater) and operator/ (headwater-operator) with their test
# extras, and dev/ (headwater-dev: the emulator the api tests and `headwater dev` run on).
# Needs only python3 (3.11+) on PATH.
# Re-running is cheap: it reinstalls only when a pyproject.toml changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
fi
stamp=".venv/.headwater-stamp"
want="$(cat sdk/pyproject.toml operator/pyproject.toml dev/pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e "sdk[test,fsspec]" -e "operator[test]" -e "dev"
    echo "$want" > "$stamp"
fi
