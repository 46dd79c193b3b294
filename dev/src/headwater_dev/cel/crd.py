"""What the API server refuses about a CRD version's ``x-kubernetes-validations``.

apiextensions-apiserver v0.32.9 ``pkg/apis/apiextensions/validation/validation.go``
(``ValidateCustomResourceDefinitionOpenAPISchema``, the ``x-kubernetes-validations``
block; ``validateCustomResourceDefinitionValidation``, the whole-schema cost) and
``cel_validation.go`` (``CELSchemaContext``: which type a node's rules compile against,
how many times a node can repeat). The traversal order is Kubernetes': a node's
additionalProperties, its properties, allOf/anyOf/oneOf/not (rule fields are checked
there, rules never compiled), its items, and then its own rules. Go visits properties
in random map order; they are visited in declaration order here.

Kubernetes keeps two lists while it walks: schema errors (rule text, message, reason,
fieldPath) and CEL errors (compilation, cost, oldSelf); a node's rules are compiled only
when the node and everything under it had no schema error. The API server reports the
schema errors of the whole tree first, then the CEL errors, then the total-cost errors:
:class:`RuleErrors` keeps the three apart so the caller can put other schema errors in
between; :func:`schema_rule_errors` joins them in that order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from headwater_dev import fielderrors as fe
from headwater_dev.cel import compiler, cost, declarations, fieldpath

STATIC_ESTIMATED_COST_LIMIT: Final = 10_000_000
STATIC_ESTIMATED_CRD_COST_LIMIT: Final = 100_000_000
U64: Final = cost.U64
_SUPPORTED_REASONS: Final = ("FieldValueDuplicate", "FieldValueForbidden",
                             "FieldValueInvalid", "FieldValueRequired")
_NEWLINES: Final = re.compile(r"[\n\r]+")


@dataclass
class RuleErrors:
    """The three lists Kubernetes keeps (see the module docstring)."""

    schema: list[fe.FieldError] = field(default_factory=list)
    cel: list[fe.FieldError] = field(default_factory=list)
    total_cost: list[fe.FieldError] = field(default_factory=list)

    def all(self) -> list[fe.FieldError]:
        return [*self.schema, *self.cel, *self.total_cost]


@dataclass
class _Context:
    """``CELSchemaContext`` of one node."""

    schema: Mapping[str, Any]
    in_scope: bool
    parent: _Context | None = None
    accessor: tuple[str, str] | None = None  # ("property", name) | ("items"|"additional", "")
    cardinality: int | None = 1  # None: unbounded
    _type: declarations.Decl | None = None
    _resolved: bool = False

    def decl(self) -> declarations.Decl | None:
        """``TypeInfo``: from the parent's type when possible, else converted."""
        if not self.in_scope:
            return None
        if not self._resolved:
            self._resolved = True
            if self.parent is not None and self.accessor is not None:
                parent = self.parent.decl()
                if parent is not None:
                    self._type = _access(parent, self.parent.schema, self.accessor)
            if self._type is None:
                self._type = declarations.schema_decl(
                    self.schema, self.parent is None or bool(
                        self.schema.get("x-kubernetes-embedded-resource")))
        return self._type

    def child(self, schema: Mapping[str, Any], accessor: tuple[str, str]) -> _Context:
        result = _Context(schema, self.in_scope or bool(schema.get("x-kubernetes-validations")),
                          self, accessor, None)
        if self.cardinality is not None:
            factor = _max_elements(self.schema)
            if factor is not None:
                result.cardinality = min(self.cardinality * factor, U64)
        return result


def _access(parent: declarations.Decl, parent_schema: Mapping[str, Any],
            accessor: tuple[str, str]) -> declarations.Decl | None:
    kind, name = accessor
    if kind == "property":
        escaped = declarations.escape(name)
        if escaped is None or parent.kind != "object":
            return None
        return parent.fields.get(escaped)
    if kind == "items":
        return parent.elem if parent_schema.get("items") is not None else None
    return parent.elem if isinstance(parent_schema.get("additionalProperties"), Mapping) \
        else None


def _max_elements(schema: Mapping[str, Any]) -> int | None:
    """``extractMaxElements``."""
    if schema.get("type") == "object":
        if "additionalProperties" in schema:
            if schema.get("maxProperties") is not None:
                return max(int(schema["maxProperties"]), 0)
            return None
        return 1
    if schema.get("type") == "array":
        if schema.get("maxItems") is not None:
            return max(int(schema["maxItems"]), 0)
        return None
    return 1


