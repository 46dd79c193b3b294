"""The generated CRDs: no drift, structural, documented, and accepted by Kubernetes' schema."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from headwater_operator import crdgen
from headwater_operator.api import RESOURCE_TYPES, Resource

REPO = Path(__file__).resolve().parents[3]

# Keys a structural schema node may carry (OpenAPI v3.0 subset Kubernetes accepts).
ALLOWED_KEYS = frozenset(
    {
        "type", "description", "properties", "required", "items", "additionalProperties",
        "enum", "format", "pattern", "minimum", "maximum", "minLength", "maxLength",
        "minItems", "maxItems", "minProperties", "maxProperties", "multipleOf", "anyOf",
        "nullable", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string",
        "x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type", "x-kubernetes-embedded-resource",
    }
)
INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]
JSON_TYPES = {"object", "array", "string", "integer", "number", "boolean"}


def schema_of(cls: type[Resource]) -> dict[str, Any]:
    schema: dict[str, Any] = crdgen.build_crd(cls)["spec"]["versions"][0]["schema"][
        "openAPIV3Schema"
    ]
    return schema


def walk(
    node: Mapping[str, Any], path: str, is_property: bool = True
) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    """Yield (path, node, is_property) for every schema node below ``node``, inclusive.

    List items and map values are schema nodes but not properties: ``kubectl explain``
    shows their parent's description, so they need a type but not a description.
    """
    yield path, node, is_property
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        child = node.get(key)
        if isinstance(child, Mapping):
            yield from walk(child, f"{path}[{key}]", is_property=False)


def structural_violations(schema: Mapping[str, Any]) -> list[str]:
    """Kubernetes' structural-schema rules, as far as our generator can break them."""
    problems = []
    for path, node, _ in walk(schema, "<root>"):
        unknown = set(node) - ALLOWED_KEYS
        if unknown:
            problems.append(f"{path}: keys not allowed in a CRD schema: {sorted(unknown)}")
        int_or_string = node.get("x-kubernetes-int-or-string") is True
        if "type" not in node and not int_or_string and not node.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            problems.append(f"{path}: no type")
        if "type" in node and node["type"] not in JSON_TYPES:
            problems.append(f"{path}: unknown type {node['type']!r}")
        if "anyOf" in node and not (int_or_string and node["anyOf"] == INT_OR_STRING_ANY_OF):
            problems.append(f"{path}: anyOf is only allowed in the int-or-string form")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{path}: properties and additionalProperties together")
        if isinstance(node.get("additionalProperties"), bool):
            problems.append(f"{path}: additionalProperties must be a schema")
        if node.get("x-kubernetes-preserve-unknown-fields") not in (None, True):
            problems.append(f"{path}: x-kubernetes-preserve-unknown-fields must be true")
        if node.get("type") == "array" and "items" not in node:
            problems.append(f"{path}: array without items")
        for value in node.get("enum", ()):
            if not isinstance(value, str):
                problems.append(f"{path}: non-string enum value {value!r}")
        if set(node.get("required", ())) - set(node.get("properties", {})):
            problems.append(f"{path}: required names an undeclared property")
    problems.extend(root_metadata_violations(schema))
    return problems


def root_metadata_violations(schema: Mapping[str, Any]) -> list[str]:
    """The API server's rule for the root ``metadata`` schema.

    apiextensions-apiserver ``pkg/apiserver/schema/validation.go``
    (``validateStructuralMetadataInvariants``): at the root, ``metadata`` may carry ``type:
    object`` and restrictions of ``name``/``generateName`` only; anything else (a
    description too) is refused with "must not specify anything other than name and
    generateName, but metadata is implicitly specified".
    """
    metadata = schema["properties"]["metadata"]
    extra = set(metadata) - {"type", "properties"}
    extra |= {f"properties.{name}" for name in metadata.get("properties", {})
              if name not in ("name", "generateName")}
    if metadata.get("type") != "object":
        extra.add("type")
    return [f"<root>.metadata: {key} is not allowed at the root metadata"
            for key in sorted(extra)]


CLASSES = list(RESOURCE_TYPES)
IDS = [cls.KIND for cls in CLASSES]


def test_checked_in_crds_match_the_generator_in_both_locations() -> None:
    assert crdgen.find_drift(REPO) == []
    for directory in crdgen.CRD_DIRS:
        for name, text in crdgen.rendered_files().items():
            assert (REPO / directory / name).read_text(encoding="utf-8") == text


def test_generation_is_deterministic() -> None:
    first = crdgen.rendered_files()
    crdgen.build_crd.cache_clear()
    assert crdgen.rendered_files() == first


