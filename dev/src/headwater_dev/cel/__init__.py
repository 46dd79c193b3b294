"""CEL validation rules of custom resources, as Kubernetes 1.32 checks and runs them.

* :func:`schema_rule_errors`: what the API server refuses about the
  ``x-kubernetes-validations`` of a CRD version's schema when the CRD is written
  (rules that do not compile, misplaced transition rules, messageExpression, fieldPath,
  reason, optionalOldSelf, estimated cost) — :mod:`.crd`;
* :func:`rule_violations`: the rules of a schema evaluated on a custom resource being
  created or updated — :mod:`.rules`.

Both report :class:`~headwater_dev.fielderrors.FieldError` worded as
Kubernetes words them. The checker is ``cel-expr-python`` (:mod:`.compiler`), the cost
estimator (:mod:`.cost`) and evaluator (:mod:`.interpreter`) walk its checked tree.
"""

from headwater_dev.cel.crd import (
    RuleErrors,
    SchemaRules,
    check_schema_rules,
    schema_rule_errors,
)
from headwater_dev.cel.rules import rule_violations

__all__ = ["RuleErrors", "SchemaRules", "check_schema_rules", "rule_violations",
           "schema_rule_errors"]
