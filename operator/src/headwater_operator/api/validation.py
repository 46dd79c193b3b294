"""Offline validation of Headwater manifests: what the API server would reject, and more.

:func:`validate_manifest` runs three layers and returns one ``<field>: <problem>`` line
per problem:

1. **OpenAPI schema** of the generated CRD, checked with ``jsonschema``. Unlike the API
   server, unknown fields are errors: the server would prune them silently (a typo like
   ``spec.concurency`` would just vanish), which is what ``kubectl``'s strict field
   validation also refuses.
2. **CEL rules** (``x-kubernetes-validations``) of the CRD, evaluated with ``cel-python``
   on every node they are attached to. Transition rules (``oldSelf``) need the previous
   object: :func:`cel_errors` takes it for an update; :func:`validate_manifest` checks
   a new object, so it skips them.
3. **pydantic models**, which also check what CEL cannot: that a cron expression
   parses, a time zone exists, an RRULE is well-formed.

Layer 2 runs only when layer 1 passed (CEL assumes well-typed input, as in the API
server); layer-3 messages about a field already reported are dropped as duplicates.
The CLI (``headwater validate``) and the operator share this function.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from functools import cache
from typing import Any

import celpy
from celpy.adapter import json_to_cel
from celpy.celtypes import BoolType
from headwater.contract import API_VERSION
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError as SchemaError
from pydantic import ValidationError

from headwater_operator.api.common import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    QUANTITY_PATTERN,
)
from headwater_operator.api.errors import field_path, format_validation_error
from headwater_operator.api.expressions import CRON_PATTERN, INTERVAL_PATTERN
from headwater_operator.api.flow import ENTRYPOINT_PATTERN
from headwater_operator.api.source import (
    BUNDLE_URL_PATTERN,
    GIT_REF_PATTERN,
    GIT_URL_PATTERN,
    SHA256_PATTERN,
    SOURCE_PATH_PATTERN,
)

# A regular expression is no fix: for each pattern in the CRDs, what to write instead.
# (The API server itself can only print the regex; the offline validator can do better.)
PATTERN_HINTS: dict[str, str] = {
    INTERVAL_PATTERN: "write a duration with units d, h, m, s in that order, "
    "e.g. '90s', '15m', '1h30m' or '1d'",
    CRON_PATTERN: "write five fields 'minute hour day-of-month month day-of-week', "
    "e.g. '0 6 * * 1-5', or a macro such as '@daily' (seconds are not supported)",
    ENTRYPOINT_PATTERN: "write 'package.module:function' or 'path/to/file.py:function'",
    QUANTITY_PATTERN: "write a non-negative Kubernetes quantity, e.g. '512Mi', '2Gi', "
    "'500m', '1k' or '1' (decimal kilo is a lower-case 'k', binary suffixes end in 'i')",
    GIT_URL_PATTERN: "write a repository URL such as 'https://github.com/acme/flows.git', "
    "'ssh://git@github.com/acme/flows.git' or 'git@github.com:acme/flows.git'",
    GIT_REF_PATTERN: "write a branch, tag or commit such as 'main', 'v1.4.2' or a commit "
    "hash (it cannot start with '-' or hold spaces)",
    SOURCE_PATH_PATTERN: "write a directory relative to the repository root, e.g. "
    "'flows/etl' (no leading '/' or '.')",
    BUNDLE_URL_PATTERN: "write the URL of a .tar.gz or .tgz, e.g. "
    "'s3://acme-flows/etl/1.4.2.tar.gz'",
    SHA256_PATTERN: "write 64 lower-case hex digits, as `sha256sum flow.tar.gz` prints",
    DNS_SUBDOMAIN_PATTERN: "use lower-case letters, digits, '-' and '.', starting and "
    "ending with a letter or digit, e.g. 'daily-ingest'",
    DNS_LABEL_PATTERN: "use lower-case letters, digits and '-', starting and ending with "
    "a letter or digit, e.g. 'daily-ingest'",
}

_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _is_rfc3339(value: object) -> bool:
    """RFC 3339 as Kubernetes wants it: a date, a time and an explicit offset (or Z)."""
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None or "T" not in value.upper():
        raise ValueError("needs a date, a time and an offset, e.g. 2024-05-01T06:00:00Z")
    return True


def to_json_schema(node: Mapping[str, Any], *, unknown_fields: bool = False) -> dict[str, Any]:
    """Translate a CRD structural schema into a strict JSON Schema (draft 2020-12).

    Objects with declared properties reject undeclared keys unless the CRD marks them
    ``x-kubernetes-preserve-unknown-fields`` (or ``unknown_fields`` allows them
    everywhere); ``x-kubernetes-list-type: set`` becomes ``uniqueItems``. Other
    ``x-kubernetes-*`` keys are ignored by JSON Schema.
    """
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: to_json_schema(child, unknown_fields=unknown_fields)
                        for name, child in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
            out[key] = to_json_schema(value, unknown_fields=unknown_fields)
        elif key == "x-kubernetes-list-type" and value == "set":
            out["uniqueItems"] = True
        elif not key.startswith("x-kubernetes-"):
            out[key] = value
    if ("properties" in node and not node.get("x-kubernetes-preserve-unknown-fields")
            and not unknown_fields):
        out["additionalProperties"] = False
    return out


@cache
def _crd_schema(kind: str) -> dict[str, Any]:
    # Imported here: crdgen imports the api package, which imports this module lazily.
    from headwater_operator import crdgen
    from headwater_operator.api import KINDS

    crd = crdgen.build_crd(KINDS[kind])
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@cache
def _validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(to_json_schema(_crd_schema(kind)), format_checker=_FORMATS)


def _describe_schema_error(error: SchemaError) -> list[str]:
    path = [str(p) if not isinstance(p, int) else p for p in error.absolute_path]
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
        known = schema.get("properties", {})
        return [
            f"{field_path([*path, key])}: unknown field (check the spelling; the API server "
            "would drop it silently)"
            for key in error.instance
            if key not in known
        ]
    if (
        error.validator == "required"
        and isinstance(error.validator_value, list)
        and isinstance(error.instance, Mapping)
    ):
        missing = [k for k in error.validator_value if k not in error.instance]
        return [f"{field_path([*path, key])}: required field is missing" for key in missing]
    if error.validator == "pattern" and isinstance(error.validator_value, str):
        hint = PATTERN_HINTS.get(
            error.validator_value, f"it must match the pattern {error.validator_value!r}"
        )
        return [f"{field_path(path)}: {error.instance!r} has the wrong form; {hint}"]
    return [f"{field_path(path)}: {error.message}"]


@cache
def _status_validator(kind: str) -> Draft202012Validator:
    # Unknown status fields are not errors: the API server prunes them, it does not refuse.
    schema = {"type": "object", "properties": {
        "status": _crd_schema(kind)["properties"]["status"]}}
    return Draft202012Validator(to_json_schema(schema, unknown_fields=True),
                                format_checker=_FORMATS)


def status_errors(kind: str, status: Mapping[str, Any]) -> list[str]:
    """Problems the CRD's schema finds in a ``status`` the operator is about to write.

    A status write the schema refuses is answered 422 by the API server, every time; the
    caller decides what to write instead. Lines read ``status.<field>: <problem>``.
    """
    errors = sorted(_status_validator(kind).iter_errors({"status": dict(status)}),
                    key=lambda e: e.json_path)
    return [line for error in errors for line in _describe_schema_error(error)]


def schema_errors(doc: Mapping[str, Any]) -> list[str]:
    """Problems the CRD's OpenAPI schema finds in ``doc`` (strict about unknown fields)."""
    errors = sorted(_validator(str(doc["kind"])).iter_errors(doc), key=lambda e: e.json_path)
    return [line for error in errors for line in _describe_schema_error(error)]


