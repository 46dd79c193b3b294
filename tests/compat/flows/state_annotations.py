"""Hooks annotated with generic states, as Prefect 3 code types them."""

from typing import Any

from headwater import flow, task
from headwater.client.schemas.objects import FlowRun, TaskRun
from headwater.flows import Flow
from headwater.states import State
from headwater.tasks import Task

events: list[str] = []


def task_done(task: Task[..., Any], task_run: TaskRun, state: State[int]) -> None:
    events.append(f"task {task.name} -> {state.result()}")


def flow_done(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    events.append(f"flow {flow.name} {state.name}")


def flow_failed(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    events.append(f"flow {flow.name} failed: {state.message}")


@task(on_completion=[task_done])
def count_rows(rows: list[int]) -> int:
    return len(rows)


@flow(on_completion=[flow_done], on_failure=[flow_failed])
def audit(rows: list[int]) -> State[int]:
    if not rows:
        raise ValueError("no rows to audit")
    return count_rows(rows, return_state=True)


if __name__ == "__main__":
    print(audit([1, 2, 3]))
