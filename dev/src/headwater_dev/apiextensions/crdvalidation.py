"""CustomResourceDefinition validation on create and update, as Kubernetes 1.32 does it.

The rules and messages of apiextensions-apiserver v0.32.9
pkg/apis/apiextensions/validation/validation.go (``ValidateCustomResourceDefinition``,
``ValidateCustomResourceDefinitionUpdate``), applied to the internal form of the v1
object (see :mod:`.internal`: a single-version CRD's schema errors read
``spec.validation.openAPIV3Schema…``). Run :func:`~.crddefaults.default_crd` (and, for
the status, :func:`~.crddefaults.prepare_for_create`/``prepare_for_update``) first, as
the API server decodes with defaulting and runs the strategy before validating.

Implemented, in the order errors appear:

1. ``metadata`` — name or generateName required; each a DNS subdomain equal to
   ``<spec.names.plural>.<spec.group>``; no namespace. (The generic ObjectMeta checks —
   labels, annotations, owner references, finalizers, managed fields; on update
   resourceVersion and the immutable fields — are the shared object-metadata
   validation's, and belong between these and ``spec``.)
2. ``spec`` — group (required, DNS subdomain, at least one dot); scope (Cluster or
   Namespaced); schemas required for every version; ``preserveUnknownFields`` false to
   use defaults; per version: name (DNS-1035 label), deprecationWarning, schema,
   subresources, printer columns, selectableFields; versions unique with exactly one
   storage version; ``spec.version`` (the first version's name); names (plural, singular,
   kind, listKind required; DNS-1035 labels; shortNames, categories; kind ≠ listKind);
   the top-level (shared) schema, subresources (status; scale paths under .spec/.status),
   printer columns (type, format, JSONPath), selectableFields; conversion (strategy
   None or Webhook; webhook fields only with Webhook; conversionReviewVersions). On
   update: group and names.plural immutable; scope and names.kind too once Established.
3. ``status`` — acceptedNames; storedVersions (at least one, holding the storage
   version, all in spec.versions).
4. ``metadata.annotations[api-approved.kubernetes.io]`` for ``*.k8s.io`` and
   ``*.kubernetes.io`` groups.
5. ``spec.preserveUnknownFields`` may not be true.

A schema (per version, or the shared one) is checked by :func:`validate_schema`:
status-subresource root restrictions, ``nullable`` at the root, then the structural
invariants (:mod:`.structural`, sorted) — only when those pass, the defaults
(:mod:`.schemadefaults`) — then the OpenAPI rules (:mod:`.openapischema`: schema errors,
then CEL errors), and the ``NewStructural`` error only when nothing else was found.

Not implemented, on purpose: the webhook's URL, service and caBundle checks
(``webhook.ValidateWebhookURL``/``ValidateWebhookService``/``ValidateCABundle``: the
emulator serves no conversion webhooks); CEL compilation and cost (the ``cel`` helper's,
through ``compile_rules``; the per-CRD total cost limit with it); validating defaults
against their schema (custom-resource validation, the ``crval`` helper's, through
``validate_value``); the final ``NewSchemaValidator`` build check (it fails only for
schemas the rules above already refuse); the update-time ratcheting of CEL cost for
unchanged schemas.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Protocol
from urllib.parse import urlparse

from headwater_dev.builtins.names import (
    is_dns1035_label,
    is_dns1123_subdomain,
    name_is_dns_subdomain,
)
from headwater_dev.builtins.objectmeta import (
    validate_object_meta,
    validate_object_meta_update,
)
from headwater_dev.fielderrors import (
    FieldError,
    GoText,
    duplicate,
    forbidden,
    invalid,
    key,
    not_supported,
    required,
    too_many,
)

from . import fieldpath, gosyntax
from .internal import CRD, Conversion, Names, Schema, Spec, Version, to_internal
from .openapischema import Options as SchemaOptions
from .openapischema import (
    Standard,
    map_list_keys_map_set_errors,
    validate_openapi_schema,
)
from .schemadefaults import ValueValidator, validate_defaults
from .structural import is_structural, new_structural_error, validate_structural

PRINTER_COLUMN_TYPES: Final = ("boolean", "date", "integer", "number", "string")
PRINTER_COLUMN_FORMATS: Final = ("byte", "date", "date-time", "double", "float", "int32",
                                 "int64", "password")
ACCEPTED_CONVERSION_REVIEW_VERSIONS: Final = ("v1", "v1beta1")
MAX_SELECTABLE_FIELDS: Final = 8
APPROVAL_ANNOTATION: Final = "api-approved.kubernetes.io"
# JSONSchemaProps fields allowed at the root when the status subresource is enabled.
_ALLOWED_AT_ROOT_WITH_STATUS: Final = (
    "Description", "Type", "Format", "Title", "Maximum", "ExclusiveMaximum", "Minimum",
    "ExclusiveMinimum", "MaxLength", "MinLength", "Pattern", "MaxItems", "MinItems",
    "UniqueItems", "MultipleOf", "Required", "Items", "Properties", "ExternalDocs", "Example",
    "XPreserveUnknownFields", "XValidations")


@dataclass(frozen=True)
class Options:
    """``validationOptions``: what create requires, and what update relaxes for old data."""

    allow_defaults: bool = True
    require_recognized_conversion_review_version: bool = True
    require_immutable_names: bool = False
    require_openapi_schema: bool = True
    require_valid_property_type: bool = True
    require_structural_schema: bool = True
    require_pruned_defaults: bool = True
    require_atomic_set_type: bool = True
    require_map_list_keys_map_set_validation: bool = True
    validate_value: ValueValidator | None = None
    schema_rules: SchemaRulesFactory | None = None


class SchemaRulesCompiler(Protocol):
    """The CEL rules of one schema: compiled node by node, and their total cost."""

    def compile(self, node: Schema, path: str, uncorrelatable: str | None
                ) -> list[FieldError]:
        """The CEL errors of the rules at ``node`` (see :data:`.openapischema.RuleCompiler`)."""

    def total_cost_errors(self) -> list[FieldError]:
        """The whole schema over the per-CRD cost limit, once every node compiled."""


SchemaRulesFactory = Callable[[Schema, str], SchemaRulesCompiler]
"""``(openAPIV3Schema, its field path)`` → that schema's rule compiler."""


