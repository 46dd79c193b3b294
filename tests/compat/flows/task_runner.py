"""Bounded concurrency with ThreadPoolTaskRunner(max_workers=...)."""

import threading

from headwater import flow, task
from headwater.task_runners import ThreadPoolTaskRunner

counts = {"active": 0, "peak": 0}
lock = threading.Lock()
release = threading.Event()


@task
def download(n: int) -> int:
    with lock:
        counts["active"] += 1
        counts["peak"] = max(counts["peak"], counts["active"])
    release.wait(0.05)
    with lock:
        counts["active"] -= 1
    return n


@flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
def download_all(count: int = 6) -> list[int]:
    return [f.result() for f in download.map(range(count))]


if __name__ == "__main__":
    print(download_all())
