"""OpenAPI schema validation of a custom resource, as kube-openapi reports it via apiextensions.

A port of the *behaviour* of kube-openapi 32ad38e42d3f (the version apiextensions-apiserver
v0.32.9 pins) ``pkg/validation/validate``, with its messages from
``pkg/validation/errors/schema.go`` and the translation into field errors of
apiextensions-apiserver v0.32.9 ``pkg/apiserver/validation/validation.go``
(``kubeOpenAPIResultToFieldErrors``), plus the update ratcheting of
``pkg/apiserver/validation/ratcheting.go``. What a user sees, for instance::

    spec.retries: Invalid value: "string": spec.retries in body must be of type integer: "string"
    spec.imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", ...
    spec.image: Required value
    spec.entrypoint: Invalid value: "x": spec.entrypoint in body should match '^[A-Za-z...'
    <nil>: Invalid value: "": "spec.x" must validate at least one schema (anyOf)

How a node is checked (``SchemaValidator.Validate``), in this order, each only where it
applies: type (``typeValidator``), ``allOf``/``anyOf``/``oneOf``/``not``
(``schemaPropsValidator``), string length and pattern (only the first failure),
``format``, numeric bounds and ``multipleOf``, array items and sizes, ``enum``, then
object size, ``additionalProperties`` values, ``properties`` and ``required``. A null
value meets only the type and enum checks. The error kinds become field errors as
apiextensions maps them: a type or format error is ``TypeInvalid`` with the found type as
the value; ``enum`` is ``NotSupported``; ``required`` is ``Required``; ``maxLength`` is
``TooLong``; ``maxItems``/``maxProperties`` are ``TooMany``; the rest are ``Invalid``,
with the value or ``""``; the anyOf/oneOf/allOf/not summaries carry no field name, so
they land on the validated root (``<nil>`` for the resource, ``status`` for a status
write) with the path inside the message.

Quirks kept on purpose, since the server has them: an integral float such as ``1.0``
passes ``type: integer``; ``int64(min)`` truncates a fractional bound for integer
values; an enum compares after Go's value conversion (``1.5`` matches ``enum: [1]``);
messages name paths as kube-openapi builds them (``.spec`` for a required root field,
which the field path trims, and without the ``status.`` prefix on status writes).

Where Go iterates a map (in random order: sibling properties, additional properties)
this module goes in sorted key order, so the errors come in a stable order.

Ratcheting (CRDValidationRatcheting, beta and on by default since Kubernetes 1.30, so on
in 1.32): on an update, every node whose value can be correlated with the old object
(same property; for ``x-kubernetes-list-type: map`` lists the item with the same keys;
never items of other lists) is validated on its own, and its errors are dropped when the
node is unchanged (``CorrelatedObject.CachedDeepEqual``). ``kind`` and ``apiVersion``
never ratchet. An unchanged object whose keys the structural schema does not declare
(``x-kubernetes-preserve-unknown-fields`` content) does not count as unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from headwater_dev import fielderrors as fe
from headwater_dev.apiextensions import formats
from headwater_dev.apiextensions import schemaview as st

IN: Final = "body"


# --- kube-openapi errors and results ----------------------------------------------------
class Code:
    """kube-openapi ``errors`` codes (``InvalidTypeCode`` and its successors)."""

    INVALID_TYPE: Final = "invalid_type"
    REQUIRED: Final = "required"
    TOO_LONG: Final = "too_long"
    TOO_SHORT: Final = "too_short"
    PATTERN: Final = "pattern"
    ENUM: Final = "enum"
    MULTIPLE_OF: Final = "multiple_of"
    MAX: Final = "max"
    MIN: Final = "min"
    UNIQUE: Final = "unique"
    MAX_ITEMS: Final = "max_items"
    MIN_ITEMS: Final = "min_items"
    TOO_FEW_PROPERTIES: Final = "too_few_properties"
    TOO_MANY_PROPERTIES: Final = "too_many_properties"
    UNALLOWED_PROPERTY: Final = "unallowed_property"
    MULTIPLE_OF_MUST_BE_POSITIVE: Final = "multiple_of_must_be_positive"


_NO_VALUE: Final = object()


@dataclass(frozen=True)
class OpenAPIError:
    """One kube-openapi error: an ``errors.Validation`` (``code`` set) or a plain error."""

    message: str
    code: str | None = None
    name: str = ""
    value: Any = _NO_VALUE
    values: tuple[Any, ...] = ()
    valid: Any = None


@dataclass
class Result:
    """``validate.Result``: errors (each message once), warnings and the match count."""

    errors: list[OpenAPIError] = field(default_factory=list)
    warnings: list[OpenAPIError] = field(default_factory=list)
    match_count: int = 0

    def add_errors(self, *errors: OpenAPIError) -> None:
        for error in errors:
            if all(error.message != seen.message for seen in self.errors):
                self.errors.append(error)

    def add_warnings(self, *warnings: OpenAPIError) -> None:
        for warning in warnings:
            if all(warning.message != seen.message for seen in self.warnings):
                self.warnings.append(warning)

    def merge(self, *others: Result | None) -> Result:
        for other in others:
            if other is not None:
                # Nearly every node's result is clean: skip the de-duplicating adds then.
                if other.errors:
                    self.add_errors(*other.errors)
                if other.warnings:
                    self.add_warnings(*other.warnings)
                self.match_count += other.match_count
        return self

    def merge_as_warnings(self, other: Result) -> None:
        self.add_warnings(*other.errors, *other.warnings)
        self.match_count += other.match_count

    def inc(self) -> None:
        self.match_count += 1

    def is_valid(self) -> bool:
        return not self.errors


def _error(error: OpenAPIError) -> Result:
    """``errorHelp.sErr``: a result holding one error (match count 0)."""
    return Result(errors=[error])


def _go_q(text: str) -> str:
    return fe.go_quote(text)


def _v(value: Any) -> str:
    """Go's ``%v`` of a bound or value in a message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return fe.go_float(value)
    return str(value)


