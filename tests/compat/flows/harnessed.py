"""A flow and the test a Prefect user writes for it with prefect_test_harness."""

from headwater import flow, task
from headwater.testing.utilities import prefect_test_harness


@task(persist_result=True)
def add(a: int, b: int) -> int:
    return a + b


@flow
def totals(values: list[int]) -> int:
    total = 0
    for v in values:
        total = add(total, v)
    return total


def test_totals() -> None:
    with prefect_test_harness():
        assert totals([1, 2, 3]) == 6


if __name__ == "__main__":
    test_totals()
