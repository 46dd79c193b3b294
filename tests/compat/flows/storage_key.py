"""Results stored under a readable key, e.g. one file per day."""

from headwater import flow, task

calls: list[str] = []


@task(result_storage_key="daily/{parameters[day]}-summary.pickle")
def summarize(day: str) -> dict:
    calls.append(day)
    return {"day": day, "rows": 42}


@flow
def daily(day: str) -> dict:
    return summarize(day)


if __name__ == "__main__":
    print(daily("2026-12-07"))
