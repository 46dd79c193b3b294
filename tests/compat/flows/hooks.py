"""State-change hooks that notify on failure and on completion."""

from headwater import flow, task

notifications: list[str] = []


def alert(flow, flow_run, state):
    notifications.append(f"ALERT {flow_run.name}: {state.message}")


def celebrate(flow, flow_run, state):
    notifications.append(f"done {flow.name}")


def task_failed(task, task_run, state):
    notifications.append(f"task {task_run.name} failed")


@task(on_failure=[task_failed])
def divide(a: int, b: int) -> float:
    return a / b


@flow(on_failure=[alert], on_completion=[celebrate], flow_run_name="ratio-{b}")
def ratio(a: int, b: int) -> float:
    return divide(a, b)


if __name__ == "__main__":
    ratio(1, 2)