def validate_crd(crd: Mapping[str, Any], old: Mapping[str, Any] | None = None, *,
                 validate_value: ValueValidator | None = None,
                 schema_rules: SchemaRulesFactory | None = None) -> list[FieldError]:
    """What apiextensions-apiserver's ValidateCustomResourceDefinition (create) or
    ValidateCustomResourceDefinitionUpdate (update, `old` given) reports, for
    apiextensions.k8s.io/v1 objects, as Kubernetes 1.32: field paths and messages exact.

    ``crd`` (and ``old``) must be defaulted (:func:`~.crddefaults.default_crd`) and carry
    the status the strategy gives them (:func:`~.crddefaults.prepare_for_create`,
    :func:`~.crddefaults.prepare_for_update`). ``validate_value`` validates a default
    against its schema (custom-resource validation); ``schema_rules`` compiles a schema's
    ``x-kubernetes-validations`` (CEL): without them those checks are skipped.
    """
    new = to_internal(crd)
    if old is None:
        opts = Options(validate_value=validate_value, schema_rules=schema_rules)
        errors = metadata_errors(new)
        errors += spec_errors(new.spec, opts)
    else:
        previous = to_internal(old)
        opts = update_options(previous, validate_value, schema_rules)
        errors = validate_object_meta_update(new.metadata, previous.metadata)
        errors += spec_errors(new.spec, opts)
        errors += _immutable_spec_errors(new.spec, previous.spec, opts)
    errors += names_errors(new.status.accepted_names, "status.acceptedNames")
    errors += stored_versions_errors(new.status.stored_versions, new.spec.versions)
    errors += approval_errors(new, None if old is None else to_internal(old))
    if new.spec.preserve_unknown_fields and not (
            old is not None and to_internal(old).spec.preserve_unknown_fields):
        errors.append(invalid("spec.preserveUnknownFields", True, "cannot set to true, set "
                              "x-kubernetes-preserve-unknown-fields to true in "
                              "spec.versions[*].schema instead"))
    return errors