@dataclass
class _TotalCost:
    total: int = 0
    most_expensive: list[tuple[str, int]] = field(default_factory=list)

    def observe(self, path: str, amount: int) -> None:
        self.total = min(self.total + amount, U64)
        if amount < STATIC_ESTIMATED_CRD_COST_LIMIT // 100:
            return
        self.most_expensive.append((path, amount))
        self.most_expensive.sort(key=lambda entry: -entry[1])
        del self.most_expensive[4:]


@dataclass
class _Walk:
    total: _TotalCost = field(default_factory=_TotalCost)

    def node(self, schema: Any, path: str, ctx: _Context | None,
             uncorrelatable: str | None) -> RuleErrors:
        errors = RuleErrors()
        if not isinstance(schema, Mapping):
            return errors
        additional = schema.get("additionalProperties")
        if isinstance(additional, Mapping):
            self.merge(errors, self.node(additional, f"{path}.additionalProperties",
                                         ctx.child(additional, ("additional", "")) if ctx
                                         else None, uncorrelatable))
        for name, prop in (schema.get("properties") or {}).items():
            self.merge(errors, self.node(prop, f"{path}.properties[{name}]",
                                         ctx.child(prop, ("property", name)) if ctx else None,
                                         uncorrelatable))
        self.merge(errors, self.node(schema.get("not"), f"{path}.not", None, uncorrelatable))
        for keyword in ("allOf", "oneOf", "anyOf"):
            for i, sub in enumerate(schema.get(keyword) or ()):
                self.merge(errors, self.node(sub, f"{path}.{keyword}[{i}]", None,
                                             uncorrelatable))
        items = schema.get("items")
        if isinstance(items, Mapping):
            inner = uncorrelatable
            if inner is None and schema.get("x-kubernetes-list-type") != "map":
                inner = path
            self.merge(errors, self.node(items, f"{path}.items",
                                         ctx.child(items, ("items", "")) if ctx else None,
                                         inner))
        rules = schema.get("x-kubernetes-validations") or []
        if rules:
            errors.schema.extend(_rule_field_errors(schema, rules, path))
            if not errors.schema and ctx is not None:
                errors.cel.extend(self.compile(schema, rules, path, ctx, uncorrelatable))
        return errors

    @staticmethod
    def merge(into: RuleErrors, other: RuleErrors) -> None:
        into.schema.extend(other.schema)
        into.cel.extend(other.cel)

    def compile(self, schema: Mapping[str, Any], rules: Sequence[Mapping[str, Any]],
                path: str, ctx: _Context, uncorrelatable: str | None) -> list[fe.FieldError]:
        decl = ctx.decl()
        at = f"{path}.x-kubernetes-validations"
        if decl is None:
            return [fe.internal(at, "internal error: failed to construct type information "
                                "for x-kubernetes-validations rules: unable to convert "
                                "structural schema to CEL declarations")]
        env = compiler.Environment(decl)
        # compilation.go maxCardinality: how often a node of this minimal size fits a request.
        fallback = declarations.MAX_REQUEST_SIZE_BYTES // (decl.min_serialized_size + 1)
        cardinality = ctx.cardinality if ctx.cardinality is not None else fallback
        errors: list[fe.FieldError] = []
        for i, rule in enumerate(rules):
            errors.extend(self.compile_rule(env, decl, rule, f"{at}[{i}]",
                                            cardinality=cardinality,
                                            uncorrelatable=uncorrelatable))
        return errors

    def compile_rule(self, env: compiler.Environment, decl: declarations.Decl,
                     rule: Mapping[str, Any], at: str, *, cardinality: int,
                     uncorrelatable: str | None) -> list[fe.FieldError]:
        errors: list[fe.FieldError] = []
        source = rule.get("rule", "")
        if not source.strip():
            return errors
        optional = bool(rule.get("optionalOldSelf"))
        compiled = env.compile_rule(source, optional_old_self=optional)
        rule_cost = 0
        if isinstance(compiled, compiler.Compiled):
            rule_cost = _times(cost.estimate(compiled.tree.root, decl), cardinality)
        if rule_cost > STATIC_ESTIMATED_COST_LIMIT:
            errors.append(fe.forbidden(f"{at}.rule", cost_message(
                "estimated rule cost", rule_cost, STATIC_ESTIMATED_COST_LIMIT)))
        self.total.observe(f"{at}.rule", rule_cost)
        if isinstance(compiled, compiler.CompileError):
            errors.append(fe.invalid(f"{at}.rule", GoRule(rule), compiled.detail))
            return errors
        errors.extend(self.compile_message(env, decl, rule, at, cardinality=cardinality,
                                           optional=optional))
        if compiled.uses_old_self:
            if uncorrelatable is not None:
                errors.append(fe.invalid(f"{at}.rule", source, "oldSelf cannot be used on the "
                                         f"uncorrelatable portion of the schema within "
                                         f"{uncorrelatable}"))
        elif "optionalOldSelf" in rule and rule["optionalOldSelf"] is not None:
            errors.append(fe.invalid(f"{at}.optionalOldSelf", bool(rule["optionalOldSelf"]),
                                     "may not be set if oldSelf is not used in rule"))
        return errors

    def compile_message(self, env: compiler.Environment, decl: declarations.Decl,
                        rule: Mapping[str, Any], at: str, *, cardinality: int,
                        optional: bool) -> list[fe.FieldError]:
        expression = rule.get("messageExpression", "")
        if not expression:
            return []
        compiled = env.compile_message(expression, optional_old_self=optional)
        if isinstance(compiled, compiler.CompileError):
            return [fe.invalid(f"{at}.messageExpression", GoRule(rule), compiled.detail)]
        # cel.go Compile does not multiply a messageExpression's cost by the cardinality.
        message_cost = cost.estimate(compiled.tree.root, decl)
        errors = []
        if message_cost > STATIC_ESTIMATED_COST_LIMIT:
            errors.append(fe.forbidden(f"{at}.messageExpression", cost_message(
                "estimated messageExpression cost", message_cost, STATIC_ESTIMATED_COST_LIMIT)))
        self.total.observe(f"{at}.messageExpression", message_cost)
        return errors


