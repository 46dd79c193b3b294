"""CustomResourceDefinitions over HTTP are decoded as a Kubernetes 1.32 API server decodes
them, and the CRD kind's own schema is published (``kubectl explain crd.spec``).

The messages: k8s.io/apiserver v0.32.9 ``handlers/rest.go`` ``transformDecodeError`` around
sigs.k8s.io/json's ``UnmarshalTypeError`` and strict decoding errors (``kubernetes_patch.go``),
``create.go`` for what Strict and Warn do with the latter.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from headwater_dev.emulator import BackgroundEmulator
from pinned_tools import pinned_tool

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
CANNOT = ('CustomResourceDefinition in version "v1" cannot be handled as a '
          "CustomResourceDefinition: ")
EXAMPLES_PATH = "spec.versions[0].schema.openAPIV3Schema.properties.spec.examples"


def widget_crd(**spec_schema: Any) -> dict[str, Any]:
    spec = {"type": "object", "properties": {"size": {"type": "integer"}}, **spec_schema}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object", "properties": {"spec": spec}}}}]},
    }


def post(api: BackgroundEmulator, body: Any, query: dict[str, str]
         ) -> tuple[int, dict[str, Any], list[str]]:
    """(status code, answer, Warning headers) of a create."""
    request = urllib.request.Request(
        f"{api.url}{CRDS}?{urllib.parse.urlencode(query)}", data=json.dumps(body).encode(),
        method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return (response.status, json.loads(response.read()),
                    response.headers.get_all("Warning") or [])
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers.get_all("Warning") or []


@pytest.fixture
def api() -> Iterator[BackgroundEmulator]:
    with BackgroundEmulator() as emulator:
        yield emulator


def test_examples_in_a_schema_is_refused_by_strict_and_warned_by_warn(
        api: BackgroundEmulator) -> None:
    crd = widget_crd(examples=[{"size": 1}])
    code, status, _ = post(api, crd, {"fieldValidation": "Strict"})
    assert (code, status["reason"]) == (400, "BadRequest")
    assert status["message"] == CANNOT + (
        f'strict decoding error: unknown field "{EXAMPLES_PATH}"')
    code, created, warnings = post(api, crd, {"fieldValidation": "Warn"})
    assert code == 201
    assert warnings == [f'299 - "unknown field \\"{EXAMPLES_PATH}\\""']
    stored = created["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert "examples" not in stored


def test_served_as_a_string_is_a_bad_request(api: BackgroundEmulator) -> None:
    crd = widget_crd()
    crd["spec"]["versions"][0]["served"] = "true"
    code, status, _ = post(api, crd, {"fieldValidation": "Ignore"})
    assert (code, status["reason"], status["message"]) == (400, "BadRequest", CANNOT + (
        "json: cannot unmarshal string into Go struct field "
        "CustomResourceDefinitionVersion.spec.versions.served of type bool"))


def test_free_form_json_and_preserved_fields_are_accepted(api: BackgroundEmulator) -> None:
    crd = widget_crd(default={"size": 2}, example={"size": 2, "labels": {"a": [1, None, True]}})
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"].update({
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "extra": {"type": "object", "additionalProperties": True}})
    code, created, warnings = post(api, crd, {"fieldValidation": "Strict"})
    assert (code, warnings) == (201, []), created
    assert created["spec"]["versions"] == crd["spec"]["versions"]


# --- kubectl -----------------------------------------------------------------------------------
@pytest.fixture
def kubectl(api: BackgroundEmulator, tmp_path: Path) -> Any:
    binary = pinned_tool("kubectl")
    env = {"KUBECONFIG": str(api.kubeconfig_path), "HOME": str(tmp_path),
           "PATH": "/usr/bin:/bin"}

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([binary, *args], env=env, input=stdin, capture_output=True,
                              text=True, timeout=60, check=False)

    return run


def test_kubectl_explains_the_crd_kind(kubectl: Any) -> None:
    proc = kubectl("explain", "customresourcedefinition.spec.versions")
    assert proc.returncode == 0, proc.stderr
    assert "FIELD: versions <[]CustomResourceDefinitionVersion>" in proc.stdout
    assert "served\t<boolean> -required-" in proc.stdout
    proc = kubectl("explain", "crd.spec.versions.schema.openAPIV3Schema.x-kubernetes-validations")
    assert proc.returncode == 0, proc.stderr
    assert "FIELD: x-kubernetes-validations <[]ValidationRule>" in proc.stdout


def test_kubectl_apply_refuses_examples_and_updates_a_crd_by_strategic_merge(
        kubectl: Any) -> None:
    bad = widget_crd(examples=[{"size": 1}])
    proc = kubectl("apply", "-f", "-", stdin=yaml.safe_dump(bad))
    assert proc.returncode != 0
    assert CANNOT + f'strict decoding error: unknown field "{EXAMPLES_PATH}"' in proc.stderr
    proc = kubectl("apply", "-f", "-", stdin=yaml.safe_dump(widget_crd()))
    assert proc.returncode == 0, proc.stderr
    # A changed CRD: kubectl computes a strategic merge patch from the published schema
    # (no "error calculating patch from openapi v3 spec" fallback), which the server takes.
    changed = widget_crd(required=["size"])
    proc = kubectl("apply", "-f", "-", "-v=6", stdin=yaml.safe_dump(changed))
    assert proc.returncode == 0, proc.stderr
    assert "customresourcedefinition.apiextensions.k8s.io/widgets.example.com configured" in \
        proc.stdout
    assert "error calculating patch" not in proc.stderr
    patches = [line for line in proc.stderr.splitlines() if " PATCH " in line]
    assert len(patches) == 1
    assert " 200 OK " in patches[0]
    proc = kubectl("get", "crd", "widgets.example.com", "-o",
                   "jsonpath={.spec.versions[0].schema.openAPIV3Schema.properties.spec.required}")
    assert proc.stdout == '["size"]'