def update_options(old: CRD, validate_value: ValueValidator | None,
                   schema_rules: SchemaRulesFactory | None) -> Options:
    """``ValidateCustomResourceDefinitionUpdate``: never tighten rules on stored data."""
    schemas = _schemas(old.spec)
    conversion = old.spec.conversion
    return Options(
        require_recognized_conversion_review_version=conversion is None or not (
            conversion.review_versions) or any(
            v in ACCEPTED_CONVERSION_REVIEW_VERSIONS for v in conversion.review_versions),
        require_immutable_names=any(c.get("type") == "Established" and c.get("status") == "True"
                                    for c in old.status.conditions),
        require_openapi_schema=_all_versions_have_schema(old.spec),
        require_valid_property_type=not any(_has_invalid_type(s) for s in schemas),
        require_structural_schema=all(is_structural(s) for s in schemas),
        require_pruned_defaults=not any(_has_unpruned_defaults(s) for s in schemas),
        require_atomic_set_type=not any(_has(s, _has_non_atomic_set_items) for s in schemas),
        require_map_list_keys_map_set_validation=not any(
            _has(s, lambda n: bool(map_list_keys_map_set_errors(n, ""))) for s in schemas),
        validate_value=validate_value, schema_rules=schema_rules)


def _has_unpruned_defaults(schema: Schema) -> bool:
    """``schemaHasUnprunedDefaults``, judged by the defaults' own pruning check."""
    if not _has(schema, lambda s: "default" in s) or not is_structural(schema):
        return False
    return any(error.detail == "must not have unknown fields"
               for error in validate_defaults(schema, "", True, None))


def _has_non_atomic_set_items(schema: Schema) -> bool:
    """``hasNonAtomicSetType``: a set whose items are not atomic."""
    items = schema.get("items")
    if schema.get("x-kubernetes-list-type") != "set" or not isinstance(items, dict):
        return False
    if items.get("type") == "array":
        return bool(items.get("x-kubernetes-list-type", "atomic") != "atomic")
    if items.get("type") == "object":
        return bool(items.get("x-kubernetes-map-type") != "atomic")
    return False


# --- metadata ---------------------------------------------------------------------------
def metadata_errors(crd: CRD) -> list[FieldError]:
    """``ValidateObjectMeta`` of a new CRD: the generic rules, with the CRD's name rule
    (``nameValidationFn``) and no namespace (CRDs are cluster-scoped)."""
    return validate_object_meta(crd.metadata, namespaced=False,
                                name_rule=lambda name, prefix: crd_name_errors(name, prefix,
                                                                               crd.spec))


def crd_name_errors(name: str, prefix: bool, spec: Spec) -> list[str]:
    """The name function a CRD's ObjectMeta validation uses (``nameValidationFn``)."""
    problems = name_is_dns_subdomain(name, prefix)
    if name != f"{spec.names.plural}.{spec.group}":
        problems.append('must be spec.names.plural+"."+spec.group')
    return problems


# --- spec -------------------------------------------------------------------------------
def spec_errors(spec: Spec, opts: Options) -> list[FieldError]:
    """``validateCustomResourceDefinitionSpec``."""
    errors = _group_errors(spec.group)
    errors += _enum("spec.scope", spec.scope, ["Cluster", "Namespaced"], True)
    if not spec.preserve_unknown_fields:
        opts = replace(opts, require_structural_schema=True)
    errors += _schema_presence_errors(spec, opts)
    if opts.allow_defaults and any(_has(s, lambda n: "default" in n) for s in _schemas(spec)):
        opts = replace(opts, require_structural_schema=True)
        if spec.preserve_unknown_fields:
            errors.append(invalid("spec.preserveUnknownFields", True,
                                  "must be false in order to use defaults in the schema"))
    if any(_has(s, _uses_kubernetes_extensions) for s in _schemas(spec)):
        opts = replace(opts, require_structural_schema=True)
    errors += _versions_errors(spec, opts)
    errors += _top_level_errors(spec, opts)
    if spec.conversion is not None and spec.conversion.strategy != "None" and \
            spec.preserve_unknown_fields:
        errors.append(invalid("spec.conversion.strategy", spec.conversion.strategy,
                              "must be None if spec.preserveUnknownFields is true"))
    errors += conversion_errors(spec.conversion, opts)
    return errors


