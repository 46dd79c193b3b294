"""Asset pipeline: raw → processed → analytics, with lineage and a markdown report.

Each ``@materialize`` task declares the asset it writes; lineage comes from the data
flowing between them (``process_orders`` receives ``extract_orders``'s result, so
processed depends on raw). The second run with the same inputs and code skips all three
materializations (state Cached, versions unchanged) — the lineage printed at the end
shows both runs.

    python examples/flows/assets.py      # runs the pipeline twice and prints lineage
    headwater execute --entrypoint examples/flows/assets.py:asset_pipeline \\
        --param day=2024-03-01
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from headwater import (
    Asset,
    AssetProperties,
    add_asset_metadata,
    create_markdown_artifact,
    flow,
    materialize,
)

RAW = Asset("file://headwater-examples/raw/orders",
            AssetProperties(name="Raw orders", owners=("data-eng",)))
PROCESSED = Asset("file://headwater-examples/processed/orders",
                  AssetProperties(name="Cleaned orders", owners=("data-eng",)))
ANALYTICS = Asset("warehouse://analytics/daily_revenue",
                  AssetProperties(name="Daily revenue", owners=("analytics",)))


@materialize(RAW)
def extract_orders(day: dt.date) -> list[dict[str, Any]]:
    """Land the day's raw orders (generated deterministically; some are invalid)."""
    rng = random.Random(day.toordinal())
    return [{"id": i, "amount": rng.choice([rng.randint(1, 500), -1])} for i in range(50)]


@materialize(PROCESSED)
def process_orders(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop invalid rows."""
    valid = [row for row in raw if row["amount"] > 0]
    add_asset_metadata(PROCESSED, {"rows_in": len(raw), "rows_out": len(valid)})
    return valid


@materialize(ANALYTICS)
def build_analytics(processed: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate revenue."""
    amounts = [row["amount"] for row in processed]
    return {"orders": len(amounts), "revenue": sum(amounts), "largest": max(amounts)}


@flow
def asset_pipeline(day: dt.date = dt.date(2024, 3, 1)) -> dict[str, Any]:
    """Materialize raw, processed and analytics orders for ``day``."""
    analytics: dict[str, Any] = build_analytics(process_orders(extract_orders(day)))
    create_markdown_artifact(
        f"# Revenue for {day}\n\n| orders | revenue | largest |\n|---|---|---|\n"
        f"| {analytics['orders']} | {analytics['revenue']} | {analytics['largest']} |\n",
        key="daily-revenue-report",
        description="Daily revenue summary",
    )
    return analytics


def print_lineage() -> None:
    """Print every recorded materialization of the three assets."""
    from headwater.assets import asset_history
    from headwater.results import resolve_storage

    storage = resolve_storage(None)
    for asset in (RAW, PROCESSED, ANALYTICS):
        for record in asset_history(storage, asset.key):
            upstream = ", ".join(f"{k}@{v}" for k, v in record["upstreamVersions"].items())
            print(f"{asset.key} v{record['version']} run={record['flowRunId']} "
                  f"<- {upstream or 'source'}")


if __name__ == "__main__":
    asset_pipeline()
    asset_pipeline()  # unchanged inputs and code: every materialization is skipped
    print_lineage()
