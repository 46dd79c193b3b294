"""A run form generated from a Flow's ``parametersSchema``, checked on the server.

Pure: no I/O, no aiohttp. Pages build :class:`FormField` lists with :func:`form_fields`
and read a submitted form back with :func:`read_run_form`.

What it must respect:

* **The server is the authority.** A submitted form is converted field by field (text to
  the field's JSON type; a date control's text must be a date), then the merged
  parameters (Flow < Deployment < form) are checked with the *same* JSON Schema check
  the CLI and the operator's admission use
  (:func:`headwater_operator.flowruns.settings.parameter_errors`'s validator, same
  schema, same draft): a form the server accepts is never rejected for its parameters
  later. Every problem is mapped back to its field (``errors[name]``) or, when it
  belongs to none, to the form (``errors[""]``). The HTML constraints the fields carry
  (``required``, ``min``, ``max``, ``pattern``) are only a convenience for the browser.
* **The run stores what the user changed.** As ``headwater run`` stores only the ``-p``
  values, the form's result holds only the fields whose value differs from what the form
  was filled with (the Flow's and Deployment's values, else the schema's default); the
  operator merges the rest at admission. An emptied field means "the default".
* The schema is the SDK's layout (``headwater schema``: ``properties`` with
  ``position``, ``required``, ``definitions``); ``$ref``s into ``definitions``/``$defs``,
  ``allOf`` of one schema and ``anyOf [X, null]`` (``Optional[X]``) are followed.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from jsonschema import exceptions as jsonschema_exceptions
from jsonschema import validators

from headwater_operator.flowruns.settings import merge_parameters

Widget = Literal["date", "datetime", "select", "checkbox", "number", "text", "json"]

FIELD_PREFIX = "param."
"""Form control names are ``param.<parameter>``, apart from the form's own fields."""

NONE_OPTION = "__none__"
"""The select value meaning ``null`` for an optional enum or boolean."""

_MAX_REF_DEPTH = 16


@dataclass(frozen=True)
class Option:
    """One choice of a select: ``value`` is what the browser sends, ``label`` what it shows."""

    value: str
    label: str
    selected: bool = False


@dataclass(frozen=True)
class FormField:
    """One labelled control of the run form, for one parameter."""

    name: str
    widget: Widget
    type_label: str
    required: bool
    nullable: bool = False
    text: str = ""
    """The control's initial text (``value=`` of an input, the textarea's content)."""
    checked: bool = False
    options: tuple[Option, ...] = ()
    html: Mapping[str, str] = field(default_factory=dict)
    """HTML constraint attributes: ``min``, ``max``, ``step``, ``pattern``, ``minlength``,
    ``maxlength``."""
    description: str | None = None
    has_default: bool = False
    default: Any = None
    """The schema's ``default`` (what the flow function uses when nothing is given)."""
    prefill: Any = None
    has_prefill: bool = False
    """Whether the form was filled with a value (``prefill``), from the Flow's and
    Deployment's parameters or the schema's default."""

    @property
    def control_name(self) -> str:
        """The ``name=`` of the HTML control."""
        return FIELD_PREFIX + self.name

    @property
    def control_id(self) -> str:
        """The ``id=`` of the HTML control (its label's ``for=``)."""
        return "param-" + self.name


@dataclass(frozen=True)
class FormResult:
    """A submitted run form: the parameters to send, the errors, the fields to re-show."""

    overrides: dict[str, Any]
    errors: dict[str, list[str]]
    fields: list[FormField]

    @property
    def ok(self) -> bool:
        """True when nothing is wrong: the run may be created."""
        return not self.errors


