"""status.conditions helpers: transition times move only when a status changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from headwater_operator.conditions import (
    get_condition,
    is_condition_true,
    make_condition,
    remove_condition,
    set_condition,
    set_conditions,
)
from headwater_operator.kubetime import format_time

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_new_condition_gets_the_current_time() -> None:
    ready = make_condition("Ready", True, "Valid", "ok", observed_generation=3)

    result = set_condition([], ready, T0)

    assert result == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Valid",
            "message": "ok",
            "observedGeneration": 3,
            "lastTransitionTime": "2024-05-01T12:00:00Z",
        }
    ]


def test_same_status_keeps_the_transition_time_but_takes_new_reason_and_message() -> None:
    first = set_condition(None, make_condition("Ready", False, "FlowNotFound", "a"), T0)

    second = set_condition(first, make_condition("Ready", False, "FlowNotReady", "b"), T1)

    assert second[0]["lastTransitionTime"] == "2024-05-01T12:00:00Z"
    assert second[0]["reason"] == "FlowNotReady"
    assert second[0]["message"] == "b"


def test_status_change_moves_the_transition_time() -> None:
    first = set_condition(None, make_condition("Ready", False, "FlowNotFound", "a"), T0)

    second = set_condition(first, make_condition("Ready", True, "Valid", "ok"), T1)

    assert second[0]["lastTransitionTime"] == "2024-05-01T12:05:00Z"
    assert second[0]["status"] == "True"


def test_reasserting_an_unchanged_condition_yields_an_equal_list() -> None:
    # Handlers rely on this to skip writes when nothing changed.
    current = set_condition(None, make_condition("Ready", True, "Valid", "ok"), T0)

    again = set_condition(current, make_condition("Ready", True, "Valid", "ok"), T1)

    assert again == current


def test_other_conditions_keep_their_order_and_the_input_is_not_modified() -> None:
    current = set_conditions(
        None,
        [make_condition("Ready", True, "Valid", "ok"), make_condition("Paused", False, "A", "")],
        T0,
    )
    snapshot = [dict(c) for c in current]

    updated = set_condition(current, make_condition("Ready", False, "FlowNotFound", "x"), T1)

    assert [c["type"] for c in updated] == ["Ready", "Paused"]
    assert updated[1] == snapshot[1]
    assert current == snapshot


def test_missing_old_transition_time_is_filled_in() -> None:
    current = [{"type": "Ready", "status": "True", "reason": "Valid", "message": "ok"}]

    updated = set_condition(current, make_condition("Ready", True, "Valid", "ok"), T1)

    assert updated[0]["lastTransitionTime"] == "2024-05-01T12:05:00Z"


def test_get_remove_and_is_true() -> None:
    current = set_conditions(
        None,
        [make_condition("Ready", True, "Valid", "ok"), make_condition("Paused", "False", "A", "")],
        T0,
    )

    assert is_condition_true(current, "Ready")
    assert not is_condition_true(current, "Paused")
    assert not is_condition_true(current, "Missing")
    assert get_condition(current, "Missing") is None
    assert [c["type"] for c in remove_condition(current, "Ready")] == ["Paused"]


def test_format_time_converts_to_utc_and_drops_fractions() -> None:
    plus_two = timezone(timedelta(hours=2))
    moment = datetime(2024, 5, 1, 14, 0, 0, 987654, tzinfo=plus_two)

    assert format_time(moment) == "2024-05-01T12:00:00Z"
    assert format_time(datetime(2024, 5, 1, 12, 0, 0)) == "2024-05-01T12:00:00Z"
