"""The dbt example (the jaffle shop, examples/dbt) on a real cluster: one window's run
ingests, builds the dbt project on DuckDB and refreshes the dashboards, every dbt node a
task run and every model an asset with its lineage.

Opt-in (``HEADWATER_E2E=1``); ``scripts/e2e-kind.sh`` builds the image
(examples/dbt/Dockerfile) and runs this. ``tests/api/test_sandbox_dbt.py`` runs the same
pipeline in the sandbox on every commit; here it proves the image: headwater-dbt and
dbt-duckdb installed for the image's user, the project where the entrypoint finds it, and
a writable warehouse in a real pod.
"""

from __future__ import annotations

from typing import Any

from .headwater_e2e import Kubectl, apply_docs, example_docs, unique, wait_until

TERMINAL = {"Completed", "Failed", "Crashed", "Cancelled"}


def test_the_jaffle_shop_runs_one_window(kubectl: Kubectl, dbt_image: str,
                                         timeout: float) -> None:
    docs = [doc for doc in example_docs("dbt", dbt_image)
            if doc["kind"] in ("Flow", "Deployment")]
    name = unique("jaffle")
    run = {"apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun",
           "metadata": {"name": name},
           "spec": {"deploymentRef": {"name": "jaffle-shop-nightly"}, "trigger": "manual",
                    "parameters": {"start_date": "2026-03-01", "end_date": "2026-03-03"}}}
    apply_docs(kubectl, [*docs, run])

    def finished() -> dict[str, Any] | None:
        status: dict[str, Any] = kubectl.json("get", "flowruns.headwater.dev", name).get(
            "status") or {}
        return status if status.get("phase") in TERMINAL else None

    status = wait_until(finished, max(timeout, 600), f"FlowRun {name} reaching a final phase")
    assert status["phase"] == "Completed", status
    # Python ingestion, the dbt nodes (seeds of none: models and tests) and the dashboards.
    assert sum((status.get("taskRuns") or {}).values()) >= 20, status.get("taskRuns")
    lineage = {asset["key"]: asset.get("upstream") or [] for asset in status.get("assets") or []}
    assert "duckdb://jaffle/raw/orders" in lineage.get("duckdb://jaffle/main/stg_orders", []), \
        lineage
