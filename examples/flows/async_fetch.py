"""An ``async def`` flow: fetch several pages concurrently, retrying flaky ones.

Written exactly as for Prefect 3 (only the import differs)::

    python examples/flows/async_fetch.py
    headwater execute --entrypoint examples/flows/async_fetch.py:fetch_all --param pages=5

Awaited task calls run in the flow's event loop, so ``asyncio.gather`` runs them
concurrently; ``timeout_seconds`` cancels a stuck coroutine at its ``await``.
"""

from __future__ import annotations

import asyncio

from headwater import flow, get_run_logger, tags, task


@task(retries=2, retry_delay_seconds=[0.1, 0.5], timeout_seconds=10)
async def fetch(page: int) -> dict[str, int]:
    """Stand-in for an HTTP call (``await client.get(...)`` in real code)."""
    await asyncio.sleep(0.01)
    return {"page": page, "rows": 10 * page}


@task
async def total_rows(results: list[dict[str, int]]) -> int:
    """Sum the rows of every page."""
    return sum(r["rows"] for r in results)


@flow(log_prints=True)
async def fetch_all(pages: int = 3) -> int:
    """Fetch ``pages`` pages concurrently and report how many rows they hold."""
    with tags("api"):
        results = await asyncio.gather(*(fetch(p) for p in range(1, pages + 1)))
    total = await total_rows(list(results))
    get_run_logger().info("fetched %d pages, %d rows", len(results), total)
    return total


if __name__ == "__main__":
    asyncio.run(fetch_all())