def invalid_type(name: str, type_name: str, value: Any) -> OpenAPIError:
    """``errors.InvalidType``: ``… must be of type T: "found"`` when the value is a string."""
    if isinstance(value, str):
        message = f"{name} in {IN} must be of type {type_name}: {_go_q(value)}"
    else:
        message = f"{name} in {IN} must be of type {type_name}"
    return OpenAPIError(message, Code.INVALID_TYPE, name, value)


def _enum_values_text(values: Sequence[Any]) -> str:
    """Go's ``%v`` of the ``[]interface{}`` of enum values."""
    return "[" + " ".join(_go_v_any(value) for value in values) + "]"


def _go_v_any(value: Any) -> str:
    kind = st.go_kind(value)
    if kind == "nil":
        return "<nil>"
    if kind == "map":
        return "map[" + " ".join(f"{key}:{_go_v_any(value[key])}" for key in sorted(value)) + "]"
    if kind == "slice":
        return "[" + " ".join(_go_v_any(item) for item in value) + "]"
    if kind in ("int", "float"):
        return _v(st.go_number(value))
    return _v(value)


# --- the value checks ---------------------------------------------------------------------
def is_float64_json_integer(number: float) -> bool:
    """go-openapi/swag v0.23.0 ``IsFloat64AJSONInteger``, including its amd64 arithmetic."""
    limit = float(2**53 - 1)
    if math.isnan(number) or math.isinf(number) or not -limit <= number <= limit:
        return False
    truncated = math.trunc(number)
    if number == truncated:
        return True
    # float64(uint64(f)): a negative value wraps around on amd64.
    wrapped = float(truncated % 2**64)
    difference = abs(number - wrapped)
    if wrapped == 0 or difference < 5e-324:
        return difference < 1e-9 * 5e-324
    return difference / min(abs(number) + abs(wrapped), 1.7976931348623157e308) < 1e-9


def _schema_info(value: Any) -> tuple[str, str]:
    """``typeValidator.schemaInfoForType``: the JSON type and format Go infers."""
    return {"bool": ("boolean", ""), "string": ("string", ""), "int": ("integer", "int64"),
            "float": ("number", "float64"), "slice": ("array", ""),
            "map": ("object", "")}[st.go_kind(value)]


