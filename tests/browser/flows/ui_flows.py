"""The flows the UI's browser tests run in the sandbox (tests/browser/test_ui.py).

* ``report``: a window of days for one region. Tasks with distinct names (so searching
  task runs by name means something), log lines at several levels, a markdown artifact
  with a table and a safe link, a table artifact and a link artifact. Its parameters
  (two dates, an enum, an integer from 1 to 1000) give the run form a date picker, a dropdown
  and a field the server must refuse.
* ``nested``: subflows three deep (``nested`` → ``outer`` → ``middle`` → ``inner``), each
  with a task run of its own, a log line and an artifact, for the subflow pages.
* ``hostile``: publishes artifacts and log lines written to attack the page that shows
  them (``<script>``, ``onerror=``, ``javascript:`` links). Each payload sets
  ``window.__headwater_pwned`` or opens a dialog if it ever runs; the test asserts that
  neither happened.
* ``many``: ``n`` tiny tasks one after another (``item-0`` … ``item-<n-1>``), for a run
  whose record holds 10,000 task runs: the page must stay usable (a window of rows in
  the DOM, the last one reachable, search finds one).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from headwater import flow, get_run_logger, task
from headwater.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from pydantic import Field

Region = Literal["eu", "us", "apac"]


@task(task_run_name="fetch-{region}-{day}")
def fetch(region: str, day: dt.date) -> int:
    """The orders of one region and day (made up, the same every time)."""
    orders = (day.toordinal() * 7 + len(region)) % 50 + 10
    get_run_logger().info("fetched %d orders for %s on %s", orders, region, day)
    return orders


@task(task_run_name="summarize-{region}")
def summarize(region: str, counts: list[int], limit: int) -> dict[str, int]:
    """Totals over the window; warns when a day is above ``limit``."""
    busy = [c for c in counts if c > limit]
    if busy:
        get_run_logger().warning("%d day(s) above the limit of %d", len(busy), limit)
    return {"days": len(counts), "orders": sum(counts), "busy_days": len(busy)}


@task(task_run_name="publish-{region}")
def publish(region: str, totals: dict[str, int]) -> None:
    """The run's artifacts: a markdown report, a table and a link."""
    create_markdown_artifact(
        f"# Orders report: {region}\n\n"
        f"| days | orders | busy days |\n|---|---|---|\n"
        f"| {totals['days']} | {totals['orders']} | {totals['busy_days']} |\n\n"
        "See the [runbook](https://example.com/runbooks/orders).\n",
        key="orders-report", description="Orders per region")
    create_table_artifact([{"metric": k, "value": v} for k, v in totals.items()],
                          key="orders-totals", description="Totals")
    create_link_artifact("https://example.com/dashboards/orders", "Orders dashboard",
                         key="orders-dashboard")
    get_run_logger().info("published the %s report", region)


@flow(log_prints=True)
def report(start_date: dt.date, end_date: dt.date, region: Region = "eu",
           limit: Annotated[int, Field(ge=1, le=1000)] = 40) -> int:
    """Report the orders of ``region`` for every day in ``[start_date, end_date)``."""
    days = [start_date + dt.timedelta(days=i) for i in range((end_date - start_date).days)]
    counts = [fetch(region, day) for day in days]
    totals = summarize(region, counts, limit)
    publish(region, totals)
    print(f"report done: {totals['orders']} orders in {len(days)} day(s)")
    return totals["orders"]


@task(task_run_name="step-{level}")
def step(level: str, n: int) -> int:
    """One flow run's own work: a log line, an artifact, a number."""
    get_run_logger().info("step at %s with %d", level, n)
    create_markdown_artifact(f"# {level}\n\n{n} in, {n + 1} out\n", key=f"step-{level}")
    return n + 1


@flow(flow_run_name="inner-{n}")
def inner(n: int) -> int:
    """The deepest subflow."""
    return step("inner", n)


@flow(flow_run_name="middle-{n}")
def middle(n: int) -> int:
    """A subflow that calls a subflow."""
    return inner(step("middle", n))


@flow(flow_run_name="outer-{n}")
def outer(n: int) -> int:
    """The root's subflow."""
    return middle(step("outer", n))


@flow
def nested(n: int = 1) -> int:
    """Subflows three deep, each with a task run of its own."""
    get_run_logger().info("nested starts at %d", n)
    return outer(step("root", n))


PWNED = "window.__headwater_pwned"
"""What every payload sets when it runs; the page must leave it undefined."""

HOSTILE_MARKDOWN = f"""# Totally normal report

<script>{PWNED} = "script";</script>

<img src=x onerror="{PWNED} = 'onerror'; alert('onerror')">

[click me](javascript:{PWNED}='link';alert('link'))

<a href="javascript:{PWNED}='raw-a'">raw anchor</a>

<svg onload="{PWNED} = 'svg'"></svg>

<iframe src="javascript:parent.{PWNED}='iframe'"></iframe>
"""


@flow
def hostile() -> None:
    """Publish artifacts and log lines that try to run script in the UI."""
    create_markdown_artifact(HOSTILE_MARKDOWN, key="hostile-markdown",
                             description=f"<img src=x onerror=\"{PWNED}='description'\">")
    create_table_artifact(
        [{"name": f"<img src=x onerror=\"{PWNED}='table'\">",
          "value": f"<script>{PWNED}='table-script'</script>"}],
        key="hostile-table")
    create_link_artifact(f"javascript:{PWNED}='link-artifact'", "open me",
                         key="hostile-link")
    get_run_logger().warning("<img src=x onerror=\"%s='log'\"> <script>%s='log'</script>",
                             PWNED, PWNED)


@task(task_run_name="item-{i}")
def item(i: int) -> int:
    """One of many: returns its index."""
    return i


@flow
def many(n: int = 10_000) -> int:
    """Run ``n`` small tasks one after another, so the run's record has ``n`` task runs."""
    return sum(item(i) for i in range(n))