def _definitions(schema: Mapping[str, Any]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        found = schema.get(key)
        if isinstance(found, Mapping):
            defs.update(found)
    return defs


def resolve(prop: Mapping[str, Any], schema: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """``prop`` with ``$ref``/``allOf [one]``/``anyOf [X, null]`` followed: (schema, nullable).

    Keys written beside a ``$ref`` (``default``, ``title``, ``description``) are kept.
    """
    defs = _definitions(schema)
    current: dict[str, Any] = dict(prop)
    nullable = False
    for _ in range(_MAX_REF_DEPTH):
        ref = current.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target = defs.get(ref.rsplit("/", 1)[-1])
            if not isinstance(target, Mapping):
                break
            rest = {k: v for k, v in current.items() if k != "$ref"}
            current = {**target, **rest}
            continue
        all_of = current.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], Mapping):
            rest = {k: v for k, v in current.items() if k != "allOf"}
            current = {**all_of[0], **rest}
            continue
        any_of = current.get("anyOf")
        if isinstance(any_of, list) and any(_is_null(s) for s in any_of):
            others = [s for s in any_of if not _is_null(s)]
            nullable = True
            if len(others) == 1 and isinstance(others[0], Mapping):
                rest = {k: v for k, v in current.items() if k != "anyOf"}
                current = {**others[0], **rest}
                continue
        types = current.get("type")
        if isinstance(types, list) and "null" in types:
            nullable = True
            remaining = [t for t in types if t != "null"]
            current["type"] = remaining[0] if len(remaining) == 1 else remaining
        break
    return current, nullable


def _is_null(sub: Any) -> bool:
    return isinstance(sub, Mapping) and sub.get("type") == "null"


def _widget(resolved: Mapping[str, Any], nullable: bool) -> Widget:
    kind = resolved.get("type")
    if isinstance(resolved.get("enum"), list) and resolved["enum"]:
        return "select"
    if "const" in resolved:
        return "select"
    if kind == "boolean":
        return "select" if nullable else "checkbox"
    if kind in ("integer", "number"):
        return "number"
    if kind == "string":
        fmt = resolved.get("format")
        if fmt == "date":
            return "date"
        if fmt == "date-time":
            return "datetime"
        return "text"
    return "json"


def type_label(resolved: Mapping[str, Any], nullable: bool) -> str:
    """A short description of a parameter's type: ``string (date)``, ``integer or null``."""
    kind = resolved.get("type")
    if isinstance(resolved.get("enum"), list):
        text = "one of " + ", ".join(json.dumps(v) for v in resolved["enum"])
    elif "const" in resolved:
        text = f"exactly {json.dumps(resolved['const'])}"
    elif kind == "array":
        items = resolved.get("items")
        inner = items.get("type") if isinstance(items, Mapping) else None
        text = f"array of {inner}" if isinstance(inner, str) else "array"
    elif isinstance(kind, str):
        fmt = resolved.get("format")
        text = f"{kind} ({fmt})" if isinstance(fmt, str) else kind
    elif isinstance(kind, list):
        text = " or ".join(map(str, kind))
    elif "anyOf" in resolved or "oneOf" in resolved:
        text = "one of several types"
    else:
        text = "any JSON value"
    return f"{text} or null" if nullable else text


