"""Cold start: start Python, import the engine, define and run one empty flow.

The harness measures this whole process (wall time and peak RSS); its time is also the
baseline that the other workloads subtract to get a per-task or per-subflow overhead.
Moving it between engines takes only the import line below.
"""

import time
from typing import TYPE_CHECKING

from _bench import emit, engine

if TYPE_CHECKING or engine() == "headwater":
    from headwater import flow
else:
    from prefect import flow

IMPORTED = time.perf_counter()


@flow
def empty() -> None:
    """Do nothing: whatever this costs is the engine's fixed price for one flow run."""


if __name__ == "__main__":
    started = time.perf_counter()
    empty()
    emit(IMPORTED, started, time.perf_counter())
