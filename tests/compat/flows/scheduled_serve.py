"""A flow file written for `serve()`: the schedules live at the bottom of the file."""

from datetime import timedelta

from headwater import flow, task
from headwater.schedules import Cron, Interval, RRule


@task
def fetch(source: str) -> int:
    return len(source)


@flow(log_prints=True)
def refresh(source: str = "orders") -> int:
    n = fetch(source)
    print(f"refreshed {source}: {n}")
    return n


if __name__ == "__main__":
    refresh.serve(
        name="refresh-orders",
        schedules=[
            Cron("0 6 * * 1-5", timezone="Europe/Paris"),
            Interval(timedelta(hours=4), parameters={"source": "customers"}),
            RRule("RRULE:FREQ=WEEKLY;BYDAY=SA", active=False),
        ],
    )