def _ordered(schema: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    props = schema.get("properties")
    if not isinstance(props, Mapping):
        return []
    items = [(str(name), prop if isinstance(prop, Mapping) else {})
             for name, prop in props.items()]
    fallback = {name: index for index, (name, _) in enumerate(items)}

    def position(item: tuple[str, Mapping[str, Any]]) -> tuple[int, int]:
        pos = item[1].get("position")
        return (pos if isinstance(pos, int) else 10**6, fallback[item[0]])

    return sorted(items, key=position)


def _number_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    return str(value)


def _constraints(resolved: Mapping[str, Any], widget: Widget) -> dict[str, str]:
    html: dict[str, str] = {}
    if widget == "number":
        html["step"] = "1" if resolved.get("type") == "integer" else "any"
        for key, attr in (("minimum", "min"), ("maximum", "max")):
            text = _number_text(resolved.get(key))
            if text:
                html[attr] = text
    if widget == "text":
        for key, attr in (("minLength", "minlength"), ("maxLength", "maxlength")):
            value = resolved.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                html[attr] = str(value)
        pattern = resolved.get("pattern")
        if isinstance(pattern, str):
            html["pattern"] = _html_pattern(pattern)
    return html


def _html_pattern(pattern: str) -> str:
    """JSON Schema patterns match anywhere; HTML's ``pattern`` must match the whole value."""
    body = pattern.removeprefix("^").removesuffix("$")
    lead = "" if pattern.startswith("^") else ".*"
    tail = "" if pattern.endswith("$") else ".*"
    return f"{lead}(?:{body}){tail}"


def _text_of(value: Any, widget: Widget) -> str:
    if value is None:
        return ""
    if widget in ("date", "text"):
        return value if isinstance(value, str) else json.dumps(value)
    if widget == "datetime":
        return _datetime_local(value) if isinstance(value, str) else json.dumps(value)
    if widget == "number":
        return _number_text(value) or json.dumps(value)
    return json.dumps(value, indent=2, sort_keys=True)


def _datetime_local(text: str) -> str:
    """An RFC 3339 value as a ``datetime-local`` control shows it (wall time, no offset)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return moment.replace(tzinfo=None).isoformat(timespec="seconds")


def _options(resolved: Mapping[str, Any], nullable: bool, current: Any,
             has_current: bool) -> tuple[Option, ...]:
    if isinstance(resolved.get("enum"), list):
        choices = list(resolved["enum"])
    elif "const" in resolved:
        choices = [resolved["const"]]
    else:
        choices = [True, False]
    options = []
    if nullable or not has_current:
        selected = has_current and current is None
        label = "(none)" if nullable else "(choose one)"
        options.append(Option(NONE_OPTION, label, selected or not has_current))
    for choice in choices:
        options.append(Option(json.dumps(choice), choice if isinstance(choice, str)
                              else json.dumps(choice),
                              has_current and _same(choice, current)))
    return tuple(options)


def _same(left: Any, right: Any) -> bool:
    """JSON equality: ``1 == True`` is false here, as in JSON Schema."""
    return json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)


def prefill_values(schema: Mapping[str, Any] | None, *layers: Mapping[str, Any]
                   ) -> dict[str, Any]:
    """What the form starts with: the schema's defaults under ``layers`` (Flow, Deployment)."""
    defaults: dict[str, Any] = {}
    for name, prop in _ordered(schema or {}):
        resolved, _ = resolve(prop, schema or {})
        if "default" in resolved:
            defaults[name] = resolved["default"]
    return merge_parameters(defaults, *layers)


def form_fields(schema: Mapping[str, Any] | None, values: Mapping[str, Any],
                texts: Mapping[str, str] | None = None) -> list[FormField]:
    """The form's fields in the schema's ``position`` order, filled from ``values``.

    ``texts`` (a submitted form's raw control values by parameter name) replace the
    initial text, so a rejected form is shown again as the user typed it.
    """
    if not schema:
        return []
    required = set(schema.get("required") or ())
    result = []
    for name, prop in _ordered(schema):
        resolved, nullable = resolve(prop, schema)
        widget = _widget(resolved, nullable)
        has_value = name in values
        value = values.get(name)
        text = _text_of(value, widget) if has_value else ""
        checked = bool(value) if widget == "checkbox" and has_value else False
        if texts is not None:
            typed = texts.get(name)
            if widget == "checkbox":
                checked = typed is not None
            elif widget == "select" and typed is not None:
                with contextlib.suppress(ValueError):
                    value, has_value = _select_value(typed), True
            elif typed is not None:
                text = typed
        description = resolved.get("description")
        result.append(FormField(
            name=name, widget=widget, type_label=type_label(resolved, nullable),
            required=name in required, nullable=nullable, text=text, checked=checked,
            options=(_options(resolved, nullable, value, has_value) if widget == "select"
                     else ()),
            html=_constraints(resolved, widget),
            description=description if isinstance(description, str) else None,
            has_default="default" in resolved, default=resolved.get("default"),
            prefill=values.get(name), has_prefill=name in values,
        ))
    return result


def _select_value(text: str) -> Any:
    if text == NONE_OPTION:
        return None
    return json.loads(text)


class _Missing:
    """No value given: the field is left to the default."""


MISSING = _Missing()


def convert(form_field: FormField, raw: str | None) -> Any:
    """A control's submitted text as the parameter's JSON value, or :data:`MISSING`.

    Raises ``ValueError`` with a message for the field when the text cannot be that type.
    """
    widget = form_field.widget
    if widget == "checkbox":
        return raw is not None
    text = (raw or "").strip() if widget != "json" else (raw or "")
    if widget == "select":
        if not text:
            return MISSING
        try:
            value = _select_value(text)
        except ValueError:
            raise ValueError("choose one of the listed values") from None
        if value is None and not form_field.nullable:
            return MISSING
        allowed = [json.loads(o.value) for o in form_field.options if o.value != NONE_OPTION]
        if value is not None and not any(_same(value, choice) for choice in allowed):
            raise ValueError("choose one of the listed values")
        return value
    if not text.strip():
        return None if form_field.nullable and form_field.has_prefill else MISSING
    if widget == "number":
        return _number(text, integer=form_field.html.get("step") == "1")
    if widget == "date":
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError(f"{text!r} is not a date; write YYYY-MM-DD, e.g. "
                             "2026-03-01") from None
    if widget == "datetime":
        try:
            datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{text!r} is not a date and time; write YYYY-MM-DDTHH:MM, "
                             "e.g. 2026-03-01T06:00") from None
        return text
    if widget == "json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ValueError(f"not valid JSON ({exc.args[0]}); e.g. [\"a\", \"b\"] or "
                             "{\"key\": 1}") from None
    return text


