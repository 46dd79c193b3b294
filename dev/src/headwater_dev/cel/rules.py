"""Evaluating the CEL rules of a structural schema on a custom resource being written.

apiextensions-apiserver v0.32.9 ``pkg/apiserver/schema/cel/validation.go``
(``Validator.validate``/``validateExpressions``/``validateMap``/``validateArray``,
``evalMessageExpression``, ``fieldErrorForReason``, ``ruleMessageOrDefault``) as
``pkg/registry/customresource/strategy.go`` calls it: from the root with no field path
(a root error's field is ``<nil>``, as apimachinery prints a nil ``field.Path``), the
whole object's cost budget ``RuntimeCELCostBudget``, each expression's limit
``PerCallLimit``, and on update ratcheting (``CRDValidationRatcheting``, on by default
in 1.32): a failing rule that does not read ``oldSelf`` is not an error where the value
it checks is unchanged.

Transition rules (reading ``oldSelf``) run only where an old value is correlated:
object fields and map values by key, items of ``x-kubernetes-list-type: map`` lists by
their keys; with ``optionalOldSelf`` they also run without one (``oldSelf`` is then
``optional.none()``). Rules inside ``allOf`` are not evaluated here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from headwater_dev import fielderrors as fe
from headwater_dev.cel import compiler, declarations, fieldpath, functions, interpreter
from headwater_dev.cel.values import ABSENT, CelEvalError, equal, to_value

PER_CALL_LIMIT: Final = 1_000_000
RUNTIME_CEL_COST_BUDGET: Final = 10_000_000
MAX_MESSAGE_EXPRESSION_SIZE: Final = 5 * 1024
_OUT_OF_BUDGET: Final = ("validation failed due to running out of cost budget, no further "
                         "validation rules will be run")


class _OutOfBudget(Exception):
    """The object's cost budget is spent: no further rules run."""


@dataclass
class _Run:
    budget: int = RUNTIME_CEL_COST_BUDGET
    errors: list[fe.FieldError] = field(default_factory=list)


def rule_violations(schema: Mapping[str, Any], new: Mapping[str, Any],
                    old: Mapping[str, Any] | None) -> list[fe.FieldError]:
    """The rule failures of ``new`` (``old`` on update, None on create)."""
    if not _has_rules(schema):
        return []
    run = _Run()
    decl = _per_node(_ROOT_DECLS, schema, lambda: declarations.schema_decl(schema, True))
    with contextlib.suppress(_OutOfBudget):
        _validate(run, schema, decl, new, old, parts=[], is_root=True,
                  unchanged=old is not None and new == old, updating=old is not None)
    return run.errors


def _has_rules(schema: Any) -> bool:
    if type(schema) is not dict and not isinstance(schema, Mapping):
        return False
    return _per_node(_HAS_RULES, schema, lambda: _find_rules(schema))


def _find_rules(schema: Mapping[str, Any]) -> bool:
    if schema.get("x-kubernetes-validations"):
        return True
    children = [*(schema.get("properties") or {}).values(), schema.get("items"),
                schema.get("additionalProperties")]
    return any(_has_rules(child) for child in children)


T = TypeVar("T")
_NodeCache = dict[int, tuple[Mapping[str, Any], Any]]
_CACHE_LIMIT = 4096
_ROOT_DECLS: _NodeCache = {}
_HAS_RULES: _NodeCache = {}
_ENVIRONMENTS: _NodeCache = {}
_FIELDS_READ: _NodeCache = {}


def _per_node(cache: _NodeCache, schema: Mapping[str, Any], make: Callable[[], T]) -> T:
    """What ``make()`` computes for a schema node, computed once per node.

    A served CRD version's schema objects live as long as it is served, and every write
    of its resources walks the same nodes: building the declarations and environments
    and compiling the rules again each time cost ~5 ms a write. Keyed by the node's
    identity, holding the node, so a key cannot be reused by another object while cached.
    """
    cached = cache.get(id(schema))
    if cached is not None and cached[0] is schema:
        value: T = cached[1]
        return value
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    value = make()
    cache[id(schema)] = (schema, value)
    return value


def _path(parts: list[fe.PathPart]) -> str:
    return fe.format_path(parts) if parts else "<nil>"


