#!/usr/bin/env bash
# Create (or refresh) the development environments:
# * .venv: sdk/ (headwater) and operator/ (headwater-operator) with their test extras, and
#   dev/ (headwater-dev: the emulator the api tests and `headwater dev` run on), editable;
# * .venv-dbt: sdk/ and dbt/ (headwater-dbt) with its test extra (dbt-core, dbt-duckdb).
#   An environment of its own because no single one can hold both: every dbt-core 1.x
#   pins pathspec<0.13 and the repository's mypy (sdk's test extra) needs pathspec>=1.0,
#   so pip refuses to resolve them together (docs/decisions.md, 2026-12-07). mypy checks
#   headwater_dbt from .venv with --python-executable .venv-dbt/bin/python.
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
want="$(cat sdk/pyproject.toml operator/pyproject.toml dev/pyproject.toml dbt/pyproject.toml \
    | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e "sdk[test,fsspec]" -e "operator[test]" -e "dev"
    if [ ! -x .venv-dbt/bin/python ]; then
        "$py" -m venv .venv-dbt
    fi
    .venv-dbt/bin/python -m pip install --quiet --upgrade pip
    .venv-dbt/bin/python -m pip install --quiet -e "sdk[fsspec]" -e "dbt[test]"
    echo "$want" > "$stamp"
fi
