"""The checked CEL syntax tree, read from what the CEL checker (``cel-expr-python``) returns.

``cel_expr_python`` compiles an expression and serialises the result as a
``google.protobuf.Any`` holding a ``cel.expr.CheckedExpr`` (cel-spec ``proto/cel/expr/
checked.proto`` and ``syntax.proto``): the macro-expanded tree with an id per node, the
type the checker deduced for every node, and the overloads every call resolved to. The
cost estimator and the evaluator walk that tree, so they see exactly what cel-go's
``checker.Cost`` and interpreter see (cel-go's AST is the same proto).

No Python package ships those two protos, so the few messages needed are declared here
as descriptors (same field numbers as cel-spec) and decoded with the protobuf runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED

# (message, [(field, number, type, label, type_name, oneof)])
_EXPR_MESSAGES: Final[dict[str, list[tuple[str, int, int, int, str, str]]]] = {
    "Constant": [
        ("null_value", 1, _F.TYPE_INT32, _OPT, "", "kind"),
        ("bool_value", 2, _F.TYPE_BOOL, _OPT, "", "kind"),
        ("int64_value", 3, _F.TYPE_INT64, _OPT, "", "kind"),
        ("uint64_value", 4, _F.TYPE_UINT64, _OPT, "", "kind"),
        ("double_value", 5, _F.TYPE_DOUBLE, _OPT, "", "kind"),
        ("string_value", 6, _F.TYPE_STRING, _OPT, "", "kind"),
        ("bytes_value", 7, _F.TYPE_BYTES, _OPT, "", "kind"),
    ],
    "Ident": [("name", 1, _F.TYPE_STRING, _OPT, "", "")],
    "Select": [
        ("operand", 1, _F.TYPE_MESSAGE, _OPT, ".x.Expr", ""),
        ("field", 2, _F.TYPE_STRING, _OPT, "", ""),
        ("test_only", 3, _F.TYPE_BOOL, _OPT, "", ""),
    ],
    "Call": [
        ("target", 1, _F.TYPE_MESSAGE, _OPT, ".x.Expr", ""),
        ("function", 2, _F.TYPE_STRING, _OPT, "", ""),
        ("args", 3, _F.TYPE_MESSAGE, _REP, ".x.Expr", ""),
    ],
    "CreateList": [
        ("elements", 1, _F.TYPE_MESSAGE, _REP, ".x.Expr", ""),
        ("optional_indices", 2, _F.TYPE_INT32, _REP, "", ""),
    ],
    "Entry": [
        ("id", 1, _F.TYPE_INT64, _OPT, "", ""),
        ("field_key", 2, _F.TYPE_STRING, _OPT, "", "key"),
        ("map_key", 3, _F.TYPE_MESSAGE, _OPT, ".x.Expr", "key"),
        ("value", 4, _F.TYPE_MESSAGE, _OPT, ".x.Expr", ""),
        ("optional_entry", 5, _F.TYPE_BOOL, _OPT, "", ""),
    ],
    "CreateStruct": [
        ("message_name", 1, _F.TYPE_STRING, _OPT, "", ""),
        ("entries", 2, _F.TYPE_MESSAGE, _REP, ".x.Entry", ""),
    ],
    "Comprehension": [
        ("iter_var", 1, _F.TYPE_STRING, _OPT, "", ""),
        ("iter_range", 2, _F.TYPE_MESSAGE, _OPT, ".x.Expr", ""),
        ("accu_var", 3, _F.TYPE_STRING, _OPT, "", ""),
        ("accu_init", 4, _F.TYPE_MESSAGE, _OPT, ".x.Expr", ""),
        ("loop_condition", 5, _F.TYPE_MESSAGE, _OPT, ".x.Expr", ""),
        ("loop_step", 6, _F.TYPE_MESSAGE, _OPT, ".x.Expr", ""),
        ("result", 7, _F.TYPE_MESSAGE, _OPT, ".x.Expr", ""),
        ("iter_var2", 8, _F.TYPE_STRING, _OPT, "", ""),
    ],
    "Expr": [
        ("id", 2, _F.TYPE_INT64, _OPT, "", ""),
        ("const_expr", 3, _F.TYPE_MESSAGE, _OPT, ".x.Constant", "kind"),
        ("ident_expr", 4, _F.TYPE_MESSAGE, _OPT, ".x.Ident", "kind"),
        ("select_expr", 5, _F.TYPE_MESSAGE, _OPT, ".x.Select", "kind"),
        ("call_expr", 6, _F.TYPE_MESSAGE, _OPT, ".x.Call", "kind"),
        ("list_expr", 7, _F.TYPE_MESSAGE, _OPT, ".x.CreateList", "kind"),
        ("struct_expr", 8, _F.TYPE_MESSAGE, _OPT, ".x.CreateStruct", "kind"),
        ("comprehension_expr", 9, _F.TYPE_MESSAGE, _OPT, ".x.Comprehension", "kind"),
    ],
    "PositionsEntry": [
        ("key", 1, _F.TYPE_INT64, _OPT, "", ""),
        ("value", 2, _F.TYPE_INT32, _OPT, "", ""),
    ],
    "SourceInfo": [
        ("line_offsets", 3, _F.TYPE_INT32, _REP, "", ""),
        ("positions", 4, _F.TYPE_MESSAGE, _REP, ".x.PositionsEntry", ""),
    ],
    "ListType": [("elem_type", 1, _F.TYPE_MESSAGE, _OPT, ".x.Type", "")],
    "MapType": [
        ("key_type", 1, _F.TYPE_MESSAGE, _OPT, ".x.Type", ""),
        ("value_type", 2, _F.TYPE_MESSAGE, _OPT, ".x.Type", ""),
    ],
    "AbstractType": [
        ("name", 1, _F.TYPE_STRING, _OPT, "", ""),
        ("parameter_types", 2, _F.TYPE_MESSAGE, _REP, ".x.Type", ""),
    ],
    "Empty": [],
    "Type": [
        ("dyn", 1, _F.TYPE_MESSAGE, _OPT, ".x.Empty", "kind"),
        ("null", 2, _F.TYPE_INT32, _OPT, "", "kind"),
        ("primitive", 3, _F.TYPE_INT32, _OPT, "", "kind"),
        ("wrapper", 4, _F.TYPE_INT32, _OPT, "", "kind"),
        ("well_known", 5, _F.TYPE_INT32, _OPT, "", "kind"),
        ("list_type", 6, _F.TYPE_MESSAGE, _OPT, ".x.ListType", "kind"),
        ("map_type", 7, _F.TYPE_MESSAGE, _OPT, ".x.MapType", "kind"),
        ("message_type", 9, _F.TYPE_STRING, _OPT, "", "kind"),
        ("type_param", 10, _F.TYPE_STRING, _OPT, "", "kind"),
        ("type", 11, _F.TYPE_MESSAGE, _OPT, ".x.Type", "kind"),
        ("error", 12, _F.TYPE_MESSAGE, _OPT, ".x.Empty", "kind"),
        ("abstract_type", 14, _F.TYPE_MESSAGE, _OPT, ".x.AbstractType", "kind"),
    ],
    "Reference": [
        ("name", 1, _F.TYPE_STRING, _OPT, "", ""),
        ("overload_id", 3, _F.TYPE_STRING, _REP, "", ""),
    ],
    "RefEntry": [
        ("key", 1, _F.TYPE_INT64, _OPT, "", ""),
        ("value", 2, _F.TYPE_MESSAGE, _OPT, ".x.Reference", ""),
    ],
    "TypeEntry": [
        ("key", 1, _F.TYPE_INT64, _OPT, "", ""),
        ("value", 2, _F.TYPE_MESSAGE, _OPT, ".x.Type", ""),
    ],
    "CheckedExpr": [
        ("reference_map", 2, _F.TYPE_MESSAGE, _REP, ".x.RefEntry", ""),
        ("type_map", 3, _F.TYPE_MESSAGE, _REP, ".x.TypeEntry", ""),
        ("expr", 4, _F.TYPE_MESSAGE, _OPT, ".x.Expr", ""),
        ("source_info", 5, _F.TYPE_MESSAGE, _OPT, ".x.SourceInfo", ""),
    ],
}


@cache
def _checked_expr_class() -> Any:
    """The ``CheckedExpr`` message class, built once from the declarations above.

    Map fields are declared as repeated entries (their wire form), which is all decoding
    needs; nested messages are flattened into package ``x`` for the same reason.
    """
    proto = descriptor_pb2.FileDescriptorProto(name="headwater_cel_checked.proto",
                                               package="x", syntax="proto3")
    for name, fields in _EXPR_MESSAGES.items():
        message = proto.message_type.add(name=name)
        oneofs: dict[str, int] = {}
        for fname, number, ftype, label, type_name, oneof in fields:
            entry = message.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                entry.type_name = type_name
            if oneof:
                if oneof not in oneofs:
                    oneofs[oneof] = len(message.oneof_decl)
                    message.oneof_decl.add(name=oneof)
                entry.oneof_index = oneofs[oneof]
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("x.CheckedExpr"))


# --- the tree the estimator and evaluator walk ----------------------------------------
@dataclass(frozen=True)
class CelType:
    """A checked type: ``kind`` is one of bool, int, uint, double, string, bytes, null,
    dyn, any, timestamp, duration, list, map, message, type, param, abstract, error;
    ``params`` the list element, the map key and value, the abstract type's parameters,
    the ``type`` type's operand; ``name`` the message or abstract type's name."""

    kind: str
    name: str = ""
    params: tuple[CelType, ...] = ()


DYN: Final = CelType("dyn")


@dataclass
class Node:
    """One expression node (``cel.expr.Expr``) with what the checker said about it."""

    id: int
    kind: str  # const, ident, select, call, list, map, struct, comprehension
    type: CelType = DYN
    value: Any = None  # const: the Python value (int, float, str, bytes, bool, None, Uint)
    name: str = ""  # ident name, select field, call function
    test_only: bool = False
    target: Node | None = None  # select operand, call target
    args: list[Node] = field(default_factory=list)  # call args, list elements
    optional_indices: tuple[int, ...] = ()
    entries: list[tuple[Node, Node, bool]] = field(default_factory=list)  # map
    overloads: tuple[str, ...] = ()
    reference: str = ""  # the resolved name of an identifier
    # comprehension
    iter_var: str = ""
    accu_var: str = ""
    iter_range: Node | None = None
    accu_init: Node | None = None
    loop_condition: Node | None = None
    loop_step: Node | None = None
    result: Node | None = None


class Uint(int):
    """A CEL ``uint`` value (kept apart from ``int``, which CEL never mixes silently)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"{int(self)}u"


