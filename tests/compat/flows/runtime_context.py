"""Reading the current run from headwater.runtime, as with prefect.runtime."""

from headwater import flow, task
from headwater.runtime import flow_run, task_run


@task(task_run_name="describe-{label}")
def describe(label: str) -> dict:
    return {"task_run": task_run.name, "task": task_run.task_name,
            "task_parameters": task_run.parameters}


@flow(flow_run_name="report-{day}")
def report(day: str) -> dict:
    info = describe(label=day)
    info.update(flow_run=flow_run.name, flow=flow_run.flow_name,
                parameters=flow_run.parameters, run_count=flow_run.run_count,
                scheduled=flow_run.scheduled_start_time.isoformat(),
                listed=sorted(flow_run.__all__))
    return info


if __name__ == "__main__":
    print(report("2026-12-07"))
