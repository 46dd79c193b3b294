"""Templated run names, from parameters and from a function."""

from headwater import flow, task
from headwater.runtime import flow_run, task_run


def name_from_parameters() -> str:
    return f"chunk-{flow_run.parameters['chunk']}"


@task(task_run_name="load-{table}-{chunk}")
def load(table: str, chunk: int) -> str:
    return task_run.name


@flow(flow_run_name=name_from_parameters)
def load_chunk(chunk: int, table: str = "events") -> dict:
    return {"flow_run": flow_run.name, "task_run": load(table, chunk)}


if __name__ == "__main__":
    print(load_chunk(7))
