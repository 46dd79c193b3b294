"""Concurrent tasks with .submit(), wait_for, wait() and as_completed()."""

from headwater import flow, task
from headwater.futures import as_completed, wait

order: list[str] = []


@task
def extract(table: str) -> list[int]:
    return list(range(len(table)))


@task
def create_schema() -> None:
    order.append("schema")


@task
def load(rows: list[int]) -> int:
    order.append("load")
    return len(rows)


@flow
def pipeline(tables: list[str]) -> dict:
    extracted = [extract.submit(t) for t in tables]
    done, not_done = wait(extracted)
    schema = create_schema.submit()
    loads = [load.submit(f, wait_for=[schema]) for f in extracted]
    total = sum(f.result() for f in as_completed(loads))
    return {"done": len(done), "not_done": len(not_done), "rows": total}


if __name__ == "__main__":
    print(pipeline(["orders", "users"]))
