"""The static cost of a checked rule, estimated as Kubernetes 1.32 estimates it.

A port of cel-go v0.22.0 ``checker/cost.go`` (``Cost``: the worst-case cost of every node
kind, the size estimates of literals, concatenations and comprehensions, the builtin
O(n)/O(n·m) functions) with Kubernetes' estimator plugged in as apiextensions-apiserver
v0.32.9 plugs it in (``pkg/apiserver/schema/cel/compilation.go`` ``sizeEstimator``:
sizes of ``self.<path>`` from the schema's ``maxLength``/``maxItems``/``maxProperties``
or the request-size estimates; apiserver ``pkg/cel/library/cost.go``
``CostEstimator.EstimateCallCost``: the Kubernetes library functions), and the option
Kubernetes sets (``PresenceTestHasCost(false)``: ``has()`` costs nothing itself).

It walks the tree the checker produced (same macro expansion and overload ids as
cel-go), so every node kind CEL has is covered; functions neither cel-go nor Kubernetes
estimate cost 1 plus their arguments, as in cel-go. Sizes are ``(min, max)`` pairs of
unsigned 64-bit numbers that saturate instead of overflowing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from headwater_dev.cel.checked import CelType, Node
from headwater_dev.cel.declarations import Decl

U64: Final = 2**64 - 1
STRING_TRAVERSAL: Final = 0.1
REGEX_LENGTH: Final = 0.25
LIST_CREATE: Final = 10
MAP_CREATE: Final = 30
STRUCT_CREATE: Final = 40
MAX_NAME_FORMAT_REGEX_SIZE: Final = 128
ACCUMULATORS: Final = frozenset({"@result", "__result__"})

Pair = tuple[int, int]
ZERO: Final[Pair] = (0, 0)
ONE: Final[Pair] = (1, 1)


def _add(a: Pair, b: Pair) -> Pair:
    return min(a[0] + b[0], U64), min(a[1] + b[1], U64)


def _mul(a: Pair, b: Pair) -> Pair:
    return min(a[0] * b[0], U64), min(a[1] * b[1], U64)


def _factor(a: Pair, f: float) -> Pair:
    return _ceil(a[0] * f), _ceil(a[1] * f)


def _ceil(x: float) -> int:
    return U64 if x >= 2.0**64 else math.ceil(x)


def _union(a: Pair, b: Pair) -> Pair:
    return min(a[0], b[0]), max(a[1], b[1])


@dataclass
class _AstNode:
    """cel-go ``checker.AstNode``: a node's path from a variable, type and size."""

    node: Node | None
    type: CelType
    path: list[str] | None
    computed: Pair | None = None

    def computed_size(self) -> Pair | None:
        if self.computed is not None:
            return self.computed
        node = self.node
        if node is None:
            return None
        if node.kind == "const":
            if isinstance(node.value, str):
                return len(node.value), len(node.value)
            if isinstance(node.value, bytes):
                return len(node.value), len(node.value)
            return ONE
        if node.kind == "list":
            return len(node.args), len(node.args)
        if node.kind == "map":
            return len(node.entries), len(node.entries)
        return None


