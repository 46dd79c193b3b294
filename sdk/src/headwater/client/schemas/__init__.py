"""``prefect.client.schemas`` names a flow file imports: ``State``, ``StateType``,
``FlowRun`` and ``TaskRun`` (the engine's run records, which hooks receive)."""

from headwater.client.schemas.objects import FlowRun, State, StateType, TaskRun

__all__ = ["FlowRun", "State", "StateType", "TaskRun"]
