"""Global concurrency and rate limits around a shared database and an external API
(Prefect's "global concurrency limits" guide); the limits are declared outside the
file, as `prefect gcl create` does for Prefect."""

import asyncio

from headwater import flow, task
from headwater.concurrency.asyncio import concurrency as aconcurrency
from headwater.concurrency.asyncio import rate_limit as arate_limit
from headwater.concurrency.sync import concurrency, rate_limit


@task
def process_data(x: int, y: int) -> int:
    with concurrency("database", occupy=1):
        return x + y


@flow
def concurrency_flow(batch_size: int) -> list[int]:
    results = []
    for x in range(batch_size):
        rate_limit("rate-limited-api")
        results.append(process_data.submit(x, x))
    return [r.result() for r in results]


@task
async def call_api(n: int) -> int:
    await arate_limit("rate-limited-api")
    async with aconcurrency("database"):
        await asyncio.sleep(0)
        return n * 10


@flow
async def async_flow(n: int) -> list[int]:
    return list(await asyncio.gather(*(call_api(i) for i in range(n))))


if __name__ == "__main__":
    concurrency_flow(batch_size=3)