@dataclass
class Estimator:
    """One estimate: the root type of ``self`` sizes what rules read through it."""

    root: Decl
    paths: dict[int, list[str]] = field(default_factory=dict)
    iter_ranges: dict[str, list[Node]] = field(default_factory=dict)
    sizes: dict[int, Pair] = field(default_factory=dict)

    def estimate(self, node: Node) -> Pair:
        """The (min, max) cost of a tree."""
        return self.cost(node)

    # --- node kinds (checker/cost.go coster.cost) ---
    def cost(self, node: Node | None) -> Pair:
        if node is None:
            return ZERO
        kind = node.kind
        if kind == "const":
            return ZERO
        if kind == "ident":
            return self.cost_ident(node)
        if kind == "select":
            return self.cost_select(node)
        if kind == "call":
            return self.cost_call(node)
        if kind == "list":
            total = ZERO
            for element in node.args:
                total = _add(total, self.cost(element))
            return _add(total, (LIST_CREATE, LIST_CREATE))
        if kind == "map":
            total = ZERO
            for key, value, _ in node.entries:
                total = _add(_add(total, self.cost(key)), self.cost(value))
            return _add(total, (MAP_CREATE, MAP_CREATE))
        if kind == "struct":
            total = ZERO
            for _, value, _ in node.entries:
                total = _add(total, self.cost(value))
            return _add(total, (STRUCT_CREATE, STRUCT_CREATE))
        if kind == "comprehension":
            return self.cost_comprehension(node)
        return ZERO

    def cost_ident(self, node: Node) -> Pair:
        ranges = self.iter_ranges.get(node.name)
        if ranges:
            iter_range = ranges[-1]
            if iter_range.type.kind == "list":
                self.paths[node.id] = [*self.paths.get(iter_range.id, []), "@items"]
            elif iter_range.type.kind == "map":
                self.paths[node.id] = [*self.paths.get(iter_range.id, []), "@keys"]
        else:
            self.paths[node.id] = [node.name]
        return ONE

    def cost_select(self, node: Node) -> Pair:
        assert node.target is not None
        if node.test_only:
            # PresenceTestHasCost(false): only the operand costs.
            return self.cost(node.target)
        total = self.cost(node.target)
        if node.target.type.kind in ("map", "message", "param"):
            total = _add(total, ONE)
        self.paths[node.id] = [*self.paths.get(node.target.id, []), node.name]
        return total

    def cost_call(self, node: Node) -> Pair:
        arg_costs = [self.cost(arg) for arg in node.args]
        args = [self.ast_node(arg) for arg in node.args]
        if not node.overloads:
            return ZERO
        total = ZERO
        target = None
        if node.target is not None:
            total = self.cost(node.target)
            target = self.ast_node(node.target)
        fn_cost: Pair = (U64, 0)
        result_size: Pair | None = None
        for overload in node.overloads:
            cost, size = self.function_cost(node.name, overload, target, args, arg_costs)
            fn_cost = _union(fn_cost, cost)
            if size is not None:
                result_size = size if result_size is None else _union(result_size, size)
            if overload == "index_list" and node.args:
                self.paths[node.id] = [*self.paths.get(node.args[0].id, []), "@items"]
            elif overload == "index_map" and node.args:
                self.paths[node.id] = [*self.paths.get(node.args[0].id, []), "@values"]
        if result_size is not None:
            self.sizes[node.id] = result_size
        return _add(total, fn_cost)

    def cost_comprehension(self, node: Node) -> Pair:
        assert node.iter_range is not None
        total = _add(self.cost(node.iter_range), self.cost(node.accu_init))
        self.iter_ranges.setdefault(node.iter_var, []).append(node.iter_range)
        loop = self.cost(node.loop_condition)
        step = self.cost(node.loop_step)
        self.iter_ranges[node.iter_var].pop()
        total = _add(total, self.cost(node.result))
        count = self.size(self.ast_node(node.iter_range))
        self.sizes[node.id] = count
        return _add(total, _mul(count, _add(step, loop)))

    # --- sizes ---
    def ast_node(self, node: Node) -> _AstNode:
        path = self.paths.get(node.id)
        if path and path[0] in ACCUMULATORS:
            path = None
        return _AstNode(node, node.type, path, self.sizes.get(node.id))

    def size(self, node: _AstNode) -> Pair:
        """``coster.sizeEstimate``: computed, from the schema, 1 for scalars, or unbounded."""
        computed = node.computed_size()
        if computed is not None:
            return computed
        estimated = self.schema_size(node)
        if estimated is not None:
            return estimated
        if node.type.kind in ("bool", "double", "duration", "int", "timestamp", "uint"):
            return ONE
        return 0, U64

    def library_size(self, node: _AstNode) -> Pair:
        """Kubernetes' ``CostEstimator.sizeEstimate`` (no scalar rule)."""
        computed = node.computed_size()
        if computed is not None:
            return computed
        estimated = self.schema_size(node)
        return estimated if estimated is not None else (0, U64)

    def schema_size(self, node: _AstNode) -> Pair | None:
        """compilation.go ``sizeEstimator.EstimateSize``: walk the path from ``self``."""
        if not node.path:
            return None
        current = self.root
        for name in node.path[1:]:
            if name in ("@items", "@values"):
                if current.elem is None:
                    return None
                current = current.elem
            elif name == "@keys":
                if current.kind != "map":
                    return None
                current = Decl("string")  # map keys are strings, of unknown length (0)
            else:
                found = current.fields.get(name)
                if found is None:
                    return None
                current = found
        return 0, current.max_elements

    def list_element(self, node: _AstNode) -> _AstNode | None:
        if node.type.kind != "list" or not node.type.params:
            return None
        path = [*node.path, "@items"] if node.path is not None else None
        return _AstNode(None, node.type.params[0], path)

    # --- functions ---
    def function_cost(self, function: str, overload: str, target: _AstNode | None,
                      args: Sequence[_AstNode], arg_costs: Sequence[Pair]
                      ) -> tuple[Pair, Pair | None]:
        arg_sum = ZERO
        for cost in arg_costs:
            arg_sum = _add(arg_sum, cost)
        kubernetes = self.kubernetes_call(function, overload, target, args)
        if kubernetes is not None:
            return _add(kubernetes[0], arg_sum), kubernetes[1]
        builtin = self.builtin_call(overload, target, args, arg_costs)
        if builtin is not None:
            return builtin[0], builtin[1]
        return _add(ONE, arg_sum), None

    def builtin_call(self, overload: str, target: _AstNode | None, args: Sequence[_AstNode],
                     arg_costs: Sequence[Pair]) -> tuple[Pair, Pair | None] | None:
        """The O(n) and O(n·m) builtins of cel-go ``coster.functionCost``."""
        arg_sum = ZERO
        for cost in arg_costs:
            arg_sum = _add(arg_sum, cost)
        if overload == "string_format" and target is not None:
            return _add(_factor(self.size(target), STRING_TRAVERSAL), arg_sum), None
        if overload == "string_to_bytes" and len(args) == 1:
            sz = self.size(args[0])
            return (_add(_factor(sz, STRING_TRAVERSAL), arg_sum),
                    (sz[0], min(sz[1] * 4, U64)))
        if overload == "bytes_to_string" and len(args) == 1:
            sz = self.size(args[0])
            return _add(_factor(sz, STRING_TRAVERSAL), arg_sum), (sz[0] // 4, sz[1])
        if overload == "strings_quote" and len(args) == 1:
            sz = self.size(args[0])
            return (_add(_factor(sz, STRING_TRAVERSAL), arg_sum),
                    (min(sz[0] + 2, U64), min(sz[1] * 2 + 2, U64)))
        if overload in ("starts_with_string", "ends_with_string") and len(args) == 1:
            return _add(_factor(self.size(args[0]), STRING_TRAVERSAL), arg_sum), None
        if overload == "in_list" and len(args) == 2:
            return _add(_factor(self.size(args[1]), 1), arg_sum), None
        if overload == "matches_string" and target is not None and len(args) == 1:
            str_cost = _factor(_add(self.size(target), ONE), STRING_TRAVERSAL)
            regex_cost = _factor(self.size(args[0]), REGEX_LENGTH)
            return _add(_mul(str_cost, regex_cost), arg_sum), None
        if overload == "contains_string" and target is not None and len(args) == 1:
            str_cost = _factor(self.size(target), STRING_TRAVERSAL)
            sub_cost = _factor(self.size(args[0]), STRING_TRAVERSAL)
            return _add(_mul(str_cost, sub_cost), arg_sum), None
        if overload in ("logical_or", "logical_and"):
            lhs, rhs = arg_costs[0], arg_costs[1]
            return (lhs[0], _add(lhs, rhs)[1]), None
        if overload == "conditional":
            size = _union(self.size(args[1]), self.size(args[2]))
            return _add(arg_costs[0], _union(arg_costs[1], arg_costs[2])), size
        if overload in ("add_string", "add_bytes", "add_list") and len(args) == 2:
            result = _add(self.size(args[0]), self.size(args[1]))
            if overload == "add_list":
                return _add(ONE, arg_sum), result
            return _add(_factor(result, STRING_TRAVERSAL), arg_sum), result
        if overload in _SIZED_COMPARISONS:
            lhs, rhs = self.size(args[0]), self.size(args[1])
            smallest = min(lhs[1], rhs[1])
            return _add(_factor((1 if smallest > 0 else 0, smallest), STRING_TRAVERSAL),
                        arg_sum), None
        return None

    def kubernetes_call(self, function: str, overload: str, target: _AstNode | None,
                        args: Sequence[_AstNode]) -> tuple[Pair, Pair | None] | None:
        """apiserver ``library.CostEstimator.EstimateCallCost`` (the call's own cost)."""
        if function in ("isSorted", "sum", "max", "min", "indexOf", "lastIndexOf"):
            if target is None:
                return None
            element = self.list_element(target)
            if element is not None:
                el_cost = ONE
                if element.type.kind in ("string", "bytes"):
                    el_cost = _add(el_cost, _factor(self.library_size(element),
                                                    STRING_TRAVERSAL))
                return _mul(self.library_size(target), el_cost), None
            return _factor(self.library_size(target), STRING_TRAVERSAL), None
        if function == "url" and len(args) == 1:
            sz = self.library_size(args[0])
            return _factor(sz, STRING_TRAVERSAL), sz
        if function in ("lowerAscii", "upperAscii", "substring", "trim") and target is not None:
            sz = self.library_size(target)
            return _factor(sz, STRING_TRAVERSAL), sz
        if function == "replace" and target is not None and len(args) >= 2:
            return self.replace_cost(target, args)
        if function == "split" and target is not None:
            sz = self.library_size(target)
            most = sz[1]
            if len(args) > 1 and args[1].node is not None and args[1].node.kind == "const" \
                    and isinstance(args[1].node.value, int):
                most = args[1].node.value
            return _factor(sz, 2 * STRING_TRAVERSAL), (0, most)
        if function == "join" and target is not None:
            return self.join_cost(target, args)
        if function in ("find", "findAll") and target is not None and args:
            sz = self.library_size(target)
            str_cost = _factor(_add(sz, ONE), STRING_TRAVERSAL)
            regex_cost = _factor(self.library_size(args[0]), REGEX_LENGTH)
            return _mul(str_cost, regex_cost), (0, sz[1])
        # cel-go passes the target as a pointer to a possibly nil node, so library
        # cost.go's `target != nil` holds for global functions too.
        if function in ("cidr", "isIP", "isCIDR", "quantity", "isQuantity") and args:
            return _factor(self.library_size(args[0]), STRING_TRAVERSAL), None
        if function == "ip":
            if args and overload != "cidr_ip":
                return _factor(self.library_size(args[0]), STRING_TRAVERSAL), None
            return ONE, None
        if function == "ip.isCanonical" and args:
            return _factor(self.library_size(args[0]), 2 * STRING_TRAVERSAL), None
        if function in ("containsIP", "containsCIDR") and target is not None and args:
            compare = _factor((8, 32), STRING_TRAVERSAL)
            if function == "containsCIDR":
                compare = _add(_add(compare, _factor((4, 16), STRING_TRAVERSAL)), ONE)
            if overload in ("cidr_contains_ip_string", "cidr_contains_cidr_string"):
                compare = _add(compare, _factor(self.library_size(args[0]), STRING_TRAVERSAL))
            return compare, None
        if function in NOMINAL_COST_FUNCTIONS:
            return ONE, None
        if function == "validate" and target is not None and args:
            return _factor(_factor(self.library_size(args[0]), STRING_TRAVERSAL),
                           MAX_NAME_FORMAT_REGEX_SIZE * REGEX_LENGTH), None
        if function == "_==_" and len(args) == 2 and args[0].type == args[1].type:
            kind = args[0].type
            if kind.name in ("net.IP", "net.IPNet", "kubernetes.Quantity"):
                return ONE, None
            if kind.name == "kubernetes.NamedFormat":
                return _factor((1, 64), STRING_TRAVERSAL), None
            if kind.name == "kubernetes.URL":
                # cost.go compares rhs.ComputedSize() with itself; URLs have none.
                return _factor((1, 1), STRING_TRAVERSAL), None
        return None

    def replace_cost(self, target: _AstNode, args: Sequence[_AstNode]
                     ) -> tuple[Pair, Pair | None]:
        sz = self.library_size(target)
        old = self.library_size(args[0])
        new = self.library_size(args[1])
        if old[0] == 0:
            count_max = sz[1] + 1 if sz[1] < U64 else sz[1]
            retained_max = sz[1]
        elif new[1] <= old[0]:
            count_max, retained_max = 0, sz[1]
        else:
            count_max, retained_max = math.ceil(sz[1] / old[0]), 0
        if old[1] == 0:
            count_min = sz[0] + 1 if sz[0] < U64 else sz[0]
            retained_min = sz[0]
        elif old[1] <= new[0]:
            count_min, retained_min = 0, sz[0]
        else:
            count_min, retained_min = math.ceil(sz[0] / old[1]), 0
        size = _add(_mul((count_min, count_max), new), (retained_min, retained_max))
        return _factor(sz, 2 * STRING_TRAVERSAL), size

    def join_cost(self, target: _AstNode, args: Sequence[_AstNode]) -> tuple[Pair, Pair | None]:
        size = ZERO
        list_size = self.library_size(target)
        element = self.list_element(target)
        if element is not None:
            size = _mul(list_size, self.library_size(element))
        if args:
            separators = (max(list_size[0] - 1, 0), max(list_size[1] - 1, 0))
            size = _add(size, _mul(self.library_size(args[0]), separators))
        return _factor(size, STRING_TRAVERSAL), size


_SIZED_COMPARISONS: Final = frozenset({
    "less_string", "greater_string", "less_equals_string", "greater_equals_string",
    "less_bytes", "greater_bytes", "less_equals_bytes", "greater_equals_bytes",
    "equals", "not_equals"})
NOMINAL_COST_FUNCTIONS: Final = frozenset({
    "masked", "prefixLength", "family", "isUnspecified", "isLoopback",
    "isLinkLocalMulticast", "isLinkLocalUnicast", "isGlobalUnicast", "format.named",
    "sign", "asInteger", "isInteger", "asApproximateFloat", "isGreaterThan", "isLessThan",
    "compareTo", "add", "sub", "getScheme", "getHostname", "getHost", "getPort",
    "getEscapedPath", "getQuery"})
"""Library functions Kubernetes charges a nominal cost of 1, estimated and at run time
(``pkg/cel/library/cost.go``)."""


def estimate(node: Node, root: Decl) -> int:
    """The worst-case cost (``CostEstimate.Max``) of a checked tree."""
    return Estimator(root).estimate(node)[1]


__all__ = ["U64", "Estimator", "estimate"]
