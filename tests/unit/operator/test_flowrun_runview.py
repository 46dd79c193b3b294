"""Which FlowRun body the FlowRun controller decides from, without reading the API server.

The controller is the only writer of a run's status; users write its spec. These rules
make the controller decide from the newest body it knows, and never from an older one than its
own last write (which would repeat a transition, and count it twice).
"""

from __future__ import annotations

from typing import Any

from headwater_operator.controllers.flowruns import RunView, freshest


def body(rv: int, phase: str | None, *, generation: int = 1, cancel: bool = False
         ) -> dict[str, Any]:
    return {"metadata": {"name": "r", "resourceVersion": str(rv), "generation": generation},
            "spec": {"cancel": cancel}, "status": {"phase": phase} if phase else {}}


def test_without_an_own_write_the_watched_body_is_used() -> None:
    view = RunView()
    view.saw(body(3, "Pending"))
    assert view.current() == body(3, "Pending")


def test_own_write_wins_over_older_watch_events_replayed_after_it() -> None:
    view = RunView()
    view.saw(body(3, "Running"))
    view.wrote(body(5, "Completed"))
    view.saw(body(3, "Running"))  # an old event delivered (or replayed) after our write
    assert view.current() == body(5, "Completed")


def test_the_watch_catching_up_with_our_write_hands_back_to_the_watch() -> None:
    view = RunView()
    view.wrote(body(5, "Running"))
    view.saw(body(5, "Running"))
    view.saw(body(6, "Running", cancel=True))  # a later user edit, same generation here
    current = view.current()
    assert current is not None
    assert current["spec"]["cancel"] is True


def test_a_newer_spec_generation_wins_over_our_write() -> None:
    # The user set spec.cancel after our write (their write bumped the generation).
    view = RunView()
    view.wrote(body(5, "Running"))
    view.saw(body(7, "Running", generation=2, cancel=True))
    current = view.current()
    assert current is not None
    assert current["spec"]["cancel"] is True
    assert current["metadata"]["resourceVersion"] == "7"


def test_freshest_of_nothing_is_nothing() -> None:
    assert freshest(None, None) is None
    assert freshest(None, body(1, None)) == body(1, None)
