"""Evaluating a checked rule on a custom resource, with cel-go's runtime cost.

Walks the checked tree (:mod:`.checked`) over the values of :mod:`.values`, with the
semantics of cel-go v0.22.0's interpreter that CRD rules meet: errors are values that
``&&``/``||`` absorb when the other side decides (``false && <error>`` is false),
``has()`` is key presence, comprehensions stop when their loop condition is false,
integers are 64-bit and overflow is an error.

The runtime cost follows ``interpreter/runtimecost.go`` (``CostTracker``): every
identifier, field selection and index costs 1, list and map literals 10 and 30, every
call its ``CallCost`` (apiserver ``pkg/cel/library/cost.go``, then cel-go's O(n) string
functions, then 1); constants, ``&&``, ``||``, ``?:`` and comprehensions themselves cost
nothing. Presence tests (``has()``) cost nothing (``PresenceTestHasCost(false)``). Past
``limit`` evaluation stops with ``operation cancelled: actual cost limit exceeded``.
cel-go's planner folds constant sub-expressions (``OptOptimize``); that is not done
here, so a rule made of constants may cost a little more than on a real server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from headwater_dev.cel import functions
from headwater_dev.cel.checked import Node
from headwater_dev.cel.values import (
    CelEvalError,
    ListValue,
    OptionalValue,
    TypeValue,
)

COST_LIMIT_MESSAGE: Final = "operation cancelled: actual cost limit exceeded"
_TYPE_IDENTS: Final = frozenset({"int", "uint", "double", "bool", "string", "bytes", "list",
                                 "map", "null_type", "type", "dyn"})


class CostLimitExceeded(CelEvalError):
    """The runtime cost went over the limit."""


class Evaluator:
    """Evaluates one tree against ``variables`` (``self``, ``oldSelf``)."""

    def __init__(self, variables: Mapping[str, Any], limit: int | None = None) -> None:
        self.scopes: list[dict[str, Any]] = [dict(variables)]
        self.limit = limit
        self.cost = 0

    def run(self, node: Node) -> Any:
        """The value of ``node``; raises :class:`CelEvalError` for a runtime error."""
        value = self.eval(node)
        if isinstance(value, CelEvalError):
            raise value
        return value

    def charge(self, amount: int) -> None:
        self.cost += amount
        if self.limit is not None and self.cost > self.limit:
            raise CostLimitExceeded(COST_LIMIT_MESSAGE)

    def eval(self, node: Node) -> Any:
        """A value, or a :class:`CelEvalError` *value* (errors flow like values)."""
        try:
            return self._eval(node)
        except CostLimitExceeded:
            raise
        except CelEvalError as error:
            return error

    def _eval(self, node: Node) -> Any:
        kind = node.kind
        if kind == "const":
            return node.value
        if kind == "ident":
            return self.ident(node)
        if kind == "select":
            return self.select(node)
        if kind == "call":
            return self.call(node)
        if kind == "list":
            items = [self.strict(element) for element in node.args]
            self.charge(functions.LIST_CREATE)
            return ListValue(items)
        if kind == "map":
            result = {}
            for key, value, _ in node.entries:
                result[self.strict(key)] = self.strict(value)
            self.charge(functions.MAP_CREATE)
            return result
        if kind == "comprehension":
            return self.comprehension(node)
        raise CelEvalError(f"unsupported expression kind {kind}")

    def strict(self, node: Node) -> Any:
        value = self.eval(node)
        if isinstance(value, CelEvalError):
            raise value
        return value

    def ident(self, node: Node) -> Any:
        self.charge(1)
        for scope in reversed(self.scopes):
            if node.name in scope:
                return scope[node.name]
        if node.name in _TYPE_IDENTS:
            return TypeValue(node.name)
        raise CelEvalError(f"no such attribute: {node.name}")

    def select(self, node: Node) -> Any:
        assert node.target is not None
        if node.test_only:
            saved = self.cost
            operand = self.strict(node.target)
            self.cost = saved
            return functions.has_field(operand, node.name)
        operand = self.strict(node.target)
        self.charge(1)
        return functions.select(operand, node.name)

    def call(self, node: Node) -> Any:
        name = node.name
        special = _SPECIAL.get(name)
        if special is not None:
            return special(self, node)
        target = self.strict(node.target) if node.target is not None else None
        args = [self.strict(arg) for arg in node.args]
        result = functions.call(name, node.overloads, target, args)
        everything = ([target] if node.target is not None else []) + args
        self.charge(functions.call_cost(name, node.overloads, everything, result))
        return result

    # --- the non-strict operators ---
    def logical(self, node: Node) -> Any:
        decisive = node.name == "_||_"
        left = self.eval(node.args[0])
        if left is decisive:
            return decisive
        right = self.eval(node.args[1])
        if right is decisive:
            return decisive
        for side in (left, right):
            if isinstance(side, CelEvalError):
                return side
            if not isinstance(side, bool):
                return CelEvalError("no such overload")
        return not decisive

    def conditional(self, node: Node) -> Any:
        condition = self.strict(node.args[0])
        if not isinstance(condition, bool):
            raise CelEvalError("no such overload")
        return self.eval(node.args[1] if condition else node.args[2])

    def not_strictly_false(self, node: Node) -> Any:
        value = self.eval(node.args[0])
        self.charge(1)
        return value is not False

    def optional_select(self, node: Node) -> Any:
        operand = self.strict(node.args[0])
        field = node.args[1].value
        self.charge(1)
        if isinstance(operand, OptionalValue):
            if not operand.present:
                return operand
            operand = operand.value
        if isinstance(operand, dict):
            if field in operand:
                return OptionalValue(operand[field], True)
            return OptionalValue()
        raise CelEvalError("no such overload")

    def comprehension(self, node: Node) -> Any:
        assert node.iter_range is not None
        assert node.accu_init is not None
        assert node.loop_condition is not None
        assert node.loop_step is not None
        assert node.result is not None
        iter_range = self.strict(node.iter_range)
        if not isinstance(iter_range, (list, dict)):
            raise CelEvalError("no such overload")
        scope = {node.accu_var: self.eval(node.accu_init)}
        self.scopes.append(scope)
        try:
            for item in list(iter_range):
                scope[node.iter_var] = item
                condition = self.eval(node.loop_condition)
                if condition is False:
                    break
                scope[node.accu_var] = self.eval(node.loop_step)
            scope.pop(node.iter_var, None)
            return self.eval(node.result)
        finally:
            self.scopes.pop()


_SPECIAL: Final[dict[str, Callable[[Evaluator, Node], Any]]] = {
    "_&&_": Evaluator.logical,
    "_||_": Evaluator.logical,
    "_?_:_": Evaluator.conditional,
    "@not_strictly_false": Evaluator.not_strictly_false,
    "_?._": Evaluator.optional_select,
}


def evaluate(node: Node, variables: Mapping[str, Any], limit: int | None) -> tuple[Any, int]:
    """The value of a rule and its runtime cost. Raises :class:`CelEvalError` (its
    ``cost`` attribute set) on a runtime error."""
    evaluator = Evaluator(variables, limit)
    try:
        value = evaluator.run(node)
    except CelEvalError as error:
        error.cost = evaluator.cost  # type: ignore[attr-defined]
        raise
    return value, evaluator.cost


__all__ = ["COST_LIMIT_MESSAGE", "CostLimitExceeded", "Evaluator", "evaluate"]