def _group_errors(group: str) -> list[FieldError]:
    if not group:
        return [required("spec.group", "")]
    problems = is_dns1123_subdomain(group)
    if problems:
        return [invalid("spec.group", group, ",".join(problems))]
    if "." not in group:
        return [invalid("spec.group", group, "should be a domain with at least one dot")]
    return []


def _enum(path: str, value: str, accepted: list[str], is_required: bool) -> list[FieldError]:
    """``validateEnumStrings``."""
    if not value:
        return [required(path, "")] if is_required else []
    return [] if value in accepted else [not_supported(path, value, accepted)]


def _schema_presence_errors(spec: Spec, opts: Options) -> list[FieldError]:
    if _top_level_schema(spec) is not None:
        return []
    if opts.require_openapi_schema:
        return [required(f"spec.versions[{i}].schema.openAPIV3Schema", "schemas are required")
                for i, v in enumerate(spec.versions) if _version_schema(v) is None]
    if not spec.preserve_unknown_fields:
        return [required(f"spec.versions[{i}].schema.openAPIV3Schema",
                         "because otherwise all fields are pruned")
                for i, v in enumerate(spec.versions)
                if v.served and _version_schema(v) is None]
    return []


def _versions_errors(spec: Spec, opts: Options) -> list[FieldError]:
    errors: list[FieldError] = []
    per_version_subresources = any(v.subresources is not None for v in spec.versions)
    for i, version in enumerate(spec.versions):
        problems = is_dns1035_label(version.name)
        if problems:
            errors.append(invalid(f"spec.versions[{i}].name", version.name, ",".join(problems)))
        subresources = version.subresources if per_version_subresources else spec.subresources
        errors += version_errors(version, f"spec.versions[{i}]",
                                 bool(subresources and "status" in subresources), opts)
    # Conversion to the internal form moves identical per-version schemas, subresources
    # and columns to the top level, so the "mutually exclusive" and "may not all be set
    # to identical values" checks that follow in Go never fire for a v1 object.
    names = [v.name for v in spec.versions]
    if len(set(names)) != len(names):
        errors.append(invalid("spec.versions", GoText(gosyntax.versions(spec.versions)),
                              "must contain unique version names"))
    if sum(v.storage for v in spec.versions) != 1:
        errors.append(invalid("spec.versions", GoText(gosyntax.versions(spec.versions)),
                              "must have exactly one version marked as storage version"))
    if spec.version:
        problems = is_dns1035_label(spec.version)
        if problems:
            errors.append(invalid("spec.version", spec.version, ",".join(problems)))
    return errors


def version_errors(version: Version, path: str, status_enabled: bool,
                   opts: Options) -> list[FieldError]:
    """``validateCustomResourceDefinitionVersion``."""
    errors = [invalid(f"{path}.deprecationWarning", version.deprecation_warning, problem)
              for problem in deprecation_warning_errors(version.deprecated,
                                                        version.deprecation_warning)]
    errors += validate_schema(version.schema, f"{path}.schema", status_enabled, opts)
    errors += subresources_errors(version.subresources, f"{path}.subresources")
    for i, column in enumerate(version.columns or []):
        errors += column_errors(column, f"{path}.additionalPrinterColumns[{i}]")
    if version.selectable_fields:
        schema = _version_schema(version)
        if schema is None:
            errors.append(invalid(f"{path}.selectableFields", "", "selectableFields may only "
                                  "be set when version.schema.openAPIV3Schema is not included"))
        else:
            errors += _selectable_fields_for(version.selectable_fields, schema, path)
    return errors


def deprecation_warning_errors(deprecated: bool, warning: str | None) -> list[str]:
    """``validateDeprecationWarning``."""
    if not deprecated and warning is not None:
        return ["can only be set for deprecated versions"]
    if warning is None:
        return []
    problems = []
    if len(warning.encode()) > 256:
        problems.append("must be <= 256 characters long")
    if not warning:
        problems.append("must not be an empty string")
    offset = 0  # Go ranges over a string by byte offset
    for char in warning:
        if not char.isprintable():
            problems.append("must only contain printable UTF-8 characters; non-printable "
                            f"character found at index {offset}")
            break
        offset += len(char.encode())
    return problems


