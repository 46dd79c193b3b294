"""Tags from the task decorator and from nested tags() blocks."""

from headwater import flow, tags, task
from headwater.runtime import flow_run, task_run


@task(tags=["warehouse"])
def write(table: str) -> list:
    return task_run.tags


@flow
def publish() -> dict:
    with tags("finance"):
        task_tags = write("ledger")
    return {"flow": flow_run.tags, "task": task_tags}


if __name__ == "__main__":
    with tags("nightly", "backfill"):
        print(publish())