def _validate(run: _Run, schema: Mapping[str, Any], decl: declarations.Decl | None, obj: Any,
              old: Any, *, parts: list[fe.PathPart], is_root: bool, unchanged: bool,
              updating: bool) -> None:
    if obj is None or not _has_rules(schema):
        return
    rules = schema.get("x-kubernetes-validations") or []
    if rules and decl is not None:
        _expressions(run, schema, decl, rules, obj, old=old, parts=parts, is_root=is_root,
                     unchanged=unchanged)
    if isinstance(obj, list):
        _array(run, schema, decl, obj, old, parts=parts, unchanged=unchanged, updating=updating)
    elif isinstance(obj, Mapping):
        _map(run, schema, decl, obj, old, parts=parts, unchanged=unchanged, updating=updating)


def _map(run: _Run, schema: Mapping[str, Any], decl: declarations.Decl | None,
         obj: Mapping[str, Any], old: Any, *, parts: list[fe.PathPart], unchanged: bool,
         updating: bool) -> None:
    old_map = old if isinstance(old, Mapping) else {}
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping) and _has_rules(additional):
        elem = decl.elem if decl is not None else None
        for key, value in obj.items():
            _child(run, additional, elem, value, old_map.get(key), parts=[*parts, fe.key(key)],
                   correlated=key in old_map, parent_unchanged=unchanged, updating=updating)
    properties = schema.get("properties") or {}
    for key, value in obj.items():
        prop = properties.get(key)
        if prop is None or value is None or not _has_rules(prop):
            continue  # _child would return at once; skip building its path and declaration
        _child(run, prop, _property_decl(decl, key, prop), value, old_map.get(key),
               parts=[*parts, key], correlated=key in old_map, parent_unchanged=unchanged,
               updating=updating)


def _property_decl(decl: declarations.Decl | None, name: str,
                   prop: Mapping[str, Any]) -> declarations.Decl | None:
    escaped = declarations.escape(name)
    if escaped is None:
        return declarations.schema_decl(prop, bool(prop.get("x-kubernetes-embedded-resource")))
    return decl.fields.get(escaped) if decl is not None and decl.kind == "object" else None


def _child(run: _Run, schema: Mapping[str, Any], decl: declarations.Decl | None, value: Any,
           old: Any, *, parts: list[fe.PathPart], correlated: bool, parent_unchanged: bool,
           updating: bool) -> None:
    if value is None or not _has_rules(schema):
        return  # what _validate answers first, before comparing the node with its old value
    # Ratcheting: a correlated node is unchanged when equal to its old value; an
    # uncorrelated one inherits its nearest correlated ancestor's answer.
    unchanged = (correlated and value == old) if updating and correlated else parent_unchanged
    _validate(run, schema, decl, value, old if correlated else None, parts=parts,
              is_root=bool(schema.get("x-kubernetes-embedded-resource")), unchanged=unchanged,
              updating=updating)


def _array(run: _Run, schema: Mapping[str, Any], decl: declarations.Decl | None,
           obj: list[Any], old: Any, *, parts: list[fe.PathPart], unchanged: bool,
           updating: bool) -> None:
    items = schema.get("items")
    if not isinstance(items, Mapping):
        return
    elem = decl.elem if decl is not None else None
    keys = schema.get("x-kubernetes-list-map-keys") or []
    by_key: dict[tuple[Any, ...], Any] = {}
    if schema.get("x-kubernetes-list-type") == "map" and keys and isinstance(old, list):
        by_key = {_key(item, keys): item for item in old if isinstance(item, Mapping)}
    for i, item in enumerate(obj):
        old_item = by_key.get(_key(item, keys)) if by_key and isinstance(item, Mapping) else None
        _child(run, items, elem, item, old_item, parts=[*parts, i],
               correlated=old_item is not None, parent_unchanged=unchanged, updating=updating)


def _environment(schema: Mapping[str, Any], decl: declarations.Decl) -> compiler.Environment:
    """The CEL environment of a schema node (one per node, see :func:`_per_node`)."""
    return _per_node(_ENVIRONMENTS, schema, lambda: compiler.Environment(decl))


def _key(item: Mapping[str, Any], keys: list[str]) -> tuple[Any, ...]:
    return tuple(repr(item.get(k)) for k in keys)


def _expressions(run: _Run, schema: Mapping[str, Any], decl: declarations.Decl,
                 rules: list[Mapping[str, Any]], obj: Any, *, old: Any,
                 parts: list[fe.PathPart], is_root: bool, unchanged: bool) -> None:
    node_type = schema.get("type", "")
    if run.budget <= 0:
        run.errors.append(fe.invalid(_path(parts), node_type, _OUT_OF_BUDGET))
        raise _OutOfBudget
    env = _environment(schema, decl)
    fields = _per_node(_FIELDS_READ, schema, lambda: _fields_read(env, decl, rules))
    value = _SelfValue(obj, decl, fields)
    old_value = _Lazy(old, decl)
    for rule in rules:
        _rule(run, env, schema, rule, value, old_value=old_value, has_old=old is not None,
              parts=parts, unchanged=unchanged)