def _top_level_errors(spec: Spec, opts: Options) -> list[FieldError]:
    errors: list[FieldError] = []
    for field_name in ("plural", "singular", "kind", "listKind"):
        if not getattr(spec.names, _NAME_ATTRS[field_name]):
            errors.append(required(f"spec.names.{field_name}", ""))
    errors += names_errors(spec.names, "spec.names")
    any_status = bool(spec.subresources and "status" in spec.subresources) or any(
        v.subresources and "status" in v.subresources for v in spec.versions)
    errors += validate_schema(spec.validation, "spec.validation", any_status, opts)
    errors += subresources_errors(spec.subresources, "spec.subresources")
    for i, column in enumerate(spec.columns or []):
        errors += column_errors(column, f"spec.additionalPrinterColumns[{i}]")
    if spec.selectable_fields:
        if spec.validation is None:
            errors.append(invalid("spec.selectableFields", "", "selectableFields may only be "
                                  "set when validations.schema is included"))
        else:
            schema = spec.validation.get("openAPIV3Schema")
            errors += _selectable_fields_for(spec.selectable_fields, schema, "spec",
                                             schema_path="spec.schema.openAPIV3Schema")
    return errors


_NAME_ATTRS: Final = {"plural": "plural", "singular": "singular", "kind": "kind",
                      "listKind": "list_kind"}


def names_errors(names: Names, path: str) -> list[FieldError]:
    """``ValidateCustomResourceDefinitionNames``."""
    errors: list[FieldError] = []
    for field_name, value in (("plural", names.plural), ("singular", names.singular)):
        problems = is_dns1035_label(value)
        if value and problems:
            errors.append(invalid(f"{path}.{field_name}", value, ",".join(problems)))
    for field_name, value in (("kind", names.kind), ("listKind", names.list_kind)):
        problems = is_dns1035_label(value.lower())
        if value and problems:
            errors.append(invalid(f"{path}.{field_name}", value,
                                  "may have mixed case, but should otherwise match: "
                                  + ",".join(problems)))
    for i, short_name in enumerate(names.short_names):
        problems = is_dns1035_label(short_name)
        if problems:
            errors.append(invalid(f"{path}.shortNames[{i}]", short_name, ",".join(problems)))
    if names.kind and names.kind == names.list_kind:
        errors.append(invalid(f"{path}.listKind", names.list_kind,
                              "kind and listKind may not be the same"))
    for i, category in enumerate(names.categories):
        problems = is_dns1035_label(category)
        if problems:
            errors.append(invalid(f"{path}.categories[{i}]", category, ",".join(problems)))
    return errors


# --- subresources, printer columns, selectable fields ------------------------------------
def subresources_errors(subresources: Mapping[str, Any] | None,
                        path: str) -> list[FieldError]:
    """``ValidateCustomResourceDefinitionSubresources``: the scale subresource's paths."""
    scale = (subresources or {}).get("scale")
    if not isinstance(scale, dict):
        return []
    errors = _scale_path(scale.get("specReplicasPath") or "", f"{path}.scale.specReplicasPath",
                         (".spec.",), "should be a json path under .spec", True)
    errors += _scale_path(scale.get("statusReplicasPath") or "",
                          f"{path}.scale.statusReplicasPath", (".status.",),
                          "should be a json path under .status", True)
    errors += _scale_path(scale.get("labelSelectorPath") or "",
                          f"{path}.scale.labelSelectorPath", (".spec.", ".status."),
                          "should be a json path under either .spec or .status", False)
    return errors


def _scale_path(value: str, path: str, prefixes: tuple[str, ...], detail: str,
                is_required: bool) -> list[FieldError]:
    if not value:
        return [required(path, "")] if is_required else []
    problems = simple_json_path_errors(value, path)
    if problems:
        return problems
    if not value.startswith(prefixes):
        return [invalid(path, value, detail)]
    return []


def simple_json_path_errors(value: str, path: str) -> list[FieldError]:
    """``validateSimpleJSONPath``: starts with a dot."""
    if not value:
        return [invalid(path, value, "must not be empty")]
    if value[0] != ".":
        return [invalid(path, value, "must be a simple json path starting with .")]
    return []


