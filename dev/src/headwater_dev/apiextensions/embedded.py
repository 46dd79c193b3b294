"""Checks of ``x-kubernetes-embedded-resource`` objects inside a custom resource.

apiextensions-apiserver v0.32.9 ``pkg/apiserver/schema/objectmeta/validation.go``
(``Validate``, called by the custom resource strategy with ``isResourceRoot=false`` on
create and on update of the main resource, never on status writes). Each object the
schema marks ``x-kubernetes-embedded-resource`` must have:

* ``apiVersion`` and ``kind`` (``Required value: must not be empty``), strings, not
  empty; ``apiVersion`` a valid group/version (at most one ``/``); ``kind`` a DNS-1035
  label once lower-cased (``may have mixed case, but should otherwise match: …``);
* ``metadata`` that decodes into ``ObjectMeta`` and passes the ObjectMeta rules
  (``ValidateObjectMeta`` with ``path.ValidatePathSegmentName`` as the name rule, a
  missing name counting as ``fakename``, namespaced when it names a namespace).

The ObjectMeta rules are shared with the built-in kinds and are not written here: the
caller passes them in (:data:`ObjectMetaRules`); without them an embedded ``metadata``
is only checked for decoding.

Where Go iterates a map (in random order) this module goes in sorted key order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from headwater_dev import fielderrors as fe
from headwater_dev.apiextensions import formats
from headwater_dev.apiextensions import schemaview as st
from headwater_dev.apiextensions.objectmeta import (
    MetadataDecodeError,
    decode_object_meta,
)

ObjectMetaRules = Callable[[Mapping[str, Any], bool, str], list[fe.FieldError]]
"""``ValidateObjectMeta(meta, namespaced, path.ValidatePathSegmentName, fldPath)``: given
the decoded metadata, whether it is namespaced, and the path of ``metadata``."""

_DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
    "with an alphabetic character, and end with an alphanumeric character")


def dns1035_label_errors(value: str) -> list[str]:
    """apimachinery ``validation.IsDNS1035Label``."""
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not formats.go_regexp_matches(f"^{_DNS1035_LABEL}$", value):
        errors.append(f"{_DNS1035_MESSAGE} (e.g. 'my-name',  or 'abc-123', regex used for "
                      f"validation is '{_DNS1035_LABEL}')")
    return errors


def _type_meta_field_errors(path: str, name: str, value: Any) -> list[fe.FieldError]:
    here = f"{path}.{name}" if path else name
    if not isinstance(value, str):
        return [fe.invalid(here, value, "must be a string")]
    if not value:
        return [fe.invalid(here, value, "must not be empty")]
    if name == "apiVersion":
        if value != "/" and value.count("/") > 1:
            return [fe.invalid(here, value, f"unexpected GroupVersion string: {value}")]
        return []
    problems = dns1035_label_errors(value.lower())
    if problems:
        return [fe.invalid(here, value, "may have mixed case, but should otherwise match: "
                           + ",".join(problems))]
    return []


def _metadata_errors(path: str, value: Any, rules: ObjectMetaRules | None
                     ) -> list[fe.FieldError]:
    here = f"{path}.metadata" if path else "metadata"
    try:
        meta = decode_object_meta(value, path).meta
    except MetadataDecodeError as error:
        return [fe.invalid(here, value, str(error))]
    if rules is None:
        return []
    meta = {**meta, "name": meta.get("name") or "fakename"}
    return rules(meta, bool(meta.get("namespace")), here)


def _resource_errors(path: str, obj: Mapping[str, Any], rules: ObjectMetaRules | None
                     ) -> list[fe.FieldError]:
    """``validateEmbeddedResource``."""
    errors: list[fe.FieldError] = []
    for name in ("apiVersion", "kind"):
        if name not in obj:
            errors.append(fe.required(f"{path}.{name}" if path else name, "must not be empty"))
    for name in sorted(obj):
        if name in ("apiVersion", "kind"):
            errors.extend(_type_meta_field_errors(path, name, obj[name]))
        elif name == "metadata":
            errors.extend(_metadata_errors(path, obj[name], rules))
    return errors


def _errors(path: str, value: Any, schema: st.Schema | None, rules: ObjectMetaRules | None
            ) -> list[fe.FieldError]:
    if schema is None:
        return []
    errors: list[fe.FieldError] = []
    if isinstance(value, Mapping):
        if st.embedded_resource(schema):
            errors.extend(_resource_errors(path, value, rules))
        declared = st.properties(schema)
        extra = st.additional_properties(schema)
        # Only parts whose schema has an embedded resource somewhere can have errors.
        for name in sorted(value):
            if name in declared:
                if st.may_hold_embedded_resource(declared[name]):
                    errors.extend(_errors(f"{path}.{name}" if path else name, value[name],
                                          declared[name], rules))
            elif extra is not None and st.may_hold_embedded_resource(extra):
                errors.extend(_errors(f"{path}[{name}]", value[name], extra, rules))
    elif (isinstance(value, Sequence) and not isinstance(value, str)
          and st.may_hold_embedded_resource(st.items(schema))):
        for position, item in enumerate(value):
            errors.extend(_errors(f"{path}[{position}]", item, st.items(schema), rules))
    return errors


def embedded_resource_errors(schema: st.Schema | None, obj: Mapping[str, Any], *,
                             object_meta_rules: ObjectMetaRules | None = None
                             ) -> list[fe.FieldError]:
    """What is wrong with the embedded resources in ``obj`` (the root itself is not one)."""
    root = None if schema is None else {**schema, "x-kubernetes-embedded-resource": False}
    return _errors("", obj, root, object_meta_rules)


__all__ = ["ObjectMetaRules", "dns1035_label_errors", "embedded_resource_errors"]