def _type_check(schema: st.Schema, path: str, data: Any, known: tuple[list[str], str] | None
                = None) -> Result:
    """``typeValidator.Validate`` (``known``: the node's types and effective format, when
    the caller has them already)."""
    result = Result()
    result.inc()
    wanted, fmt = known if known is not None else (
        st.types(schema), formats.effective_format(schema.get("format")))
    if data is None:
        if wanted and "null" not in wanted and not st.nullable(schema):
            return _error(invalid_type(path, ",".join(wanted), "null"))
        return result
    kind = st.go_kind(data)
    found, found_format = _schema_info(data)
    is_float_int = (found == "number" and "integer" in wanted
                    and is_float64_json_integer(float(data)))
    is_int_float = found == "integer" and "number" in wanted
    if kind not in ("string", "slice") and fmt and not (
            found in wanted or found_format == fmt or is_float_int or is_int_float):
        return _error(invalid_type(path, fmt, found_format))
    if not ("number" in wanted or "integer" in wanted) and fmt and kind in ("string", "slice"):
        return result
    if not (found in wanted or is_float_int or is_int_float):
        return _error(invalid_type(path, ",".join(wanted), found))
    return result


def _string_check(schema: st.Schema, path: str, data: str) -> Result | None:
    """``stringValidator.Validate``: only the first failure of maxLength, minLength, pattern."""
    length = len(data)
    maximum, minimum, pattern = (schema.get("maxLength"), schema.get("minLength"),
                                 schema.get("pattern"))
    if isinstance(maximum, int) and length > maximum:
        return _error(OpenAPIError(f"{path} in {IN} should be at most {maximum} chars long",
                                   Code.TOO_LONG, path, data, valid=maximum))
    if isinstance(minimum, int) and length < minimum:
        return _error(OpenAPIError(f"{path} in {IN} should be at least {minimum} chars long",
                                   Code.TOO_SHORT, path, data, valid=minimum))
    if isinstance(pattern, str) and pattern:
        try:
            matched = formats.go_regexp_matches(pattern, data)
        except formats.RegexError as error:  # CRD validation refuses such patterns anyway
            shown = f"{pattern}, but pattern is invalid: {error}"
            return _error(OpenAPIError(f"{path} in {IN} should match '{shown}'",
                                       Code.PATTERN, path, data))
        if not matched:
            return _error(OpenAPIError(f"{path} in {IN} should match '{pattern}'",
                                       Code.PATTERN, path, data))
    return None


def _format_check(schema: st.Schema, path: str, data: str) -> Result | None:
    """``formatValidator.Validate`` (``FormatOf``)."""
    fmt = formats.effective_format(schema.get("format"))
    if formats.validates(fmt, data):
        return None
    return _error(invalid_type(path, fmt, data))


def _bound_error(path: str, code: str, words: str, bound: Any, value: Any) -> OpenAPIError:
    return OpenAPIError(f"{path} in {IN} should be {words} {_v(bound)}", code, path, value)


def _number_check(schema: st.Schema, path: str, data: int | float) -> Result:
    """``numberValidator.Validate``: multipleOf, then minimum, then maximum."""
    result = Result()
    value = st.go_number(data)
    as_int = isinstance(value, int)
    multiple = Result()
    factor = schema.get("multipleOf")
    if isinstance(factor, (int, float)) and not isinstance(factor, bool):
        error = _multiple_of(path, value, float(factor))
        if error is not None:
            multiple.add_errors(error)
    low = Result()
    minimum = schema.get("minimum")
    if isinstance(minimum, (int, float)) and not isinstance(minimum, bool):
        exclusive = schema.get("exclusiveMinimum") is True
        bound: int | float = math.trunc(float(minimum)) if as_int else float(minimum)
        if value < bound or (exclusive and value <= bound):
            low.add_errors(_bound_error(path, Code.MIN, "greater than" if exclusive
                                        else "greater than or equal to", bound, value))
    high = Result()
    maximum = schema.get("maximum")
    if isinstance(maximum, (int, float)) and not isinstance(maximum, bool):
        exclusive = schema.get("exclusiveMaximum") is True
        bound = math.trunc(float(maximum)) if as_int else float(maximum)
        if value > bound or (exclusive and value >= bound):
            high.add_errors(_bound_error(path, Code.MAX, "less than" if exclusive
                                         else "less than or equal to", bound, value))
    result.merge(multiple, low, high)
    result.inc()
    return result


