"""``prefect.client.schemas.objects`` names used in hook signatures::

    def notify(flow: Flow, flow_run: FlowRun, state: State[Any]) -> None: ...

``FlowRun`` and ``TaskRun`` are the engine's run records (:mod:`headwater.context`), the
objects hooks receive; ``State`` and ``StateType`` are :mod:`headwater.states`'.
"""

from headwater.context import FlowRun, TaskRun
from headwater.states import State, StateType

__all__ = ["FlowRun", "State", "StateType", "TaskRun"]