def _fields_read(env: compiler.Environment, decl: declarations.Decl,
                 rules: list[Mapping[str, Any]]) -> frozenset[str] | None:
    """The JSON fields of an object node its rules can read, or None: all of them (the
    node is not an object, or a rule uses ``self`` other than by selecting a field)."""
    if decl.kind != "object":
        return None
    fields: set[str] = set()
    for rule in rules:
        source = rule.get("rule", "") or ""
        if not source.strip():
            continue
        compiled = env.compile_rule(source, optional_old_self=bool(rule.get("optionalOldSelf")))
        if isinstance(compiled, compiler.CompileError):
            continue  # never evaluated
        if compiled.self_fields is None:
            return None
        fields.update(functions.unescape(name) for name in compiled.self_fields)
    return frozenset(fields)


class _Lazy:
    """A node's CEL value, converted on first use: most rules never read ``oldSelf``, and
    a rule that selects fields of ``self`` never reads the rest (the FlowRun's and
    Schedule's root rules read only ``self.metadata.name``). Converting the whole object
    per write is the cost Kubernetes avoids by wrapping values lazily
    (apiextensions-apiserver ``pkg/apiserver/schema/cel/values.go`` ``UnstructuredToVal``
    hands ``k8s.io/apiserver`` ``pkg/cel/common/values.go`` the object, whose
    ``unstructuredMap.Get``/``Find`` convert a field when a rule reads it)."""

    def __init__(self, obj: Any, decl: declarations.Decl) -> None:
        self._obj, self._decl = obj, decl
        self._value: Any = None
        self._converted = obj is None

    def get(self) -> Any:
        if not self._converted:
            self._value, self._converted = to_value(self._obj, self._decl), True
        return self._value


class _SelfValue:
    """``self``'s CEL value. Where the node's rules only select fields of ``self``
    (``self.metadata.name``, ``has(self.spec)``), :attr:`rules_view` holds only those
    fields, converted (:class:`_Lazy` says why): a field not converted is one no rule can
    read, so every verdict and cost is the same. A message expression may read anything:
    a failing rule takes :attr:`full`."""

    def __init__(self, obj: Any, decl: declarations.Decl, fields: frozenset[str] | None
                 ) -> None:
        self.full = _Lazy(obj, decl)
        if fields is not None and type(obj) is dict:
            self.rules_view: Any = {key: to_value(item, decl.json_field(key))
                                    for key, item in obj.items() if key in fields}
        else:
            self.rules_view = self.full.get()


def _rule(run: _Run, env: compiler.Environment, schema: Mapping[str, Any],
          rule: Mapping[str, Any], value: _SelfValue, *, old_value: _Lazy, has_old: bool,
          parts: list[fe.PathPart], unchanged: bool) -> None:
    node_type = schema.get("type", "")
    source = rule.get("rule", "") or ""
    if not source.strip():
        return
    optional = bool(rule.get("optionalOldSelf"))
    compiled = env.compile_rule(source, optional_old_self=optional)
    where = _path(parts)
    if isinstance(compiled, compiler.CompileError):
        run.errors.append(fe.invalid(where, node_type, f"rule compile error: {compiled.detail}"))
        return
    if compiled.uses_old_self and not has_old and not optional:
        return
    # A rule that never names oldSelf cannot read it; its message expression may, so the
    # failure path below binds the converted value before evaluating that.
    old_self = old_value.get() if compiled.uses_old_self else None
    variables = {compiler.SCOPED_VAR: value.rules_view,
                 compiler.OLD_SCOPED_VAR: _old_self(old_self, has_old, optional)}
    try:
        result, spent = interpreter.evaluate(compiled.tree.root, variables, PER_CALL_LIMIT)
    except CelEvalError as error:
        spent = getattr(error, "cost", 0)
        if spent > run.budget:
            run.errors.append(fe.invalid(where, node_type, _OUT_OF_BUDGET))
            raise _OutOfBudget from None
        run.budget -= spent
        _runtime_error(run, where, node_type, error, rule)
        return
    if spent > run.budget:
        run.errors.append(fe.invalid(where, node_type, _OUT_OF_BUDGET))
        raise _OutOfBudget
    run.budget -= spent
    if result is True:
        return
    error_parts = list(parts)
    if rule.get("fieldPath"):
        resolved = fieldpath.resolve(rule["fieldPath"], schema)
        if isinstance(resolved, list):
            error_parts.extend(resolved)
    variables[compiler.SCOPED_VAR] = value.full.get()
    variables[compiler.OLD_SCOPED_VAR] = _old_self(old_value.get(), has_old, optional)
    failure = _failure(run, env, rule, variables, where=_path(error_parts), node_type=node_type)
    if failure is not None and not (unchanged and not compiled.uses_old_self):
        run.errors.append(failure)


