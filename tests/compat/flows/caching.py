"""An expensive lookup cached on its inputs for a day."""

from datetime import timedelta

from headwater import flow, task
from headwater.tasks import task_input_hash

lookups: list[str] = []


@task(cache_key_fn=task_input_hash, cache_expiration=timedelta(days=1))
def exchange_rate(currency: str) -> float:
    lookups.append(currency)
    return {"EUR": 1.08, "GBP": 1.27}[currency]


@flow
def convert(amounts: dict) -> float:
    return round(sum(v * exchange_rate(c) for c, v in amounts.items()), 2)


if __name__ == "__main__":
    print(convert({"EUR": 10, "GBP": 5}))
