"""Cleaning up after a failed step with allow_failure, passing big data with quote."""

from headwater import allow_failure, flow, task
from headwater.utilities.annotations import quote

cleaned: list[str] = []


@task
def risky_transform(data: list[int]) -> list[int]:
    raise RuntimeError("transform blew up")


@task
def cleanup(upstream) -> str:
    cleaned.append(type(upstream).__name__)
    return "cleaned"


@task
def size(payload) -> int:
    return len(payload)


@flow
def careful(data: list[int]) -> dict:
    transformed = risky_transform.submit(data)
    status = cleanup.submit(allow_failure(transformed)).result()
    return {"cleanup": status, "size": size(quote(data))}


if __name__ == "__main__":
    print(careful([1, 2, 3]))
