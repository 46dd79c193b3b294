"""How a structural schema becomes CEL types, as Kubernetes 1.32 declares them.

Translates the behaviour of apiserver v0.32.9 ``pkg/cel/common/schemas.go``
(``SchemaDeclType``, ``WithTypeAndObjectMeta``, the size estimates), ``pkg/cel/types.go``
(``DeclType``: ``MaxElements``, ``MinSerializedSize``, ``MaybeAssignTypeName``) and
``pkg/cel/escaping.go`` (``Escape``), into:

* :class:`Decl`, the declared type of one schema node, with the sizes the cost estimator
  needs (``max_elements``: the largest length of a string, list or map that fits in a
  request; ``min_serialized_size``: the smallest JSON a value of the type takes);
* :func:`descriptor_pool`, the same types as protobuf messages, which is how the CEL
  checker (``cel-expr-python``) learns the fields of objects: a field that is not
  declared is an ``undefined field`` error, a wrongly typed use a ``no matching
  overload`` one, exactly as with Kubernetes' ``DeclTypeProvider``.

What the protobuf form cannot say exactly (a message field cannot hold a list of lists
or a map of lists), it says as ``google.protobuf.ListValue`` / ``Struct``: the checker
then sees ``list(dyn)`` / ``map(string, dyn)`` for the inner level and accepts rules
that Kubernetes would type-check more strictly there. The evaluator is still exact.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from google.protobuf import descriptor_pb2, duration_pb2, struct_pb2, timestamp_pb2
from google.protobuf import descriptor_pool as pb_pool

# apiserver v0.32.9 pkg/apis/cel/config.go MaxRequestSizeBytes, pkg/cel/limits.go.
MAX_REQUEST_SIZE_BYTES: Final = 3 * 1024 * 1024
MAX_DURATION_SIZE_JSON: Final = 32
MAX_DATETIME_SIZE_JSON: Final = 32
MIN_DURATION_SIZE_JSON: Final = 3
JSON_DATE_SIZE: Final = 12
MIN_DATETIME_SIZE_JSON: Final = 21
MIN_STRING_SIZE: Final = 2
MIN_BOOL_SIZE: Final = 4
MIN_NUMBER_SIZE: Final = 1


@dataclass
class Decl:
    """``apiservercel.DeclType`` of one schema node.

    ``kind`` is object, map, list, string, bytes, int, double, bool, dyn, timestamp or
    duration. ``fields`` maps *escaped* CEL field names to their types; ``json_names``
    maps them back to the JSON property. ``name`` is the type name Kubernetes gives an
    object (``selfType….spec``), used in checker messages.
    """

    kind: str
    fields: dict[str, Decl] = field(default_factory=dict)
    json_names: dict[str, str] = field(default_factory=dict)
    elem: Decl | None = None
    max_elements: int = 0
    min_serialized_size: int = 0
    name: str = "object"
    schema: Mapping[str, Any] = field(default_factory=dict)
    _by_json_name: dict[str, Decl] | None = field(default=None, repr=False, compare=False)

    def json_field(self, json_name: str) -> Decl | None:
        """The type of the JSON property ``json_name`` (None: not declared, or a name
        with no CEL identifier). Built on first use, once the declaration is complete."""
        if self._by_json_name is None:
            self._by_json_name = {name: self.fields[escaped]
                                  for escaped, name in self.json_names.items()}
        return self._by_json_name.get(json_name)

    def field_type(self, escaped: str) -> Decl | None:
        """The type of the field a CEL selection names (``FindStructFieldType``)."""
        found = self.fields.get(escaped)
        if found is None and escaped in RESERVED:
            # Compatibility 1.31+ (pkg/cel/environment/environment.go Extend):
            # `self.namespace` finds the escaped field `__namespace__`.
            found = self.fields.get(f"__{escaped}__")
        return found


# --- property name escaping (pkg/cel/escaping.go) -------------------------------------
RESERVED: Final = frozenset({
    "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
    "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
    "void", "while"})
_EXPAND: Final = re.compile(r"(__|[-./]|[^a-zA-Z0-9\-./_])")
_VALID: Final = re.compile(r"[a-zA-Z0-9_./\-]*")
_ESCAPES: Final = {"__": "__underscores__", ".": "__dot__", "-": "__dash__", "/": "__slash__"}


def escape(name: str) -> str | None:
    """``cel.Escape``: the CEL identifier of a property, or None when it has none."""
    if not name or name[0].isdigit():
        return None
    if name in RESERVED:
        return f"__{name}__"
    if not _VALID.fullmatch(name) or not name.isascii():
        return None
    return _EXPAND.sub(lambda m: _ESCAPES[m.group(0)], name)


def unescape_field(decl: Decl, escaped: str) -> str:
    """The JSON property a CEL field selection reads."""
    if escaped in decl.json_names:
        return decl.json_names[escaped]
    if f"__{escaped}__" in decl.json_names:
        return decl.json_names[f"__{escaped}__"]
    return escaped


# --- SchemaDeclType -------------------------------------------------------------------
def schema_decl(schema: Mapping[str, Any], is_resource_root: bool) -> Decl | None:
    """``SchemaDeclType``: the CEL type of a structural schema node, or None when the
    node is not visible to CEL (no type, or an array/map of invisible things)."""
    if schema.get("x-kubernetes-int-or-string"):
        return Decl("dyn", max_elements=MAX_REQUEST_SIZE_BYTES - 2, min_serialized_size=1,
                    schema=schema)
    if is_resource_root:
        schema = with_type_and_object_meta(schema)
    kind = schema.get("type")
    if kind == "array":
        return _list_decl(schema)
    if kind == "object":
        return _object_decl(schema)
    if kind == "string":
        return _string_decl(schema)
    if kind == "boolean":
        return Decl("bool", min_serialized_size=MIN_BOOL_SIZE, schema=schema)
    if kind == "number":
        return Decl("double", min_serialized_size=MIN_NUMBER_SIZE, schema=schema)
    if kind == "integer":
        return Decl("int", min_serialized_size=MIN_NUMBER_SIZE, schema=schema)
    return None


def _list_decl(schema: Mapping[str, Any]) -> Decl | None:
    items = schema.get("items")
    if not isinstance(items, Mapping):
        return None
    elem = schema_decl(items, bool(items.get("x-kubernetes-embedded-resource")))
    if elem is None:
        return None
    if schema.get("maxItems") is not None:
        max_items = max(int(schema["maxItems"]), 0)
    else:
        max_items = (MAX_REQUEST_SIZE_BYTES - 2) // (elem.min_serialized_size + 1)
    return Decl("list", elem=elem, max_elements=max_items, min_serialized_size=2,
                name="list", schema=schema)


def _object_decl(schema: Mapping[str, Any]) -> Decl | None:
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping):
        elem = schema_decl(additional, bool(additional.get("x-kubernetes-embedded-resource")))
        if elem is None:
            return None
        if schema.get("maxProperties") is not None:
            max_props = max(int(schema["maxProperties"]), 0)
        else:
            max_props = (MAX_REQUEST_SIZE_BYTES - 2) // (elem.min_serialized_size + 6)
        return Decl("map", elem=elem, max_elements=max_props, min_serialized_size=2,
                    name="map", schema=schema)
    required = set(schema.get("required") or ())
    decl = Decl("object", min_serialized_size=2, schema=schema)
    for name, prop in (schema.get("properties") or {}).items():
        prop_decl = schema_decl(prop, bool(prop.get("x-kubernetes-embedded-resource")))
        if prop_decl is None:
            continue
        escaped = escape(name)
        if escaped is not None:
            decl.fields[escaped] = prop_decl
            decl.json_names[escaped] = name
        # Required properties without a default are always serialized.
        if name in required and prop.get("default") is None:
            decl.min_serialized_size += len(name) + prop_decl.min_serialized_size + 4
    return decl


def _string_decl(schema: Mapping[str, Any]) -> Decl:
    fmt = schema.get("format", "")
    max_length = schema.get("maxLength")
    if fmt == "byte":
        size = (max(int(max_length), 0) if max_length is not None
                else _max_string_length(schema))
        return Decl("bytes", max_elements=size, min_serialized_size=MIN_STRING_SIZE,
                    schema=schema)
    if fmt == "duration":
        return Decl("duration", max_elements=_max_string_length(schema),
                    min_serialized_size=MIN_DURATION_SIZE_JSON, schema=schema)
    if fmt in ("date", "date-time"):
        minimum = JSON_DATE_SIZE if fmt == "date" else MIN_DATETIME_SIZE_JSON
        return Decl("timestamp", max_elements=_max_string_length(schema),
                    min_serialized_size=minimum, schema=schema)
    if max_length is not None:
        # maxLength counts code points; a code point is up to 4 bytes.
        size = max(int(max_length), 0) * 4
    elif schema.get("enum"):
        size = max((len(v) for v in schema["enum"] if isinstance(v, str)), default=0)
    else:
        size = _max_string_length(schema)
    return Decl("string", max_elements=size, min_serialized_size=MIN_STRING_SIZE,
                schema=schema)


def _max_string_length(schema: Mapping[str, Any]) -> int:
    """``estimateMaxStringLengthPerRequest``."""
    fmt = schema.get("format", "")
    if schema.get("x-kubernetes-int-or-string"):
        return MAX_REQUEST_SIZE_BYTES - 2
    if fmt == "duration":
        return MAX_DURATION_SIZE_JSON
    if fmt == "date":
        return JSON_DATE_SIZE
    if fmt == "date-time":
        return MAX_DATETIME_SIZE_JSON
    return MAX_REQUEST_SIZE_BYTES - 2


def with_type_and_object_meta(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """``WithTypeAndObjectMeta``: at a resource root, ``apiVersion``, ``kind`` and
    ``metadata.name``/``generateName`` are visible to rules even when undeclared, and the
    rest of ``metadata`` never is."""
    props = schema.get("properties") or {}
    meta = props.get("metadata") or {}
    meta_props = meta.get("properties") or {}
    if (props.get("kind", {}).get("type") == "string"
            and props.get("apiVersion", {}).get("type") == "string"
            and meta.get("type") == "object" and meta_props
            and meta_props.get("name", {}).get("type") == "string"
            and meta_props.get("generateName", {}).get("type") == "string"):
        return schema
    string = {"type": "string"}
    new_props = dict(props)
    new_props["kind"] = string
    new_props["apiVersion"] = string
    new_props["metadata"] = {"type": "object",
                             "properties": {"name": string, "generateName": string}}
    return {**schema, "properties": new_props}


def assign_type_names(decl: Decl, name: str) -> None:
    """``MaybeAssignTypeName``: objects are named after their place under the root type
    (``selfType0.spec.template``; list items ``@idx``, map values ``@elem``)."""
    if decl.kind == "object":
        decl.name = name
        for field_name, field_decl in decl.fields.items():
            assign_type_names(field_decl, f"{name}.{field_name}")
    elif decl.kind == "map" and decl.elem is not None:
        assign_type_names(decl.elem, f"{name}.@elem")
    elif decl.kind == "list" and decl.elem is not None:
        assign_type_names(decl.elem, f"{name}.@idx")


# --- the protobuf form the checker reads ----------------------------------------------
_F = descriptor_pb2.FieldDescriptorProto
_SCALARS: Final = {"string": _F.TYPE_STRING, "bytes": _F.TYPE_BYTES, "int": _F.TYPE_INT64,
                   "double": _F.TYPE_DOUBLE, "bool": _F.TYPE_BOOL}
_MESSAGES: Final = {"timestamp": ".google.protobuf.Timestamp",
                    "duration": ".google.protobuf.Duration",
                    "dyn": ".google.protobuf.Value"}
PACKAGE: Final = "hwcel"


@dataclass
class ProtoTypes:
    """The checker's view of a declared type: a descriptor pool, and for each message
    its CEL name (what messages print: ``selfType0.spec``)."""

    pool: pb_pool.DescriptorPool
    display_names: dict[str, str]


def descriptor_pool(root: Decl) -> tuple[ProtoTypes, str]:
    """A pool declaring every object type under ``root``; and the CEL type signature of
    ``root`` itself (``hwcel.T0``, ``list(hwcel.T1)``, ``string``…)."""
    pool = pb_pool.DescriptorPool()
    for module in (timestamp_pb2, struct_pb2, duration_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        pool.Add(proto)
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="hwcel_self.proto", package=PACKAGE, syntax="proto2",
        dependency=["google/protobuf/timestamp.proto", "google/protobuf/struct.proto",
                    "google/protobuf/duration.proto"])
    builder = _Builder(file_proto)
    signature = builder.signature(root)
    pool.Add(file_proto)
    return ProtoTypes(pool, builder.display_names), signature


def _camel_case(name: str) -> str:
    """protobuf's ``ToCamelCase(name, lower_first=false)``: underscores dropped, the next
    character and the first upper-cased."""
    out: list[str] = []
    upper_next = True
    for char in name:
        if char == "_":
            upper_next = True
        elif upper_next:
            out.append(char.upper())
            upper_next = False
        else:
            out.append(char)
    return "".join(out)


class _Builder:
    def __init__(self, file_proto: descriptor_pb2.FileDescriptorProto) -> None:
        self.file = file_proto
        self.display_names: dict[str, str] = {}
        self.count = 0

    def signature(self, decl: Decl) -> str:
        """The CEL type signature of a declared type (variables can nest freely)."""
        if decl.kind == "object":
            return self.message(decl)
        if decl.kind == "list" and decl.elem is not None:
            return f"list({self.signature(decl.elem)})"
        if decl.kind == "map" and decl.elem is not None:
            return f"map(string, {self.signature(decl.elem)})"
        return {"timestamp": "google.protobuf.Timestamp",
                "duration": "google.protobuf.Duration"}.get(decl.kind, decl.kind)

    def message(self, decl: Decl) -> str:
        name = f"T{self.count}"
        self.count += 1
        full = f"{PACKAGE}.{name}"
        self.display_names[full] = decl.name
        message = self.file.message_type.add(name=name)
        for number, (field_name, field_decl) in enumerate(decl.fields.items(), start=1):
            self.add_field(message, full, field_name, number, field_decl)
        return full

    def add_field(self, message: descriptor_pb2.DescriptorProto, full: str, name: str,
                  number: int, decl: Decl) -> None:
        label = _F.LABEL_OPTIONAL
        target = decl
        if decl.kind == "list" and decl.elem is not None:
            label, target = _F.LABEL_REPEATED, decl.elem
            if target.kind in ("list", "map"):
                # A repeated field cannot hold lists or maps: see the module docstring.
                message.field.add(name=name, json_name=name, number=number, label=label,
                                  type=_F.TYPE_MESSAGE,
                                  type_name=".google.protobuf." + (
                                      "ListValue" if target.kind == "list" else "Struct"))
                return
        elif decl.kind == "map" and decl.elem is not None:
            self.add_map_field(message, full, name, number, decl.elem)
            return
        # json_name set to the name itself: protobuf's default (lowerCamelCase) would make
        # properties such as "a_b" and "aB", both valid in a schema, collide.
        entry = message.field.add(name=name, json_name=name, number=number, label=label)
        self.set_type(entry, target)

    def add_map_field(self, message: descriptor_pb2.DescriptorProto, full: str, name: str,
                      number: int, elem: Decl) -> None:
        # protobuf's ValidateMapEntry: the entry is named ToCamelCase(field) + "Entry".
        entry_name = _camel_case(name) + "Entry"
        entry = message.nested_type.add(name=entry_name)
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
        value = entry.field.add(name="value", number=2, label=_F.LABEL_OPTIONAL)
        if elem.kind in ("list", "map"):
            value.type = _F.TYPE_MESSAGE
            value.type_name = ".google.protobuf." + ("ListValue" if elem.kind == "list"
                                                     else "Struct")
        else:
            self.set_type(value, elem)
        message.field.add(name=name, json_name=name, number=number, label=_F.LABEL_REPEATED,
                          type=_F.TYPE_MESSAGE, type_name=f".{full}.{entry_name}")

    def set_type(self, entry: descriptor_pb2.FieldDescriptorProto, decl: Decl) -> None:
        if decl.kind in _SCALARS:
            entry.type = _SCALARS[decl.kind]
        elif decl.kind in _MESSAGES:
            entry.type = _F.TYPE_MESSAGE
            entry.type_name = _MESSAGES[decl.kind]
        else:
            entry.type = _F.TYPE_MESSAGE
            entry.type_name = "." + self.message(decl)


__all__ = [
    "MAX_REQUEST_SIZE_BYTES",
    "RESERVED",
    "Decl",
    "ProtoTypes",
    "assign_type_names",
    "descriptor_pool",
    "escape",
    "schema_decl",
    "unescape_field",
    "with_type_and_object_meta",
]