def _old_self(old_value: Any, has_old: bool, optional: bool) -> Any:
    return old_value if has_old or not optional else ABSENT


def _runtime_error(run: _Run, where: str, node_type: str, error: CelEvalError,
                   rule: Mapping[str, Any]) -> None:
    text = str(error)
    described = _rule_error_string(rule)
    if text.startswith("no such overload"):
        run.errors.append(fe.invalid(where, node_type, f"'{text}': call arguments did not match "
                                     "a supported operator, function or macro signature for "
                                     f"rule: {described}"))
    elif text.startswith(interpreter.COST_LIMIT_MESSAGE):
        run.errors.append(fe.invalid(where, node_type, f"'{text}': no further validation rules "
                                     "will be run due to call cost exceeds limit for rule: "
                                     f"{described}"))
        raise _OutOfBudget
    else:
        run.errors.append(fe.invalid(where, node_type, f"{text} evaluating rule: {described}"))


def _failure(run: _Run, env: compiler.Environment, rule: Mapping[str, Any],
             variables: Mapping[str, Any], *, where: str, node_type: str
             ) -> fe.FieldError | None:
    expression = rule.get("messageExpression", "") or ""
    if not expression:
        return _for_reason(where, node_type, _message_or_default(rule), rule.get("reason"))
    compiled = env.compile_message(expression, optional_old_self=bool(rule.get(
        "optionalOldSelf")))
    if isinstance(compiled, compiler.CompileError):
        return _for_reason(where, node_type, _message_or_default(rule), rule.get("reason"))
    try:
        message, spent = interpreter.evaluate(compiled.tree.root, variables, PER_CALL_LIMIT)
    except CelEvalError as error:
        spent = getattr(error, "cost", 0)
        if spent > run.budget:
            run.errors.append(fe.invalid(where, node_type, "messageExpression evaluation failed "
                                         "due to running out of cost budget, no further "
                                         "validation rules will be run"))
            raise _OutOfBudget from None
        if str(error).startswith(interpreter.COST_LIMIT_MESSAGE):
            run.errors.append(fe.invalid(where, node_type, "no further validation rules will be "
                                         "run due to call cost exceeds limit for "
                                         f"messageExpression: {fe.go_quote(expression)}"))
            raise _OutOfBudget from None
        run.budget -= spent
        return _for_reason(where, node_type, _message_or_default(rule), rule.get("reason"))
    if spent > run.budget:
        run.errors.append(fe.invalid(where, node_type, "messageExpression evaluation failed due "
                                     "to running out of cost budget, no further validation "
                                     "rules will be run"))
        raise _OutOfBudget
    run.budget -= spent
    text = message.strip() if isinstance(message, str) else ""
    if (not text or len(text) > MAX_MESSAGE_EXPRESSION_SIZE or "\n" in text):
        # evalMessageExpression's soft failures fall back to the rule's message.
        return _for_reason(where, node_type, _message_or_default(rule), rule.get("reason"))
    return _for_reason(where, node_type, text, rule.get("reason"))


def _for_reason(where: str, node_type: str, detail: str, reason: str | None) -> fe.FieldError:
    """``fieldErrorForReason``."""
    if reason == "FieldValueForbidden":
        return fe.forbidden(where, detail)
    if reason == "FieldValueRequired":
        return fe.required(where, detail)
    if reason == "FieldValueDuplicate":
        return fe.duplicate(where, node_type)
    return fe.invalid(where, node_type, detail)


def _message_or_default(rule: Mapping[str, Any]) -> str:
    message = rule.get("message", "") or ""
    if message:
        return message.strip()
    return f"failed rule: {_rule_error_string(rule)}"


def _rule_error_string(rule: Mapping[str, Any]) -> str:
    message = rule.get("message", "") or ""
    return message.strip() if message else (rule.get("rule", "") or "").strip()


__all__ = ["PER_CALL_LIMIT", "RUNTIME_CEL_COST_BUDGET", "equal", "rule_violations"]