def test_files_carry_the_do_not_edit_header() -> None:
    for text in crdgen.rendered_files().values():
        assert text.startswith("# Code generated by `python -m headwater_operator.crdgen`")
        assert "DO NOT EDIT" in text.splitlines()[1]


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_every_property_has_a_description_and_a_type(cls: type[Resource]) -> None:
    missing = [
        path
        for path, node, is_property in walk(schema_of(cls), "<root>")
        # The root metadata may carry no description (see root_metadata_violations);
        # `kubectl explain` shows ObjectMeta's own there.
        if is_property and path != "<root>.metadata"
        and (
            not str(node.get("description", "")).strip()
            # A node without a type is structural only as int-or-string, or as "any JSON"
            # (preserve-unknown-fields: a Variable's value); apiextensions-apiserver
            # pkg/apiserver/schema/validation.go validateStructuralInvariants.
            or not ("type" in node or node.get("x-kubernetes-int-or-string")
                    or node.get("x-kubernetes-preserve-unknown-fields"))
        )
    ]
    assert missing == []


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_schema_is_structural(cls: type[Resource]) -> None:
    assert structural_violations(schema_of(cls)) == []


def test_structural_checker_catches_what_pydantic_would_emit() -> None:
    bad = {
        "type": "object",
        "description": "x",
        "properties": {
            "metadata": {"type": "object"},
            "a": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "a"},
            "b": {"$ref": "#/$defs/B"},
            "c": {"type": "object", "properties": {}, "additionalProperties": True},
            "d": {"description": "no type"},
        },
    }
    problems = "\n".join(structural_violations(bad))
    assert root_metadata_violations(
        {"properties": {"metadata": {"type": "object", "description": "metadata"}}}) == [
        "<root>.metadata: description is not allowed at the root metadata"]
    for expected in ("<root>.a: anyOf", "<root>.b: keys not allowed", "<root>.c: properties",
                     "<root>.d: no type"):
        assert expected in problems


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_crd_passes_kubernetes_validate_strict(cls: type[Resource]) -> None:
    crd = yaml.safe_load(crdgen.render_crd(cls))
    kubernetes_validate.validate(crd, kubernetes_validate.latest_version(), strict=True)


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_crd_shape_kubectl_users_rely_on(cls: type[Resource]) -> None:
    crd = crdgen.build_crd(cls)
    names = crd["spec"]["names"]
    version = crd["spec"]["versions"][0]
    assert crd["metadata"]["name"] == f"{cls.PLURAL}.headwater.dev"
    assert crd["spec"]["scope"] == "Namespaced"
    assert names["categories"] == ["headwater"]
    assert len(names["shortNames"]) >= 2
    assert version["subresources"] == {"status": {}}
    assert version["served"]
    assert version["storage"]
    assert version["additionalPrinterColumns"][-1]["jsonPath"] == ".metadata.creationTimestamp"


@pytest.mark.parametrize(
    ("cls", "columns"),
    [
        ("FlowRun", ["Phase", "Deployment", "Scheduled", "Started", "Duration", "Age"]),
        ("Schedule", ["Expression", "Timezone", "Suspended", "Last", "Next", "Age"]),
        ("Deployment", ["Flow", "Paused", "Active", "Age"]),
        ("Flow", ["Image", "Entrypoint", "Age"]),
    ],
)
def test_default_printer_columns(cls: str, columns: list[str]) -> None:
    crd = crdgen.build_crd(next(c for c in CLASSES if cls == c.KIND))
    shown = [
        c["name"]
        for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]
        if not c.get("priority")
    ]
    assert shown == columns


def test_short_names_do_not_collide() -> None:
    names = [n for cls in CLASSES for n in crdgen.build_crd(cls)["spec"]["names"]["shortNames"]]
    assert len(names) == len(set(names))


def test_cross_field_rules_are_in_the_crds() -> None:
    schedule = schema_of(next(c for c in CLASSES if c.KIND == "Schedule"))
    flowrun = schema_of(next(c for c in CLASSES if c.KIND == "FlowRun"))
    deployment = schema_of(next(c for c in CLASSES if c.KIND == "Deployment"))
    spec_rules = [r["rule"] for r in schedule["properties"]["spec"]["x-kubernetes-validations"]]
    assert any("has(self.cron)" in r and "has(self.rrule)" in r for r in spec_rules)
    assert any("anchorTime" in r for r in spec_rules)
    assert "self.metadata.name.size() <= 52" in schedule["x-kubernetes-validations"][0]["rule"]
    assert flowrun["properties"]["spec"]["x-kubernetes-validations"][0]["rule"] == (
        "has(self.deploymentRef) != has(self.flowRef)"
    )
    concurrency = deployment["properties"]["spec"]["properties"]["concurrency"]
    assert concurrency["properties"]["limit"]["minimum"] == 1
    assert concurrency["required"] == ["limit"]


def test_free_form_objects_preserve_unknown_fields() -> None:
    flow = schema_of(next(c for c in CLASSES if c.KIND == "Flow"))["properties"]["spec"]
    for name in ("parameters", "parametersSchema"):
        assert flow["properties"][name]["x-kubernetes-preserve-unknown-fields"] is True
    deployment = schema_of(next(c for c in CLASSES if c.KIND == "Deployment"))
    template = deployment["properties"]["spec"]["properties"]["runTemplate"]["properties"]
    assert template["podOverrides"]["x-kubernetes-preserve-unknown-fields"] is True