def _times(a: int, b: int) -> int:
    """``multiplyWithOverflowGuard``."""
    if a == 0:
        return 0
    return min(a * b, U64)


def _rule_field_errors(schema: Mapping[str, Any], rules: Sequence[Mapping[str, Any]],
                       path: str) -> list[fe.FieldError]:
    """The schema errors of each rule's text, message, reason and fieldPath."""
    errors: list[fe.FieldError] = []
    for i, rule in enumerate(rules):
        at = f"{path}.x-kubernetes-validations[{i}]"
        text = rule.get("rule", "") or ""
        message = rule.get("message", "") or ""
        if not text.strip():
            errors.append(fe.required(f"{at}.rule", "rule is not specified"))
        elif message and not message.strip():
            errors.append(fe.invalid(f"{at}.message", message,
                                     "message must be non-empty if specified"))
        elif _NEWLINES.search(message.strip()):
            errors.append(fe.invalid(f"{at}.message", message,
                                     "message must not contain line breaks"))
        elif _NEWLINES.search(text.strip()) and not message.strip():
            errors.append(fe.required(f"{at}.message",
                                      "message must be specified if rule contains line breaks"))
        expression = rule.get("messageExpression", "") or ""
        if expression and not expression.strip():
            errors.append(fe.required(f"{at}.messageExpression",
                                      "messageExpression must be non-empty if specified"))
        reason = rule.get("reason")
        if reason is not None and reason not in _SUPPORTED_REASONS:
            errors.append(fe.not_supported(f"{at}.reason", reason, _SUPPORTED_REASONS))
        errors.extend(_field_path_errors(schema, rule.get("fieldPath", "") or "", at))
    return errors


def _field_path_errors(schema: Mapping[str, Any], path: str, at: str) -> list[fe.FieldError]:
    errors = []
    if path and not path.strip():
        errors.append(fe.invalid(f"{at}.fieldPath", path,
                                 "fieldPath must be non-empty if specified"))
    if _NEWLINES.search(path):
        errors.append(fe.invalid(f"{at}.fieldPath", path, "fieldPath must not contain line breaks"))
    if path and isinstance(fieldpath.resolve(path, schema), fieldpath.FieldPathError):
        errors.append(fe.invalid(f"{at}.fieldPath", path, "fieldPath must be a valid path"))
    return errors


def cost_message(name: str, expression_cost: int, limit: int) -> str:
    """``getCostErrorMessage``."""
    factor = expression_cost / limit
    if factor > 100.0:
        shown = "more than 100x"
    elif factor < 1.5:
        shown = f"{factor:f}x"
    else:
        shown = f"{factor:.1f}x"
    return (f"{name} exceeds budget by factor of {shown} (try simplifying the rule, or adding "
            "maxItems, maxProperties, and maxLength where arrays, maps, and strings are "
            "declared)")