def _multiple_of(path: str, value: int | float, factor: float) -> OpenAPIError | None:
    """``MultipleOfNativeType``: integer arithmetic for integers, a float ratio otherwise."""
    if isinstance(value, int):
        whole = math.trunc(factor)
        if whole <= 0:
            return OpenAPIError(f"factor MultipleOf declared for {path} must be positive: "
                                f"{whole}", Code.MULTIPLE_OF_MUST_BE_POSITIVE, path, whole)
        if value % whole:
            return OpenAPIError(f"{path} in {IN} should be a multiple of {whole}",
                                Code.MULTIPLE_OF, path, value)
        return None
    if factor <= 0:
        return OpenAPIError(f"factor MultipleOf declared for {path} must be positive: "
                            f"{_v(factor)}", Code.MULTIPLE_OF_MUST_BE_POSITIVE, path, factor)
    ratio = 1 / factor * value if factor < 1 else value / factor
    if not is_float64_json_integer(ratio):
        return OpenAPIError(f"{path} in {IN} should be a multiple of {_v(factor)}",
                            Code.MULTIPLE_OF, path, value)
    return None


def _go_convert(data: Any, enum_value: Any) -> tuple[bool, Any]:
    """``reflect.Value.Convert`` of ``data`` to the type of ``enum_value``, when Go allows it."""
    data_kind, enum_kind = st.go_kind(data), st.go_kind(enum_value)
    if data_kind == enum_kind:
        return True, data
    numeric = ("int", "float")
    if data_kind in numeric and enum_kind in numeric:
        number = st.go_number(data)
        return True, (float(number) if enum_kind == "float" else math.trunc(number))
    if data_kind == "int" and enum_kind == "string":
        code = int(data)
        valid = 0 <= code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF
        return True, chr(code) if valid else "\ufffd"
    return False, None


def _enum_check(schema: st.Schema, path: str, data: Any) -> Result | None:
    """``basicCommonValidator.Validate``."""
    enum = schema.get("enum")
    if enum is None or not isinstance(enum, Sequence) or isinstance(enum, str) or not enum:
        return None
    for enum_value in enum:
        if enum_value is None or data is None:
            continue
        convertible, converted = _go_convert(data, enum_value)
        if convertible and st.go_equal(converted, enum_value):
            return None
    message = f"{path} in {IN} should be one of {_enum_values_text(enum)}"
    return _error(OpenAPIError(message, Code.ENUM, path, data, tuple(enum)))


