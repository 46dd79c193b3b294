"""A data-quality gate: write a file, check it, and undo the write if the check fails
(Prefect's transactions guide), plus an idempotent download keyed by day."""

import os

from headwater import flow, task
from headwater.transactions import get_transaction, transaction

log: list[str] = []


@task
def write_file(filename: str, contents: str) -> None:
    with open(filename, "w") as f:
        f.write(contents)


@write_file.on_rollback
def del_file(txn):
    log.append("rollback")
    os.unlink(txn.get("filename"))


@write_file.on_commit
def confirm(txn):
    log.append("commit")


@task
def quality_test(filename: str) -> None:
    with open(filename) as f:
        data = f.readlines()
    if len(data) < 2:
        raise ValueError("Not enough data!")


@flow
def pipeline(filename: str, contents: str) -> str:
    with transaction() as txn:
        txn.set("filename", filename)
        write_file(filename, contents)
        quality_test(filename)
    return "written"


@task
def download(day: str) -> str:
    log.append(f"download {day}")
    return f"rows for {day}"


@flow(log_prints=True)
def daily_download(day: str) -> str:
    with transaction(key=f"download-{day}") as txn:
        if txn.is_committed():
            print("Already downloaded. Exiting early.")
            return "skipped"
        assert get_transaction() is txn
        download(day)
    return "downloaded"


if __name__ == "__main__":
    pipeline(filename="side-effect.txt", contents="hello world")
