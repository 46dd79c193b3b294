#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: install, lint, type-check, layering
# contracts, generated-file drift, unit + api tests (chart tests included) and the UI's
# real-browser tests (tests/browser: Debian's chromium, installed by install-chromium.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh
export PATH="$root/.venv/bin:$PATH"

echo "== ruff"
ruff check .
echo "== mypy --strict"
mypy --strict sdk/src/headwater operator/src/headwater_operator dev/src/headwater_dev
# headwater-dbt against the dbt it is installed with (its own environment: bootstrap.sh).
mypy --strict --python-executable .venv-dbt/bin/python dbt/src/headwater_dbt
echo "== import contracts"
PYTHONPATH="$root/dbt/src${PYTHONPATH:+:$PYTHONPATH}" lint-imports  # headwater_dbt lives in .venv-dbt
echo "== CRD drift"
python -m headwater_operator.crdgen --check
echo "== chromium (the UI's browser tests)"
bash scripts/install-chromium.sh
echo "== pytest"
set +e
python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure, not a pass" >&2
    exit 1
fi
if [ "$rc" -ne 0 ]; then
    exit "$rc"
fi
echo "== pytest tests/dbt (headwater-dbt, real dbt-core and dbt-duckdb, in .venv-dbt)"
.venv-dbt/bin/python -m pytest tests/dbt