# --- the validators -----------------------------------------------------------------------
@dataclass
class Correlation:
    """``common.CorrelatedObject``: a new value, its old counterpart, and whether they match."""

    old: Any
    new: Any
    schema: st.Schema | None
    _equal: bool | None = None
    _children: dict[Any, Correlation | None] = field(default_factory=dict)
    _map_list: dict[Any, Any] | None = None
    _map_list_made: bool = False

    def key(self, name: str) -> Correlation | None:
        """``Key``: the correlated child property, if the old object has it too."""
        if self.schema is None:
            return None
        if name in self._children:
            return self._children[name]
        if not (isinstance(self.old, Mapping) and isinstance(self.new, Mapping)
                and name in self.old and name in self.new):
            return None
        declared = st.properties(self.schema)
        sub = declared[name] if name in declared else st.additional_properties(self.schema)
        if sub is None:
            return None
        child = Correlation(self.old[name], self.new[name], sub)
        self._children[name] = child
        return child

    def index(self, position: int) -> Correlation | None:
        """``Index``: only items of ``map`` lists correlate, by their keys."""
        if self.schema is None:
            return None
        if position in self._children:
            return self._children[position]
        if (st.go_kind(self.old) != "slice" or st.go_kind(self.new) != "slice"
                or len(self.new) <= position or st.list_type(self.schema) != "map"):
            return None
        old_item = self._old_item_with_keys_of(self.new[position])
        item_schema = st.items(self.schema)
        if old_item is None or item_schema is None:
            return None
        child = Correlation(old_item, self.new[position], item_schema)
        self._children[position] = child
        return child

    def _old_item_with_keys_of(self, item: Any) -> Any:
        if not self._map_list_made:
            self._map_list_made = True
            self._map_list = {}
            names = st.list_map_keys(self.schema)
            if self.schema is not None and self.schema.get("type") == "array" and names:
                for old_item in self.old:
                    composite = _map_key(old_item, names)
                    if composite is not None:
                        self._map_list.setdefault(composite, old_item)
        names = st.list_map_keys(self.schema)
        composite = _map_key(item, names) if names else None
        return None if composite is None or self._map_list is None else (
            self._map_list.get(composite))

    def deep_equal(self) -> bool:
        """``CachedDeepEqual``."""
        if self._equal is None:
            self._equal = self._compare()
        return self._equal

    def _compare(self) -> bool:
        old, new = self.old, self.new
        if old is None or new is None:
            return old is None and new is None
        old_kind, new_kind = st.go_kind(old), st.go_kind(new)
        if (old_kind == "slice") != (new_kind == "slice") or (
                (old_kind == "map") != (new_kind == "map")):
            return False
        if new_kind == "slice":
            if len(old) != len(new):
                return False
            for position in range(len(new)):
                child = self.index(position)
                if child is None:
                    return st.go_equal(old, new) if not self._map_list_made else False
                if not child.deep_equal():
                    return False
            return True
        if new_kind == "map":
            if len(old) != len(new):
                return False
            for name in new:
                child = self.key(name)
                if child is None or not child.deep_equal():
                    return False
            return True
        return st.go_equal(old, new)


def _map_key(item: Any, names: Sequence[str]) -> Any:
    """The key of a ``map`` list item (``singleKeyStrategy``/``multiKeyStrategy``), or None."""
    if not isinstance(item, Mapping):
        return None
    values = []
    for name in names:
        if name not in item or st.go_kind(item[name]) not in ("bool", "int", "float", "string"):
            return None
        values.append((st.go_kind(item[name]), item[name]))
    return tuple(values)


_COMPOSITIONS: Final = frozenset({"anyOf", "oneOf", "allOf", "not"})
"""The keywords ``schemaPropsValidator`` acts on: with none, it only counts a match."""


