"""Runtime information about the current run: ``from headwater.runtime import flow_run``.

Mirrors ``prefect.runtime``: ``flow_run``, ``task_run`` and ``deployment``, whose
attributes are read when accessed, from the active run's context, falling back to the
environment variables the operator sets on the pod. Any attribute can be overridden
with ``HEADWATER__RUNTIME__<MODULE>__<ATTRIBUTE>`` (Prefect's ``PREFECT__RUNTIME__…``
names are read too): see :mod:`headwater.runtime.overrides`.
"""

from headwater.runtime import deployment, flow_run, task_run

__all__ = ["deployment", "flow_run", "task_run"]