class GoRule:
    """A rule as the bad value of a field error: Go's ``%#v`` of the internal
    ``apiextensions.ValidationRule`` struct (pointers print as their address; a fixed
    one stands in for the address the API server would print)."""

    def __init__(self, rule: Mapping[str, Any]) -> None:
        self.rule = rule

    def go_syntax(self) -> str:
        r = self.rule
        reason = ("(*apiextensions.FieldValueErrorReason)(nil)" if r.get("reason") is None
                  else "(*apiextensions.FieldValueErrorReason)(0xc000000000)")
        old_self = ("(*bool)(nil)" if r.get("optionalOldSelf") is None
                    else "(*bool)(0xc000000008)")
        return ("apiextensions.ValidationRule{"
                f"Rule:{fe.go_quote(r.get('rule', '') or '')}, "
                f"Message:{fe.go_quote(r.get('message', '') or '')}, "
                f"MessageExpression:{fe.go_quote(r.get('messageExpression', '') or '')}, "
                f"Reason:{reason}, FieldPath:{fe.go_quote(r.get('fieldPath', '') or '')}, "
                f"OptionalOldSelf:{old_self}}}")

    def __repr__(self) -> str:
        return self.go_syntax()


class SchemaRules:
    """The rules of one schema, compiled node by node for a caller that walks the schema
    itself (the CRD validation, which decides where rules compile), and the estimated cost
    of the whole schema, which the API server limits per CRD version."""

    def __init__(self, schema: Mapping[str, Any], path: str) -> None:
        self._walk = _Walk()
        self._path = path
        self._contexts: dict[str, _Context] = {}
        self._index(schema, path, _Context(schema, bool(schema.get("x-kubernetes-validations"))))

    def _index(self, schema: Any, path: str, ctx: _Context) -> None:
        """Every node whose rules can compile, with its ``CELSchemaContext`` (the junctors'
        sub-schemas have none: their rules are checked, never compiled)."""
        if not isinstance(schema, Mapping):
            return
        self._contexts[path] = ctx
        additional = schema.get("additionalProperties")
        if isinstance(additional, Mapping):
            self._index(additional, f"{path}.additionalProperties",
                        ctx.child(additional, ("additional", "")))
        for name, prop in (schema.get("properties") or {}).items():
            self._index(prop, f"{path}.properties[{name}]", ctx.child(prop, ("property", name)))
        items = schema.get("items")
        if isinstance(items, Mapping):
            self._index(items, f"{path}.items", ctx.child(items, ("items", "")))

    def compile(self, node: Mapping[str, Any], path: str, uncorrelatable: str | None
                ) -> list[fe.FieldError]:
        """The CEL errors of the rules at ``node`` (field path ``path``)."""
        ctx = self._contexts.get(path)
        if ctx is None:
            return []
        return self._walk.compile(node, node.get("x-kubernetes-validations") or [], path, ctx,
                                  uncorrelatable)

    def total_cost_errors(self) -> list[fe.FieldError]:
        """The whole schema over ``StaticEstimatedCRDCostLimit``: the most expensive rules,
        then the total (``validateCustomResourceDefinitionValidation``)."""
        total = self._walk.total
        if total.total <= STATIC_ESTIMATED_CRD_COST_LIMIT:
            return []
        errors = [fe.forbidden(expensive_path, "contributed to estimated rule cost total "
                               "exceeding cost limit for entire OpenAPIv3 schema")
                  for expensive_path, _ in total.most_expensive]
        errors.append(fe.forbidden(self._path, cost_message(
            "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema",
            total.total, STATIC_ESTIMATED_CRD_COST_LIMIT)))
        return errors


def check_schema_rules(schema: Mapping[str, Any], path: str) -> RuleErrors:
    """The rule errors of one version's ``openAPIV3Schema``, in Kubernetes' three lists.

    Call it only with a structural schema that passed structural validation (the API
    server builds no CEL context otherwise, and compiles nothing)."""
    rules = SchemaRules(schema, path)
    errors = rules._walk.node(schema, path, rules._contexts[path], None)
    errors.total_cost = rules.total_cost_errors()
    return errors


def schema_rule_errors(schema: Mapping[str, Any], path: str) -> list[fe.FieldError]:
    """Everything the API server refuses about the ``x-kubernetes-validations`` of one
    CRD version's ``openAPIV3Schema`` (at field path ``path``), in its order."""
    return check_schema_rules(schema, path).all()


__all__ = ["STATIC_ESTIMATED_COST_LIMIT", "STATIC_ESTIMATED_CRD_COST_LIMIT", "GoRule",
           "RuleErrors", "SchemaRules", "check_schema_rules", "cost_message",
           "schema_rule_errors"]