class SchemaValidator:
    """``validate.SchemaValidator`` for one node; with a correlation, it ratchets."""

    def __init__(self, schema: st.Schema, path: str, correlation: Correlation | None = None,
                 root: bool = False) -> None:
        self.schema = schema
        self.path = path
        self.correlation = correlation
        self.root = root

    def validate(self, data: Any) -> Result:
        """``ratchetingValueValidator.Validate`` (or plain ``SchemaValidator.Validate``)."""
        result = self._validate(data)
        if self.correlation is not None and not result.is_valid() and (
                self.correlation.deep_equal()):
            ratcheted = Result()
            ratcheted.merge_as_warnings(result)
            return ratcheted
        return result

    def _child_for_field(self, name: str, schema: st.Schema, path: str) -> SchemaValidator:
        """``SubPropertyValidator``: correlated children ratchet, TypeMeta never does."""
        child = None if self.correlation is None else self.correlation.key(name)
        if child is None or (self.root and name in ("kind", "apiVersion")):
            return SchemaValidator(schema, path)
        return SchemaValidator(schema, path, child)

    def _child_for_index(self, position: int, schema: st.Schema, path: str
                         ) -> SchemaValidator:
        child = None if self.correlation is None else self.correlation.index(position)
        return SchemaValidator(schema, path, child)

    def _validate(self, data: Any) -> Result:
        result = Result()
        schema, path = self.schema, self.path
        if data is None:
            result.merge(_type_check(schema, path, data))
            result.merge(_enum_check(schema, path, data))
            return result
        kind = st.go_kind(data)
        fmt = formats.effective_format(schema.get("format"))
        wanted = st.types(schema)
        if wanted or fmt:
            result.merge(_type_check(schema, path, data, (wanted, fmt)))
            result.inc()
        if _COMPOSITIONS.isdisjoint(schema):
            result.match_count += 2  # _schema_props' own count, and this step's
        else:
            result.merge(self._schema_props(data))
            result.inc()
        if kind == "string":
            result.merge(_string_check(schema, path, data))
            result.inc()
            if fmt:
                result.merge(_format_check(schema, path, data))
                result.inc()
        if kind in ("int", "float"):
            result.merge(_number_check(schema, path, data))
            result.inc()
        if kind == "slice":
            result.merge(self._slice(data))
            result.inc()
        result.merge(_enum_check(schema, path, data))
        result.inc()
        if kind == "map":
            result.merge(self._object(data))
            result.inc()
        result.inc()
        return result

    def _branch(self, schema: st.Schema) -> SchemaValidator:
        # The branches of allOf/anyOf/oneOf/not validate the same node without ratcheting
        # (their options are the empty SchemaValidatorOptions.Options()).
        return SchemaValidator(schema, self.path)

    def _schema_props(self, data: Any) -> Result:
        """``schemaPropsValidator.Validate``: allOf, anyOf, oneOf, not."""
        main = Result()
        schema, path = self.schema, self.path
        any_of = schema.get("anyOf") or []
        if any_of:
            best: Result | None = None
            first_success: Result | None = None
            for branch in any_of:
                outcome = self._branch(branch).validate(data)
                if outcome.is_valid():
                    best, first_success = None, outcome
                    break
                if best is None or outcome.match_count > best.match_count:
                    best = outcome
            if first_success is None:
                main.add_errors(OpenAPIError(
                    f"{_go_q(path)} must validate at least one schema (anyOf)"))
            main.merge(best if best is not None else first_success)
        one_of = schema.get("oneOf") or []
        if one_of:
            best, first_success, validated = None, None, 0
            for branch in one_of:
                outcome = self._branch(branch).validate(data)
                if outcome.is_valid():
                    validated += 1
                    best = None
                    first_success = first_success or outcome
                    continue
                if validated == 0 and (best is None or outcome.match_count > best.match_count):
                    best = outcome
            if validated != 1:
                extra = ("Found none valid" if validated == 0
                         else f"Found {validated} valid alternatives")
                main.add_errors(OpenAPIError(
                    f"{_go_q(path)} must validate one and only one schema (oneOf). {extra}"))
                main.merge(best)
            else:
                main.merge(first_success)
        all_of = schema.get("allOf") or []
        if all_of:
            validated = 0
            for branch in all_of:
                outcome = self._branch(branch).validate(data)
                validated += outcome.is_valid()
                main.merge(outcome)
            if validated != len(all_of):
                extra = ". None validated" if validated == 0 else ""
                main.add_errors(OpenAPIError(
                    f"{_go_q(path)} must validate all the schemas (allOf){extra}"))
        negated = schema.get("not")
        if isinstance(negated, Mapping) and self._branch(negated).validate(data).is_valid():
            main.add_errors(OpenAPIError(f"{_go_q(path)} must not validate the schema (not)"))
        main.inc()
        return main

    def _slice(self, data: Sequence[Any]) -> Result:
        """``schemaSliceValidator.Validate``."""
        result = Result()
        path, item_schema = self.path, st.items(self.schema)
        if item_schema is not None:
            for position, item in enumerate(data):
                validator = self._child_for_index(position, item_schema, f"{path}[{position}]")
                result.merge(validator.validate(item))
        size = len(data)
        minimum, maximum = self.schema.get("minItems"), self.schema.get("maxItems")
        if isinstance(minimum, int) and size < minimum:
            result.add_errors(OpenAPIError(
                f"{path} in {IN} should have at least {minimum} items", Code.MIN_ITEMS, path,
                size, valid=minimum))
        if isinstance(maximum, int) and size > maximum:
            result.add_errors(OpenAPIError(
                f"{path} in {IN} should have at most {maximum} items", Code.MAX_ITEMS, path,
                size, valid=maximum))
        if self.schema.get("uniqueItems") is True and any(
                st.go_equal(data[i], data[j]) for i in range(size) for j in range(i)):
            result.add_errors(OpenAPIError(f"{path} in {IN} shouldn't contain duplicates",
                                           Code.UNIQUE, path))
        result.inc()
        return result

    def _object(self, data: Mapping[str, Any]) -> Result:
        """``objectValidator.Validate``."""
        result = Result()
        schema, path = self.schema, self.path
        size = len(data)
        minimum, maximum = schema.get("minProperties"), schema.get("maxProperties")
        if isinstance(minimum, int) and size < minimum:
            result.add_errors(OpenAPIError(
                f"{path} in {IN} should have at least {minimum} properties",
                Code.TOO_FEW_PROPERTIES, path, size, valid=minimum))
        if isinstance(maximum, int) and size > maximum:
            result.add_errors(OpenAPIError(
                f"{path} in {IN} should have at most {maximum} properties",
                Code.TOO_MANY_PROPERTIES, path, size, valid=maximum))
        declared = st.properties(schema)
        extra = schema.get("additionalProperties")
        if extra is False:
            for name in sorted(data):
                if name not in declared:
                    result.add_errors(OpenAPIError(
                        f"{path}.{name} in {IN} is a forbidden property",
                        Code.UNALLOWED_PROPERTY, path, name))
        elif st.is_mapping(extra):
            for name in sorted(data):
                if name not in declared:
                    validator = self._child_for_field(name, extra, f"{path}.{name}")
                    result.merge(validator.validate(data[name]))
        for name in sorted(declared):
            if name in data:
                child_path = f"{path}.{name}" if path else name
                validator = self._child_for_field(name, declared[name], child_path)
                result.merge(validator.validate(data[name]))
        for name in schema.get("required") or []:
            if name not in data:
                result.add_errors(OpenAPIError(f"{path}.{name} in {IN} is required",
                                               Code.REQUIRED, f"{path}.{name}"))
        return result


