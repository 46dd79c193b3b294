"""A flow that returns the futures of mapped tasks (Prefect hands back their states)."""

from headwater import flow, task


@task
def square(x: int) -> int:
    if x == 13:
        raise ValueError("unlucky")
    return x * x


@flow
def squares(numbers: list[int]):
    return square.map(numbers)


if __name__ == "__main__":
    print([s.result(raise_on_failure=False) for s in squares([1, 2, 3])])
