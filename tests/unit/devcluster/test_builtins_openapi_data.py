"""The checked-in k8s-1.32-openapi.json is what scripts/generate_k8s_openapi.py makes from
the kubernetes-validate package (a test dependency), and says what the emulator needs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from headwater_operator import k8sopenapi

ROOT = Path(__file__).resolve().parents[3]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_k8s_openapi", ROOT / "scripts" / "generate_k8s_openapi.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_data_file_is_what_the_script_produces() -> None:
    script = generator()
    with script.source_path().open(encoding="utf-8") as stream:
        expected = script.render(script.build(json.load(stream)))
    assert script.OUTPUT.read_text(encoding="utf-8") == expected


def test_definitions_are_v2_with_patch_metadata() -> None:
    defs = k8sopenapi.definitions()
    container = defs["io.k8s.api.core.v1.Container"]["properties"]
    assert container["volumeMounts"]["x-kubernetes-patch-merge-key"] == "mountPath"
    assert container["ports"]["x-kubernetes-patch-merge-key"] == "containerPort"
    assert container["env"]["items"] == {"$ref": "#/definitions/io.k8s.api.core.v1.EnvVar"}
    assert container["image"]["type"] == "string"
    assert defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "type": "string", "format": "int-or-string"}
    assert k8sopenapi.definition_name(("coordination.k8s.io", "v1", "leases")) == \
        "io.k8s.api.coordination.v1.Lease"
    assert k8sopenapi.definition_name(("headwater.dev", "v1", "flows")) is None
