"""A flow file written for `prefect deploy` / `flow.deploy()`: only the imports changed."""

from headwater import flow, task


@task(retries=2)
def extract(table: str, limit: int) -> list[int]:
    return list(range(limit))


@flow(name="warehouse-sync", retries=1, retry_delay_seconds=30, log_prints=True)
def sync(table: str = "orders", limit: int = 3, full_refresh: bool = False) -> int:
    """Copy a table into the warehouse."""
    rows = extract(table, limit)
    print(f"synced {len(rows)} rows of {table}")
    return len(rows)


if __name__ == "__main__":
    sync.deploy(
        name="nightly-sync",
        work_pool_name="kubernetes-pool",
        image="ghcr.io/acme/warehouse:2.3",
        cron="0 3 * * *",
        parameters={"table": "customers"},
        tags=["warehouse"],
        push=False,
        build=False,
    )
