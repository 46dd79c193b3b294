"""Cache policies composed from Prefect's building blocks."""

from headwater import flow, task
from headwater.cache_policies import INPUTS, TASK_SOURCE

runs: list[int] = []


@task(cache_policy=INPUTS + TASK_SOURCE)
def enrich(customer_id: int) -> dict:
    runs.append(customer_id)
    return {"id": customer_id, "tier": "gold" if customer_id % 2 else "silver"}


@task(cache_policy=INPUTS - "debug")
def score(customer: dict, debug: bool = False) -> int:
    return 10 if customer["tier"] == "gold" else 5


@flow
def segment(ids: list[int]) -> list[int]:
    return [score(enrich(i), debug=True) for i in ids]


if __name__ == "__main__":
    print(segment([1, 2, 3]))
