"""Templates over a FlowRun: what automations' messages and mapped parameters see."""

from __future__ import annotations

import pytest
from headwater_operator.templating import TemplateError, check, flowrun_context, render

RUN = {
    "metadata": {"name": "ingest-1765000000", "namespace": "data", "uid": "u-1",
                 "labels": {"team": "growth"}},
    "spec": {"deploymentRef": {"name": "ingest"},
             "parameters": {"start_date": "2026-12-06", "limit": 500, "tags": ["a", "b"]}},
    "status": {"phase": "Failed", "reason": "PodFailed", "message": "exit code 1",
               "attempts": 2, "startTime": "2026-12-07T10:00:00Z",
               "endTime": "2026-12-07T10:01:30Z",
               "assets": [{"key": "s3://lake/orders", "upstream": []}]},
}


def test_message_reads_run_fields_and_links_the_ui() -> None:
    context = flowrun_context(RUN, ui_url="https://hw.example.com/", logs="Traceback ...")
    text = render("{{ run.name }} ({{ run.deployment }}) is {{ run.phase }}: {{ run.message }}"
                  " after {{ run.duration_seconds }} s, {{ run.url }}\n{{ run.logs }}",
                  context, field="spec.actions[0].notify.body")
    assert text == ("ingest-1765000000 (ingest) is Failed: exit code 1 after 90.0 s, "
                    "https://hw.example.com/runs/data/ingest-1765000000\nTraceback ...")


def test_a_lone_expression_keeps_its_type() -> None:
    context = flowrun_context(RUN)
    assert render("{{ run.parameters.limit }}", context, field="f") == 500
    assert render(" {{ run.parameters.tags }} ", context, field="f") == ["a", "b"]
    assert render("{{ run.parameters.start_date }}", context, field="f") == "2026-12-06"
    assert render("limit={{ run.parameters.limit }}", context, field="f") == "limit=500"
    assert context["run"]["url"] is None


def test_an_undefined_field_is_an_error_naming_the_field() -> None:
    with pytest.raises(TemplateError, match=r"spec\.actions\[1\]\.message: .*'nope'"):
        render("{{ run.nope }}", flowrun_context(RUN), field="spec.actions[1].message")


def test_templates_cannot_reach_python_internals() -> None:
    with pytest.raises(TemplateError, match="templates may only read run fields"):
        render("{{ run.name.__class__.__mro__ }}", flowrun_context(RUN), field="f")


def test_check_names_a_syntax_error() -> None:
    check("{{ run.name }}", field="spec.message")
    with pytest.raises(TemplateError, match=r"spec\.message: template does not parse"):
        check("{{ run.name ", field="spec.message")