@dataclass
class Checked:
    """A checked expression: its root node, node positions (offsets) and source."""

    root: Node
    positions: Mapping[int, int]
    source: str


_PRIMITIVES: Final = {1: "bool", 2: "int", 3: "uint", 4: "double", 5: "string", 6: "bytes"}
_WELL_KNOWN: Final = {1: "any", 2: "timestamp", 3: "duration"}


def decode(serialized: bytes, source: str) -> Checked:
    """The checked tree of what ``cel.Expression.serialize()`` returned."""
    wrapper = any_pb2.Any.FromString(serialized)
    checked = _checked_expr_class().FromString(wrapper.value)
    types = {entry.key: _type(entry.value) for entry in checked.type_map}
    refs = {entry.key: entry.value for entry in checked.reference_map}
    positions = {entry.key: entry.value for entry in checked.source_info.positions}
    return Checked(_node(checked.expr, types, refs), positions, source)


def _type(proto: Any) -> CelType:
    kind = proto.WhichOneof("kind")
    if kind == "primitive":
        return CelType(_PRIMITIVES.get(proto.primitive, "dyn"))
    if kind == "wrapper":
        # A wrapper type behaves as its primitive, or null.
        return CelType(_PRIMITIVES.get(proto.wrapper, "dyn"))
    if kind == "well_known":
        return CelType(_WELL_KNOWN.get(proto.well_known, "dyn"))
    if kind == "list_type":
        return CelType("list", params=(_type(proto.list_type.elem_type),))
    if kind == "map_type":
        return CelType("map", params=(_type(proto.map_type.key_type),
                                      _type(proto.map_type.value_type)))
    if kind == "message_type":
        return _message_type(proto.message_type)
    if kind == "type_param":
        return CelType("param", name=proto.type_param)
    if kind == "type":
        return CelType("type", params=(_type(proto.type),) if proto.type.WhichOneof(
            "kind") else ())
    if kind == "abstract_type":
        return CelType("abstract", name=proto.abstract_type.name, params=tuple(
            _type(p) for p in proto.abstract_type.parameter_types))
    if kind == "null":
        return CelType("null")
    if kind == "error":
        return CelType("error")
    return DYN