@cache
def _program(rule: str) -> celpy.Runner:
    env = celpy.Environment()
    return env.program(env.compile(rule))


def _rule_sites(
    schema: Mapping[str, Any], value: Any, path: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], Mapping[str, Any], Any]]:
    """Yield (path, rule, value) for every CEL rule that applies to a present value."""
    for rule in schema.get("x-kubernetes-validations", ()):
        yield path, rule, value
    if isinstance(value, Mapping):
        for name, child in schema.get("properties", {}).items():
            if name in value:
                yield from _rule_sites(child, value[name], (*path, name))
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            for name, item in value.items():
                yield from _rule_sites(extra, item, (*path, str(name)))
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            yield from _rule_sites(schema["items"], item, (*path, index))


def _old_value(old: Any, path: tuple[str | int, ...]) -> tuple[bool, Any]:
    """``(True, value)`` at ``path`` in the old object, ``(False, None)`` if it has none.

    Only object properties and map keys correlate an old value with a new one here;
    the API server also correlates items of ``listType: map``/``set`` lists, which carry
    no transition rule in Headwater's CRDs (apiextensions-apiserver v0.32.9
    ``pkg/apiserver/schema/cel/validation.go``: a transition rule is evaluated only where
    the old object has a value at the same, correlatable place).
    """
    for step in path:
        if isinstance(step, int) or not isinstance(old, Mapping) or step not in old:
            return False, None
        old = old[step]
    return True, old


