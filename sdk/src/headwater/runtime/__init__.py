"""Runtime information about the current run: ``from headwater.runtime import flow_run``.

Mirrors ``prefect.runtime``: attributes are read when accessed, from the active run's
context, falling back to the environment variables the operator sets on the pod.
"""

from headwater.runtime import flow_run, task_run

__all__ = ["flow_run", "task_run"]
