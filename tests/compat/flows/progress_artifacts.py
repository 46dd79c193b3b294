"""A long load that reports its progress as an artifact."""

from headwater import flow, task
from headwater.artifacts import create_progress_artifact, update_progress_artifact


@task
def load_batches(batches: int) -> int:
    progress_id = create_progress_artifact(progress=0.0, key="load-progress",
                                           description="Loading batches")
    loaded = 0
    for i in range(batches):
        loaded += 1
        update_progress_artifact(artifact_id=progress_id, progress=(i + 1) / batches * 100)
    return loaded


@flow
def backfill(batches: int = 4) -> int:
    return load_batches(batches)


if __name__ == "__main__":
    backfill()
