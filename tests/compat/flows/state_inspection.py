"""Inspecting task states instead of letting failures propagate."""

from headwater import flow, task
from headwater.states import Completed, Failed


@task
def validate(record: dict) -> dict:
    if "id" not in record:
        raise KeyError("id")
    return record


@flow
def triage(records: list[dict]):
    states = [validate(r, return_state=True) for r in records]
    bad = [s for s in states if s.is_failed()]
    if len(bad) > len(states) // 2:
        return Failed(message=f"{len(bad)} of {len(states)} records are invalid")
    good = [s.result() for s in states if s.is_completed()]
    errors = [repr(s.result(raise_on_failure=False)) for s in bad]
    return Completed(message=f"{len(good)} valid", data={"valid": good, "errors": errors})


if __name__ == "__main__":
    print(triage([{"id": 1}, {"name": "x"}, {"id": 3}]))
