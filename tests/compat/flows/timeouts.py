"""A task that must finish in time; the flow degrades gracefully when it does not."""

import time

from headwater import flow, task


@task(timeout_seconds=0.2)
def slow_query(seconds: float) -> str:
    time.sleep(seconds)
    return "fresh"


@task
def cached_answer() -> str:
    return "stale"


@flow
def dashboard(query_seconds: float = 5.0) -> dict:
    state = slow_query(query_seconds, return_state=True)
    if state.is_failed():
        return {"data": cached_answer(), "state": state.name}
    return {"data": state.result(), "state": state.name}


if __name__ == "__main__":
    print(dashboard())
