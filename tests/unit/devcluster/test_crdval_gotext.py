"""A typed Go value's ``%#v``, rendered by its validator, is shown verbatim in the body."""

from __future__ import annotations

from headwater_dev import fielderrors as fe


def test_go_text_is_shown_as_is() -> None:
    error = fe.invalid("status.storedVersions", fe.GoText('[]string{"v1"}'),
                       "must have the storage version v2")
    assert error.message() == (
        'status.storedVersions: Invalid value: []string{"v1"}: must have the storage version v2')
