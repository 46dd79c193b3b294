"""A flaky API call retried with growing delays."""

from headwater import flow, task
from headwater.tasks import exponential_backoff

attempts: list[int] = []


class FlakyAPIError(Exception):
    pass


@task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=2),
      retry_jitter_factor=0.5)
def call_api(endpoint: str) -> dict:
    attempts.append(len(attempts) + 1)
    if len(attempts) < 3:
        raise FlakyAPIError(f"{endpoint} answered 503")
    return {"endpoint": endpoint, "status": 200}


@flow(retries=1, retry_delay_seconds=5)
def sync_orders() -> dict:
    return call_api("/orders")


if __name__ == "__main__":
    print(sync_orders())
