"""Every manifest the chart renders is valid, in every value combination we support.

Built-in kinds go through kubernetes-validate in strict mode (unknown fields fail) for
the oldest Kubernetes the chart supports and the newest schemas we have. The custom
kinds it does not know are checked against schemas of our own: the Prometheus
Operator's ServiceMonitor/PrometheusRule (the fields we use).
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from chartkit import CHART_DIR, SCENARIOS, Manifest

# Chart.yaml kubeVersion is >=1.28.0-0: the generated CRDs use CEL rules with fieldPath,
# which 1.27's CRD schema does not have.
OLDEST_SUPPORTED = "1.28.0"
# The Kubernetes release the project pins (its emulator and docs follow 1.32).
PINNED = "1.32.0"
NEWEST = kubernetes_validate.latest_version()
# Kinds the chart renders that are younger than OLDEST_SUPPORTED: checked from the release
# that made them GA (the chart refuses to render them for older clusters).
INTRODUCED: dict[tuple[str, str], str] = {
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"): "1.30.0",
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"): "1.30.0",
}


def _versions(manifest: Manifest) -> tuple[str, ...]:
    """The Kubernetes versions whose schemas ``manifest`` must satisfy."""
    oldest = INTRODUCED.get((manifest["apiVersion"], manifest["kind"]), OLDEST_SUPPORTED)
    return (oldest, PINNED, NEWEST)

_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
    "additionalProperties": False,
}
_DURATION = {"type": "string", "pattern": r"^([0-9]+(ms|s|m|h|d|w|y))+$"}

SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "required": ["matchLabels"],
                    "additionalProperties": False,
                    "properties": {"matchLabels": _STRING_MAP},
                },
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchNames": {"type": "array", "items": {"type": "string"}}},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": _DURATION,
                            "scrapeTimeout": _DURATION,
                        },
                    },
                },
            },
        },
    },
}

PROMETHEUS_RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["groups"],
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string"},
                            "rules": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "object",
                                    "required": ["alert", "expr", "labels", "annotations"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "alert": {
                                            "type": "string",
                                            "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                                        },
                                        "expr": {"type": "string", "minLength": 1},
                                        "for": _DURATION,
                                        "labels": _STRING_MAP,
                                        "annotations": {
                                            **_STRING_MAP,
                                            "required": ["summary", "description", "runbook"],
                                        },
                                    },
                                },
                            },
                        },
                    },
                }
            },
        },
    },
}


# Identical manifests (the big CRDs above all) recur in every scenario; validating each
# distinct one once keeps the suite fast without checking less.
_VALID: set[str] = set()


def _validate_custom(manifest: Manifest) -> None:
    kind = manifest["kind"]
    if kind == "ServiceMonitor":
        jsonschema.validate(manifest, SERVICE_MONITOR_SCHEMA)
    elif kind == "PrometheusRule":
        jsonschema.validate(manifest, PROMETHEUS_RULE_SCHEMA)
    else:
        pytest.fail(f"{kind} is neither a built-in kind nor one this test knows how to check")


def test_every_manifest_passes_strict_schema_validation(
    scenario: str, scenario_manifests: list[Manifest]
) -> None:
    assert scenario_manifests, f"scenario {scenario} rendered nothing"
    for manifest in scenario_manifests:
        where = f"{scenario}: {manifest['kind']}/{manifest['metadata']['name']}"
        key = json.dumps(manifest, sort_keys=True)
        if key in _VALID:
            continue
        try:
            for version in _versions(manifest):
                kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            try:
                _validate_custom(manifest)
            except jsonschema.ValidationError as exc:
                pytest.fail(f"{where}: {exc.message} at {list(exc.absolute_path)}")
        except kubernetes_validate.ValidationError as exc:
            # The first lines name the problem; the rest is the (very long) schema.
            pytest.fail(f"{where}: {str(exc).splitlines()[0]}", pytrace=False)
        _VALID.add(key)


def test_every_scenario_lints_strictly(helm: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    workdir = tmp_path_factory.mktemp("lint")
    for name, values in SCENARIOS.items():
        values_file = workdir / f"{name}.json"
        values_file.write_text(json.dumps(values))
        proc = subprocess.run(
            [helm, "lint", "--strict", str(CHART_DIR), "--values", str(values_file)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, f"helm lint --strict ({name}):\n{proc.stdout}{proc.stderr}"
