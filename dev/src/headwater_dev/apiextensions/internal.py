"""A v1 CustomResourceDefinition as apiextensions-apiserver validates it: its internal form.

The API server never validates the ``apiextensions.k8s.io/v1`` object it received. It
decodes it into Go structs and converts it to the internal ``apiextensions`` type first,
and every field path and every bad value in its errors comes from that internal form
(apiextensions-apiserver v0.32.9 pkg/apis/apiextensions/v1/conversion.go
``Convert_v1_CustomResourceDefinitionSpec_To_apiextensions_CustomResourceDefinitionSpec``):

* ``spec.version`` is the first version's name;
* when every version carries the same schema (resp. subresources, printer columns,
  selectable fields) — which a single-version CRD always does — it moves to the top-level
  ``spec.validation`` (``spec.subresources``, ``spec.additionalPrinterColumns``,
  ``spec.selectableFields``) and leaves the versions; so a single-version CRD's schema
  errors read ``spec.validation.openAPIV3Schema…``, not ``spec.versions[0].schema…``;
* ``spec.conversion.webhook.{clientConfig,conversionReviewVersions}`` become
  ``spec.conversion.{webhookClientConfig,conversionReviewVersions}``;
* ``spec.preserveUnknownFields`` (a plain bool in v1) becomes a set ``*bool``;
* a printer column's ``jsonPath`` is the internal field ``JSONPath``.

Schemas keep their JSON keys, in :func:`go_schema` form: what decoding into Go's
``JSONSchemaProps`` keeps (a ``null`` and a non-pointer field's zero value vanish, an
empty list or map stays, because Go tells a nil slice from an empty one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

Schema = dict[str, Any]

# JSONSchemaProps fields that are plain Go strings or bools: their zero value is "unset".
_ZERO_IS_UNSET: Final = frozenset({
    "id", "$schema", "description", "type", "format", "title", "pattern",
    "exclusiveMaximum", "exclusiveMinimum", "uniqueItems", "nullable",
    "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string",
})
_SCHEMA_LISTS: Final = ("allOf", "oneOf", "anyOf")
_SCHEMA_MAPS: Final = ("properties", "patternProperties", "definitions")
_SCHEMA_OR_BOOL: Final = ("additionalProperties", "additionalItems")
_RULE_ZERO_IS_UNSET: Final = frozenset({"message", "messageExpression", "fieldPath"})


def go_schema(raw: Any) -> Schema:
    """``raw`` as decoding into ``JSONSchemaProps`` leaves it (see the module docstring)."""
    if not isinstance(raw, Mapping):
        return {}
    out: Schema = {}
    for name, value in raw.items():
        if value is None or (name in _ZERO_IS_UNSET and value in ("", False)):
            continue
        out[name] = _go_member(name, value)
    return out


def _go_member(name: str, value: Any) -> Any:
    if name in _SCHEMA_LISTS and isinstance(value, list):
        return [go_schema(item) for item in value]
    if name in _SCHEMA_MAPS and isinstance(value, Mapping):
        return {key: go_schema(item) for key, item in value.items()}
    if name in (*_SCHEMA_OR_BOOL, "not") and isinstance(value, Mapping):
        return go_schema(value)
    if name == "items":
        return [go_schema(i) for i in value] if isinstance(value, list) else go_schema(value)
    if name == "dependencies" and isinstance(value, Mapping):
        return {key: go_schema(item) if isinstance(item, Mapping) else item
                for key, item in value.items()}
    if name == "x-kubernetes-validations" and isinstance(value, list):
        return [_go_rule(rule) for rule in value]
    return value


def _go_rule(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        return {}
    return {key: value for key, value in raw.items()
            if value is not None and not (key in _RULE_ZERO_IS_UNSET and value == "")}


# --- the CRD ----------------------------------------------------------------------------
@dataclass
class Names:
    """``CustomResourceDefinitionNames``."""

    plural: str = ""
    singular: str = ""
    short_names: list[str] = field(default_factory=list)
    kind: str = ""
    list_kind: str = ""
    categories: list[str] = field(default_factory=list)


@dataclass
class Version:
    """``CustomResourceDefinitionVersion``, per-version fields left only where they differ."""

    name: str
    served: bool
    storage: bool
    deprecated: bool
    deprecation_warning: str | None
    schema: Schema | None  # the CustomResourceValidation: {"openAPIV3Schema": …}
    subresources: dict[str, Any] | None
    columns: list[dict[str, Any]] | None
    selectable_fields: list[dict[str, Any]] | None


@dataclass
class Conversion:
    """``CustomResourceConversion`` (internal: the webhook's fields flattened)."""

    strategy: str
    webhook_client_config: dict[str, Any] | None
    review_versions: list[str] | None


@dataclass
class Spec:
    """``CustomResourceDefinitionSpec``."""

    group: str
    version: str
    names: Names
    scope: str
    validation: Schema | None
    subresources: dict[str, Any] | None
    versions: list[Version]
    columns: list[dict[str, Any]] | None
    selectable_fields: list[dict[str, Any]] | None
    conversion: Conversion | None
    preserve_unknown_fields: bool


@dataclass
class Status:
    """``CustomResourceDefinitionStatus``."""

    conditions: list[dict[str, Any]]
    accepted_names: Names
    stored_versions: list[str] | None


@dataclass
class CRD:
    """``apiextensions.CustomResourceDefinition``."""

    metadata: dict[str, Any]
    spec: Spec
    status: Status


def to_internal(crd: Mapping[str, Any]) -> CRD:
    """The internal form of a (defaulted) v1 CRD."""
    spec = _mapping(crd.get("spec"))
    status = _mapping(crd.get("status"))
    return CRD(
        metadata=dict(_mapping(crd.get("metadata"))),
        spec=_spec(spec),
        status=Status(
            conditions=[dict(c) for c in _list(status.get("conditions"))
                        if isinstance(c, Mapping)],
            accepted_names=_names(_mapping(status.get("acceptedNames"))),
            stored_versions=_strings_or_none(status.get("storedVersions"))),
    )


def _spec(spec: Mapping[str, Any]) -> Spec:
    versions = [_version(_mapping(v)) for v in _list(spec.get("versions"))]
    out = Spec(
        group=_str(spec.get("group")), version="", names=_names(_mapping(spec.get("names"))),
        scope=_str(spec.get("scope")), validation=None, subresources=None, versions=versions,
        columns=None, selectable_fields=None, conversion=_conversion(spec.get("conversion")),
        preserve_unknown_fields=spec.get("preserveUnknownFields") is True)
    if versions:
        out.version = versions[0].name
        _hoist_identical(out)
    return out


def _hoist_identical(spec: Spec) -> None:
    """Move per-version fields every version shares to the top level, as conversion does."""
    first = spec.versions[0]
    if all(v.subresources == first.subresources for v in spec.versions):
        spec.subresources = first.subresources
        for v in spec.versions:
            v.subresources = None
    if all(v.schema == first.schema for v in spec.versions):
        spec.validation = first.schema
        for v in spec.versions:
            v.schema = None
    if all(v.columns == first.columns for v in spec.versions):
        spec.columns = first.columns
        for v in spec.versions:
            v.columns = None
    if all(v.selectable_fields == first.selectable_fields for v in spec.versions):
        spec.selectable_fields = first.selectable_fields
        for v in spec.versions:
            v.selectable_fields = None


def _version(raw: Mapping[str, Any]) -> Version:
    schema = raw.get("schema")
    warning = raw.get("deprecationWarning")
    return Version(
        name=_str(raw.get("name")), served=raw.get("served") is True,
        storage=raw.get("storage") is True, deprecated=raw.get("deprecated") is True,
        deprecation_warning=warning if isinstance(warning, str) else None,
        schema=_validation(schema) if isinstance(schema, Mapping) else None,
        subresources=_subresources(raw.get("subresources")),
        columns=_columns(raw.get("additionalPrinterColumns")),
        selectable_fields=_dict_list(raw.get("selectableFields")))


def _validation(raw: Mapping[str, Any]) -> Schema:
    schema = raw.get("openAPIV3Schema")
    return {"openAPIV3Schema": go_schema(schema)} if isinstance(schema, Mapping) else {}


def _subresources(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        return None
    out: dict[str, Any] = {}
    if isinstance(raw.get("status"), Mapping):
        out["status"] = {}
    scale = raw.get("scale")
    if isinstance(scale, Mapping):
        out["scale"] = {key: value for key, value in scale.items() if value is not None}
    return out


def _columns(raw: Any) -> list[dict[str, Any]] | None:
    """Printer columns with the internal field names (``JSONPath``) and zero values."""
    if not isinstance(raw, list):
        return None
    return [{"name": _str(c.get("name")), "type": _str(c.get("type")),
             "format": _str(c.get("format")), "description": _str(c.get("description")),
             "priority": c.get("priority") or 0, "JSONPath": _str(c.get("jsonPath"))}
            for c in map(_mapping, raw)]


def _conversion(raw: Any) -> Conversion | None:
    if not isinstance(raw, Mapping):
        return None
    webhook = _mapping(raw.get("webhook"))
    config = webhook.get("clientConfig")
    return Conversion(
        strategy=_str(raw.get("strategy")),
        webhook_client_config=dict(config) if isinstance(config, Mapping) else None,
        review_versions=_strings_or_none(webhook.get("conversionReviewVersions")))


def _names(raw: Mapping[str, Any]) -> Names:
    return Names(
        plural=_str(raw.get("plural")), singular=_str(raw.get("singular")),
        short_names=_strings_or_none(raw.get("shortNames")) or [],
        kind=_str(raw.get("kind")), list_kind=_str(raw.get("listKind")),
        categories=_strings_or_none(raw.get("categories")) or [])


# --- decoding helpers (the request layer refuses wrong JSON types before validation) ----
def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict_list(value: Any) -> list[dict[str, Any]] | None:
    if not isinstance(value, list):
        return None
    return [dict(_mapping(item)) for item in value]


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _strings_or_none(value: Any) -> list[str] | None:
    if not isinstance(value, list):
        return None
    return [item if isinstance(item, str) else "" for item in value]


__all__ = ["CRD", "Conversion", "Names", "Schema", "Spec", "Status", "Version", "go_schema",
           "to_internal"]
