"""A flow that returns the states of its checks, as Prefect users write quality gates."""

from headwater import flow, task


@task
def check_not_empty(rows: list[int]) -> bool:
    if not rows:
        raise ValueError("the table is empty")
    return True


@task
def check_positive(rows: list[int]) -> bool:
    if any(r < 0 for r in rows):
        raise ValueError("negative values found")
    return True


@flow
def quality_gate(rows: list[int]) -> list:
    return [check_not_empty(rows, return_state=True),
            check_positive(rows, return_state=True)]


if __name__ == "__main__":
    for state in quality_gate([3, -1]):
        print(state.name, state.message)