def column_errors(column: Mapping[str, Any], path: str) -> list[FieldError]:
    """``ValidateCustomResourceColumnDefinition`` (internal field ``JSONPath``)."""
    errors: list[FieldError] = []
    if not column["name"]:
        errors.append(required(f"{path}.name", ""))
    types = f"must be one of {','.join(PRINTER_COLUMN_TYPES)}"
    if not column["type"]:
        errors.append(required(f"{path}.type", types))
    elif column["type"] not in PRINTER_COLUMN_TYPES:
        errors.append(invalid(f"{path}.type", column["type"], types))
    if column["format"] and column["format"] not in PRINTER_COLUMN_FORMATS:
        errors.append(invalid(f"{path}.format", column["format"],
                              f"must be one of {','.join(PRINTER_COLUMN_FORMATS)}"))
    if not column["JSONPath"]:
        errors.append(required(f"{path}.JSONPath", ""))
    else:
        errors += simple_json_path_errors(column["JSONPath"], f"{path}.JSONPath")
    return errors


def _selectable_fields_for(items: list[dict[str, Any]], schema: Schema | None, path: str,
                           schema_path: str | None = None) -> list[FieldError]:
    errors: list[FieldError] = []
    if schema is not None:
        problem = new_structural_error(schema)
        if problem:
            errors.append(invalid(schema_path or f"{path}.schema.openAPIV3Schema", "", problem))
            schema = None
    return errors + selectable_fields_errors(items, schema, f"{path}.selectableFields")


def selectable_fields_errors(items: list[dict[str, Any]], schema: Schema | None,
                             path: str) -> list[FieldError]:
    """``ValidateCustomResourceSelectableFields``."""
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        json_path = item.get("jsonPath") or ""
        item_path = f"{path}[{i}].jsonPath"
        if not json_path:
            errors.append(required(item_path, ""))
            continue
        try:
            found = fieldpath.valid_field_path(json_path, schema, allow_array_notation=False)
        except fieldpath.FieldPathError as error:
            errors.append(invalid(item_path, json_path, f"is an invalid path: {error}"))
            continue
        if found.root == "metadata":
            errors.append(invalid(item_path, json_path, "must not point to fields in metadata"))
        if found.schema is None or found.schema.get("type") not in (
                "string", "boolean", "integer"):
            errors.append(invalid(item_path, json_path, "must point to a field of type string, "
                                  "boolean or integer. Enum string fields and strings with "
                                  "formats are allowed."))
        if found.path in seen:
            errors.append(duplicate(item_path, json_path))
        seen.add(found.path)
    if len(seen) > MAX_SELECTABLE_FIELDS:
        errors.append(too_many(path, len(seen), MAX_SELECTABLE_FIELDS))
    return errors


# --- conversion -------------------------------------------------------------------------
def conversion_errors(conversion: Conversion | None, opts: Options) -> list[FieldError]:
    """``validateCustomResourceConversion`` (the webhook's own checks are not done)."""
    if conversion is None:
        return []
    errors = _enum("spec.conversion.strategy", conversion.strategy, ["None", "Webhook"], True)
    config_path = "spec.conversion.webhookClientConfig"
    versions_path = "spec.conversion.conversionReviewVersions"
    if conversion.strategy != "Webhook":
        if conversion.webhook_client_config is not None:
            errors.append(forbidden(config_path,
                                    "should not be set when strategy is not set to Webhook"))
        if conversion.review_versions:
            errors.append(forbidden(versions_path,
                                    "should not be set when strategy is not set to Webhook"))
        return errors
    config = conversion.webhook_client_config
    if config is None:
        errors.append(required(config_path, "required when strategy is set to Webhook"))
    elif (config.get("url") is None) == (config.get("service") is None):
        errors.append(required(config_path, "exactly one of url or service is required"))
    return errors + _review_versions_errors(
        conversion.review_versions or [], opts.require_recognized_conversion_review_version,
        versions_path)


def _review_versions_errors(versions: list[str], require_recognized: bool,
                            path: str) -> list[FieldError]:
    if not versions:
        return [required(path, "")]
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, version in enumerate(versions):
        if version in seen:
            errors.append(invalid(f"{path}[{i}]", version, "duplicate version"))
            continue
        seen.add(version)
        errors += [invalid(f"{path}[{i}]", version, p) for p in is_dns1035_label(version)]
    if require_recognized and not seen & set(ACCEPTED_CONVERSION_REVIEW_VERSIONS):
        errors.append(invalid(path, GoText(gosyntax.string_slice(versions)),
                              "must include at least one of "
                              + ", ".join(ACCEPTED_CONVERSION_REVIEW_VERSIONS)))
    return errors


