"""An async flow that fetches pages concurrently with asyncio.gather."""

import asyncio

from headwater import flow, task


@task
async def fetch_page(page: int) -> list[int]:
    await asyncio.sleep(0)
    return [page * 10 + i for i in range(3)]


@task
def flatten(pages: list[list[int]]) -> list[int]:
    return [item for page in pages for item in page]


@flow
async def crawl(pages: int = 3) -> list[int]:
    results = await asyncio.gather(*(fetch_page(p) for p in range(pages)))
    return flatten(list(results))


if __name__ == "__main__":
    print(asyncio.run(crawl()))