def _number(text: str, *, integer: bool) -> int | float:
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{text!r} is not a finite number")
    if integer:
        try:
            return int(text)
        except ValueError:
            if number.is_integer():
                return int(number)
            raise ValueError(f"{text!r} is not a whole number") from None
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() \
        else number


def schema_errors(parameters: Mapping[str, Any], schema: Mapping[str, Any] | None
                  ) -> dict[str, list[str]]:
    """The JSON Schema problems of ``parameters``, by parameter name (``""``: the form).

    The check is :func:`~headwater_operator.flowruns.settings.parameter_errors`'s: the
    validator class the schema declares, after checking the schema itself.
    """
    if not schema:
        return {}
    cls = validators.validator_for(schema)
    try:
        cls.check_schema(dict(schema))
    except jsonschema_exceptions.SchemaError as exc:
        return {"": [f"the Flow's spec.parametersSchema is not a valid JSON schema: "
                     f"{exc.message}; fix the Flow"]}
    errors: dict[str, list[str]] = {}
    instance = dict(parameters)
    reported: set[str] = set()  # jsonschema yields one `required` error per missing name
    for error in cls(schema).iter_errors(instance):
        path = list(error.absolute_path)
        if path:
            errors.setdefault(str(path[0]), []).append(_message(error, path[1:]))
        elif error.validator == "required" and isinstance(error.validator_value, list):
            for missing in error.validator_value:
                if missing not in instance and missing not in reported:
                    reported.add(missing)
                    errors.setdefault(str(missing), []).append(
                        "required: enter a value (no default is set)")
        else:
            errors.setdefault("", []).append(error.message)
    return errors


def _message(error: jsonschema_exceptions.ValidationError, rest: list[Any]) -> str:
    where = "".join(f"[{json.dumps(part)}]" for part in rest)
    return f"{where}: {error.message}" if where else error.message


def _unchanged(form_field: FormField, raw: str | None) -> bool:
    """True when the control still holds what the form was filled with."""
    if not form_field.has_prefill:
        return False
    if form_field.widget == "checkbox":
        return (raw is not None) == bool(form_field.prefill)
    if form_field.widget == "select":
        chosen = next((o.value for o in form_field.options if o.selected), None)
        return raw == chosen
    return (raw or "").strip() == form_field.text.strip()


def read_run_form(schema: Mapping[str, Any] | None, flow_parameters: Mapping[str, Any],
                  deployment_parameters: Mapping[str, Any],
                  form: Mapping[str, str]) -> FormResult:
    """Convert and check a submitted run form (see the module docstring)."""
    values = prefill_values(schema, flow_parameters, deployment_parameters)
    fields = form_fields(schema, values)
    texts = {f.name: form[f.control_name] for f in fields if f.control_name in form}
    errors: dict[str, list[str]] = {}
    overrides: dict[str, Any] = {}
    for form_field in fields:
        raw = texts.get(form_field.name)
        if _unchanged(form_field, raw):
            continue
        try:
            value = convert(form_field, raw)
        except ValueError as exc:
            errors.setdefault(form_field.name, []).append(str(exc))
            continue
        if value is MISSING or (form_field.has_prefill and _same(value, form_field.prefill)):
            continue
        overrides[form_field.name] = value
    merged = merge_parameters(flow_parameters, deployment_parameters, overrides)
    for name, problems in schema_errors(merged, schema).items():
        if name not in errors:  # a field that did not convert has its own error already
            errors[name] = problems
    return FormResult(overrides, errors, form_fields(schema, values, texts))