# --- status, approval, update -------------------------------------------------------------
def stored_versions_errors(stored: list[str] | None,
                           versions: list[Version]) -> list[FieldError]:
    """``ValidateCustomResourceDefinitionStoredVersions``."""
    path = "status.storedVersions"
    if not stored:
        return [invalid(path, GoText(gosyntax.string_slice(stored)),
                        "must have at least one stored version")]
    errors: list[FieldError] = []
    remaining = {name: i for i, name in enumerate(stored)}
    for version in versions:
        if version.storage and version.name not in remaining:
            errors.append(invalid(path, GoText(gosyntax.string_slice(stored)),
                                  f"must have the storage version {version.name}"))
        remaining.pop(version.name, None)
    # Go walks the leftovers in map order; by index here.
    errors += [invalid(f"{path}[{i}]", name, "must appear in spec.versions")
               for name, i in sorted(remaining.items(), key=lambda item: item[1])]
    return errors


def approval_errors(new: CRD, old: CRD | None) -> list[FieldError]:
    """``validateAPIApproval`` for the protected ``k8s.io`` and ``kubernetes.io`` groups."""
    group = new.spec.group
    if not any(group == g or group.endswith("." + g) for g in ("k8s.io", "kubernetes.io")):
        return []
    state, reason = _approval_state(new.metadata)
    if old is not None and _approval_state(old.metadata)[0] == state:
        return []
    path = f"metadata.annotations{key(APPROVAL_ANNOTATION)}"
    if state == "missing":
        return [required(path, reason)]
    if state == "invalid":
        annotations = new.metadata.get("annotations") or {}
        return [invalid(path, annotations.get(APPROVAL_ANNOTATION, ""), reason)]
    return []


def _approval_state(metadata: Mapping[str, Any]) -> tuple[str, str]:
    value = (metadata.get("annotations") or {}).get(APPROVAL_ANNOTATION) or ""
    quoted = f'"{APPROVAL_ANNOTATION}"'
    if not value:
        return "missing", (f"protected groups must have approval annotation {quoted}, see "
                           "https://github.com/kubernetes/enhancements/pull/1111")
    if value.startswith("unapproved"):
        return "bypassed", ""
    parsed = urlparse(value)
    if parsed.scheme and parsed.netloc:
        return "approved", ""
    return "invalid", (f"protected groups must have approval annotation {quoted} with either "
                       'a URL or a reason starting with "unapproved", see '
                       "https://github.com/kubernetes/enhancements/pull/1111")


def _immutable_spec_errors(spec: Spec, old: Spec, opts: Options) -> list[FieldError]:
    """``validateCustomResourceDefinitionSpecUpdate``'s immutable fields."""
    pairs = []
    if opts.require_immutable_names:
        pairs += [("spec.scope", spec.scope, old.scope),
                  ("spec.names.kind", spec.names.kind, old.names.kind)]
    pairs += [("spec.group", spec.group, old.group),
              ("spec.names.plural", spec.names.plural, old.names.plural)]
    return [invalid(path, new, "field is immutable") for path, new, was in pairs if new != was]


# --- one schema ---------------------------------------------------------------------------
def validate_schema(validation: Schema | None, path: str, status_enabled: bool,
                    opts: Options) -> list[FieldError]:
    """``validateCustomResourceDefinitionValidation`` for ``validation`` at ``path``."""
    if validation is None or not isinstance(validation.get("openAPIV3Schema"), dict):
        return []
    schema: Schema = validation["openAPIV3Schema"]
    root = f"{path}.openAPIV3Schema"
    errors = _root_with_status_errors(schema, root) if status_enabled else []
    if schema.get("nullable"):
        errors.append(forbidden(f"{root}.nullable", "nullable cannot be true at the root"))
    init_error = None
    cel_enabled = False
    if opts.require_structural_schema:
        init_error = new_structural_error(schema)
        if init_error is None:
            found = validate_structural(schema, root) or validate_defaults(
                schema, root, opts.require_pruned_defaults, opts.validate_value)
            errors += found
            # CEL rules compile only against a structural schema with valid defaults.
            cel_enabled = not found
    rules = opts.schema_rules(schema, root) if opts.schema_rules is not None else None
    errors += validate_openapi_schema(
        schema, root, Standard(allow_defaults=opts.allow_defaults,
                               require_valid_property_type=opts.require_valid_property_type),
        True, SchemaOptions(opts.require_atomic_set_type,
                            opts.require_map_list_keys_map_set_validation,
                            rules.compile if rules is not None else None),
        cel_enabled=cel_enabled).all()
    if rules is not None and cel_enabled:
        errors += rules.total_cost_errors()
    if not errors and init_error:
        # NewStructural's errors repeat the OpenAPI rules': shown only when nothing else is.
        errors.append(invalid(root, "", init_error))
    return errors


