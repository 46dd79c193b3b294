"""headwater-dbt: run dbt from Headwater flows, as prefect-dbt does for Prefect.

Each node dbt executes becomes a task run of the current flow run, each model, seed and
snapshot an asset with its upstream lineage from ``manifest.json``, and every invocation
a table artifact of its results (docs/dbt.md).

* :func:`headwater_dbt.report.report_results` records a finished invocation from its
  ``manifest.json`` and ``run_results.json`` documents (dbt Core or dbt Cloud);
* :func:`run_dbt` / :class:`DbtCoreRunner` run dbt Core in-process through dbt's
  programmatic runner and record each node as it finishes.

It imports the SDK only: never the operator, the dev cluster, kopf or the Kubernetes
client (.importlinter). dbt itself is imported when a runner is first used, not here.
"""

from headwater_dbt.core import (
    DbtCoreRunner,
    DbtError,
    DbtInvocationError,
    DbtNodesFailed,
    run_dbt,
)
from headwater_dbt.report import DbtReport, DbtReporter, NodeResult, asset_key, report_results

__all__ = [
    "DbtCoreRunner",
    "DbtError",
    "DbtInvocationError",
    "DbtNodesFailed",
    "DbtReport",
    "DbtReporter",
    "NodeResult",
    "asset_key",
    "report_results",
    "run_dbt",
]
