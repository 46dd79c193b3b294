"""The static cost estimator (headwater_dev.cel.cost) against cel-go v0.22.0 checker/cost.go
and Kubernetes' size estimates (apiserver v0.32.9 pkg/cel/common/schemas.go).

Expected numbers are worked out from those rules by hand, in each test's comment.
"""

from __future__ import annotations

from typing import Any

from headwater_dev.cel import compiler, cost, declarations


def estimate(rule: str, schema: dict[str, Any]) -> int:
    decl = declarations.schema_decl(schema, False)
    assert decl is not None
    tree = compiler.Environment(decl).compile(rule)
    assert not isinstance(tree, compiler.CompileError), tree
    return cost.estimate(tree.root, decl)


OBJ = {"type": "object", "properties": {
    "n": {"type": "integer"},
    "s": {"type": "string", "maxLength": 10},
    "u": {"type": "string"},
    "l": {"type": "array", "maxItems": 5, "items": {"type": "string", "maxLength": 2}},
}}


def test_select_and_compare_scalars() -> None:
    # ident 1 + select on an object 1; `==` on ints: sizes (0, 0) give 0; const 0.
    assert estimate("self.n == 1", OBJ) == 2


def test_string_equality_scales_with_max_length() -> None:
    # 2 for self.s; equals: min(40, 1) * 0.1 -> ceil(0.1) = 1 -> 3. maxLength counts runes x4.
    assert estimate("self.s == 'a'", OBJ) == 3


def test_unbounded_string_uses_request_size() -> None:
    # matches: (3145726 + 1) * 0.1 -> 314573; regex '[a-z]+' 6 * 0.25 -> 2; 314573 * 2 + 2.
    assert estimate("self.u.matches('[a-z]+')", OBJ) == 629148


def test_has_costs_only_its_operand() -> None:
    # PresenceTestHasCost(false): has(self.n) is the cost of `self` alone.
    assert estimate("has(self.n)", OBJ) == 1


def test_comprehension_multiplies_by_the_list_bound() -> None:
    # all(): range 2, init 0, result 1; per item: condition 2 (call + accu) and step
    # `@result && x == 'a'`: max 1 (accu) + equals (ident 1 + min(8,1)*0.1 -> 1) = 3; 5 * 5.
    assert estimate("self.l.all(x, x == 'a')", OBJ) == 28


def test_list_literal_and_size() -> None:
    # range: literal 10 + three has() (1 each) = 13; accu init `[]` 10; result 1; condition
    # `true` 0; step `x ? @result + [x] : @result` = 1 + max(1 + (1 + 10 + 1), 1) = 14,
    # three times (the literal's size) = 42: 66. size() 1 -> 67. `== 1` on ints: (1, 1) * 0.1
    # rounds up to 1 -> 68.
    value = estimate("[has(self.n), has(self.s), has(self.u)].filter(x, x).size() == 1", OBJ)
    assert value == 68


def test_u64_saturates() -> None:
    unbounded = {"type": "object", "properties": {
        "v": {"type": "array", "items": {"type": "string"}}}}
    # Three nested loops of ~1e6 items over strings of ~3e6 bytes exceed 2**64: saturated.
    rule = "self.v.all(a, self.v.all(b, self.v.all(c, a + b == c)))"
    assert estimate(rule, unbounded) == cost.U64
