"""values.schema.json turns a wrong value into an install-time error that names it."""

from __future__ import annotations

from typing import Any

import pytest
from chartkit import Render, RenderError

BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"replicas": "two"}, "replicas"),
    ({"replicas": -1}, "replicas"),
    ({"replica": 2}, "replica"),  # typo of a top-level key
    ({"watchNamespaces": ["Team_A"]}, "watchNamespaces"),
    ({"watchNamespaces": "team-a"}, "watchNamespaces"),
    ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
    ({"image": {"digest": "latest"}}, "digest"),
    ({"operator": {"logFormat": "xml"}}, "logFormat"),
    ({"crds": {"install": "yes"}}, "install"),
    ({"metrics": {"port": 70000}}, "port"),
    ({"metrics": {"serviceMonitor": {"interval": "30 seconds"}}}, "interval"),
    ({"metrics": {"prometheusRule": {"thresholds": {"failedRunRatio": 2}}}}, "failedRunRatio"),
    ({"networkPolicy": {"apiServer": {"cidrs": ["kubernetes.default"]}}}, "cidrs"),
    ({"runStore": {"url": 3}}, "url"),
    ({"runStore": {"uri": "s3://bucket"}}, "uri"),  # typo of runStore.url
]


@pytest.mark.parametrize(("values", "field"), BAD_VALUES, ids=[f for _, f in BAD_VALUES])
def test_schema_rejects_bad_values_naming_the_field(
    values: dict[str, Any], field: str, render_error: RenderError
) -> None:
    error = render_error(values)
    assert "values don't meet the specifications of the schema" in error
    assert field in error


def test_missing_service_account_name_is_an_actionable_error(render_error: RenderError) -> None:
    error = render_error({"serviceAccount": {"create": False}})
    assert "serviceAccount.name is required when serviceAccount.create is false" in error


def test_defaults_and_documented_overrides_are_accepted(render: Render) -> None:
    render(
        {
            "replicas": 2,
            "watchNamespaces": ["team-a"],
            "image": {"digest": "sha256:" + "0" * 64},
            "networkPolicy": {"apiServer": {"cidrs": ["10.0.0.1/32", "fd00::1/128"]}},
            "global": {"imageRegistry": "reg.local"},
        }
    )