def _message_type(name: str) -> CelType:
    # The checker reports the well-known JSON types by message name; CEL treats them as
    # dynamic values (google.protobuf.Value, the int-or-string and unknown-field nodes).
    if name in ("google.protobuf.Value", "google.protobuf.Any"):
        return DYN
    if name == "google.protobuf.Timestamp":
        return CelType("timestamp")
    if name == "google.protobuf.Duration":
        return CelType("duration")
    return CelType("message", name=name)


def _node(proto: Any, types: Mapping[int, CelType], refs: Mapping[int, Any]) -> Node:
    node_id = proto.id
    kind = proto.WhichOneof("kind")
    node = Node(node_id, "const", types.get(node_id, DYN))
    ref = refs.get(node_id)
    if ref is not None:
        node.overloads = tuple(ref.overload_id)
        node.reference = ref.name
    if kind == "const_expr":
        node.value = _constant(proto.const_expr)
    elif kind == "ident_expr":
        node.kind, node.name = "ident", proto.ident_expr.name
    elif kind == "select_expr":
        sel = proto.select_expr
        node.kind, node.name, node.test_only = "select", sel.field, sel.test_only
        node.target = _node(sel.operand, types, refs)
    elif kind == "call_expr":
        call = proto.call_expr
        node.kind, node.name = "call", call.function
        if call.HasField("target"):
            node.target = _node(call.target, types, refs)
        node.args = [_node(arg, types, refs) for arg in call.args]
    elif kind == "list_expr":
        node.kind = "list"
        node.args = [_node(e, types, refs) for e in proto.list_expr.elements]
        node.optional_indices = tuple(proto.list_expr.optional_indices)
    elif kind == "struct_expr":
        _struct(node, proto.struct_expr, types, refs)
    elif kind == "comprehension_expr":
        comp = proto.comprehension_expr
        node.kind, node.iter_var, node.accu_var = "comprehension", comp.iter_var, comp.accu_var
        node.iter_range = _node(comp.iter_range, types, refs)
        node.accu_init = _node(comp.accu_init, types, refs)
        node.loop_condition = _node(comp.loop_condition, types, refs)
        node.loop_step = _node(comp.loop_step, types, refs)
        node.result = _node(comp.result, types, refs)
    return node


def _struct(node: Node, struct: Any, types: Mapping[int, CelType], refs: Mapping[int, Any]) -> None:
    # Object construction (`Type{field: v}`) is not declared for CRD rules; only map
    # literals reach here.
    node.kind = "map" if not struct.message_name else "struct"
    node.name = struct.message_name
    for entry in struct.entries:
        key = (_node(entry.map_key, types, refs) if entry.WhichOneof("key") == "map_key"
               else Node(entry.id, "const", CelType("string"), value=entry.field_key))
        node.entries.append((key, _node(entry.value, types, refs), entry.optional_entry))


def _constant(proto: Any) -> Any:
    kind = proto.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    if kind == "uint64_value":
        return Uint(proto.uint64_value)
    return getattr(proto, kind)


__all__ = ["DYN", "CelType", "Checked", "Node", "Uint", "decode"]