def _root_with_status_errors(schema: Schema, path: str) -> list[FieldError]:
    """With a status subresource, the root may only say what survives extracting status."""
    for go_name, json_key in gosyntax.SCHEMA_GO_FIELDS:
        if json_key not in schema:
            continue
        if go_name == "Type":
            if schema["type"] != "object":
                return [invalid(f"{path}.type", schema["type"], 'only "object" is allowed as '
                                "the type at the root of the schema if the status subresource "
                                "is enabled")]
            continue
        if go_name not in _ALLOWED_AT_ROOT_WITH_STATUS:
            allowed = "[" + " ".join(_ALLOWED_AT_ROOT_WITH_STATUS) + "]"
            return [invalid(path, GoText(gosyntax.schema_props(schema)),
                            f"only {allowed} fields are allowed at the root of the schema if "
                            "the status subresource is enabled")]
    return []


# --- schema helpers -------------------------------------------------------------------------
def _top_level_schema(spec: Spec) -> Schema | None:
    validation = spec.validation
    schema = validation.get("openAPIV3Schema") if validation else None
    return schema if isinstance(schema, dict) else None


def _version_schema(version: Version) -> Schema | None:
    schema = version.schema.get("openAPIV3Schema") if version.schema else None
    return schema if isinstance(schema, dict) else None


def _schemas(spec: Spec) -> list[Schema]:
    schemas = [_top_level_schema(spec)] + [_version_schema(v) for v in spec.versions]
    return [s for s in schemas if s is not None]


def _all_versions_have_schema(spec: Spec) -> bool:
    return _top_level_schema(spec) is not None or all(
        _version_schema(v) is not None for v in spec.versions)


def _uses_kubernetes_extensions(s: Schema) -> bool:
    return bool(s.get("x-kubernetes-embedded-resource") or "x-kubernetes-preserve-unknown-fields"
                in s or s.get("x-kubernetes-int-or-string") or s.get("x-kubernetes-list-map-keys")
                or "x-kubernetes-list-type" in s or s.get("x-kubernetes-validations"))


def _has_invalid_type(schema: Schema) -> bool:
    return _has(schema, lambda s: bool(s.get("type")) and s.get("type") not in (
        "string", "number", "integer", "boolean", "array", "object"))


def _has(schema: Schema, predicate: Any) -> bool:
    """``SchemaHas``: whether ``predicate`` holds anywhere in ``schema``."""
    if predicate(schema):
        return True
    return any(_has(child, predicate) for child in _subschemas(schema))


def _subschemas(schema: Schema) -> list[Schema]:
    children: list[Any] = []
    items = schema.get("items")
    children += items if isinstance(items, list) else [items]
    for junctor in ("allOf", "anyOf", "oneOf"):
        children += schema.get(junctor) or []
    children.append(schema.get("not"))
    for mapping in ("properties", "patternProperties", "definitions", "dependencies"):
        children += list((schema.get(mapping) or {}).values())
    children += [schema.get("additionalProperties"), schema.get("additionalItems")]
    return [child for child in children if isinstance(child, dict)]


__all__ = ["ACCEPTED_CONVERSION_REVIEW_VERSIONS", "PRINTER_COLUMN_FORMATS",
           "PRINTER_COLUMN_TYPES", "Options", "column_errors", "conversion_errors",
           "crd_name_errors", "deprecation_warning_errors", "metadata_errors", "names_errors",
           "selectable_fields_errors", "spec_errors", "stored_versions_errors",
           "subresources_errors", "update_options", "validate_crd", "validate_schema",
           "version_errors"]