def cel_errors(doc: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> list[str]:
    """Problems the CRD's ``x-kubernetes-validations`` rules find in ``doc``.

    ``doc`` must already satisfy the schema (see :func:`schema_errors`). Transition rules
    (those reading ``oldSelf``) need the object being replaced: pass it as ``old`` (an
    update), or they are skipped (a create, where the API server skips them too).
    """
    errors = []
    for path, rule, value in _rule_sites(_crd_schema(str(doc["kind"])), doc, ()):
        activation = {"self": json_to_cel(value)}
        if "oldSelf" in rule["rule"]:
            found, previous = (False, None) if old is None else _old_value(old, path)
            if not found:
                continue
            activation["oldSelf"] = json_to_cel(previous)
        result = _program(rule["rule"]).evaluate(activation)
        if isinstance(result, BoolType) and bool(result):
            continue
        message = rule.get("message") or f"failed rule {rule['rule']}"
        where = path
        if rule.get("fieldPath"):
            where = (*path, *str(rule["fieldPath"]).lstrip(".").split("."))
        # Root rules carry the field they are about in their message (metadata.name: …).
        errors.append(f"{field_path(where)}: {message}" if where else message)
    return errors


def model_errors(doc: Mapping[str, Any]) -> list[str]:
    """Problems the pydantic models find in ``doc`` (cron, time zones, RRULEs, …)."""
    from headwater_operator.api import KINDS

    try:
        KINDS[str(doc["kind"])].model_validate(dict(doc))
    except ValidationError as exc:
        return format_validation_error(exc)
    return []


def _envelope_errors(doc: object) -> list[str]:
    from headwater_operator.api import KINDS

    if not isinstance(doc, Mapping):
        return [f"<root>: expected a Kubernetes object (a mapping), got {type(doc).__name__}"]
    if doc.get("apiVersion") != API_VERSION:
        return [f"apiVersion: expected {API_VERSION!r}, got {doc.get('apiVersion')!r}"]
    if doc.get("kind") not in KINDS:
        return [f"kind: expected one of {', '.join(KINDS)}, got {doc.get('kind')!r}"]
    return []


def _path_of(line: str) -> str:
    return line.split(": ", 1)[0]


def validate_manifest(doc: object) -> list[str]:
    """Validate one Headwater manifest offline; return ``<field>: <problem>`` lines.

    An empty list means the API server would accept the object (modulo transition rules
    and references to other objects) and the operator can parse it.
    """
    envelope = _envelope_errors(doc)
    if envelope:
        return envelope
    assert isinstance(doc, Mapping)
    errors = schema_errors(doc)
    if not errors:
        errors = cel_errors(doc)
    reported = {_path_of(line) for line in errors}
    errors += [line for line in model_errors(doc) if _path_of(line) not in reported]
    return list(dict.fromkeys(errors))