# --- kube-openapi errors as field errors ---------------------------------------------------
def _child_path(root: str | None, name: str) -> str:
    if not name or name == ".":
        return root if root is not None else "<nil>"
    name = name.removeprefix(".")
    return f"{root}.{name}" if root else name


def to_field_errors(root: str | None, result: Result) -> list[fe.FieldError]:
    """``kubeOpenAPIResultToFieldErrors``: each error at ``root`` + its name."""
    errors: list[fe.FieldError] = []
    for error in result.errors:
        if error.code is None:
            errors.append(fe.invalid(root if root is not None else "<nil>", "", error.message))
            continue
        path = _child_path(root, error.name)
        value = "" if error.value is _NO_VALUE or error.value is None else error.value
        if error.code == Code.REQUIRED:
            errors.append(fe.required(path, ""))
        elif error.code == Code.ENUM:
            allowed = [v if isinstance(v, str) else st.go_json(v) for v in error.values]
            shown = None if error.value is _NO_VALUE else error.value
            errors.append(fe.not_supported(path, shown, allowed))
        elif error.code == Code.TOO_LONG:
            errors.append(fe.too_long(path, error.valid if isinstance(error.valid, int) else -1))
        elif error.code in (Code.MAX_ITEMS, Code.TOO_MANY_PROPERTIES):
            errors.append(fe.too_many(path, error.value, error.valid))
        elif error.code == Code.INVALID_TYPE:
            errors.append(fe.type_invalid(path, value, error.message))
        else:
            errors.append(fe.invalid(path, value, error.message))
    return errors


def schema_errors(schema: st.Schema, value: Any, *, root: str | None = None,
                  old: Any = None, ratchet: bool = False) -> list[fe.FieldError]:
    """Validate ``value`` against ``schema``; with ``ratchet``, let unchanged parts of ``old`` be.

    ``root`` is the field path the schema validates (None for the whole resource,
    ``"status"`` for the status subresource's schema).
    """
    correlation = Correlation(old, value, schema) if ratchet else None
    result = SchemaValidator(schema, "", correlation, root=True).validate(value)
    return to_field_errors(root, result)


__all__ = [
    "Code",
    "Correlation",
    "OpenAPIError",
    "Result",
    "SchemaValidator",
    "invalid_type",
    "is_float64_json_integer",
    "schema_errors",
    "to_field_errors",
]
