"""Flow parameters: validation/coercion and the JSON schema, from the function signature.

pydantic is imported only when a value actually needs coercion (``"2024-01-31"`` for a
``date``) or when a schema is requested: values that already have their annotated
builtin type pass straight through, so ``import headwater`` plus a simple flow never
pays pydantic's import time.

Each parameter gets its own ``TypeAdapter`` (built once per flow), so an error names the
parameter it is about. The schema follows Prefect's layout (``title: Parameters``,
``properties`` with ``position``, ``required``, ``definitions``) because it goes into
``Flow.spec.parametersSchema`` and UIs built for Prefect schemas can read it.
"""

from __future__ import annotations

import inspect
import typing
from typing import TYPE_CHECKING, Any

from headwater.exceptions import ParameterTypeError

if TYPE_CHECKING:
    from headwater.flows import Flow

_PASS_THROUGH = frozenset({str, int, float, bool})
_EMPTY = inspect.Parameter.empty


def split_arguments(
    signature: inspect.Signature, values: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Turn named ``values`` back into the ``*args, **kwargs`` of a call to ``signature``.

    Positional-only parameters and ``*args`` go back to positions, ``**kwargs`` is spread,
    everything else is passed by name; a parameter missing from ``values`` keeps its
    default. Used for flow parameters and for each element of a task's ``.map()``.
    """
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for name, param in signature.parameters.items():
        if name not in values:
            continue
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            args.append(values[name])
        elif param.kind is inspect.Parameter.VAR_POSITIONAL:
            args.extend(values[name])
        elif param.kind is inspect.Parameter.VAR_KEYWORD:
            kwargs.update(values[name])
        else:
            kwargs[name] = values[name]
    return tuple(args), kwargs


def _type_hints(fn: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:  # one unresolvable name: resolve the others one by one
        pass
    hints: dict[str, Any] = {}
    namespace = getattr(fn, "__globals__", {})
    for name, annotation in getattr(fn, "__annotations__", {}).items():
        if not isinstance(annotation, str):
            hints[name] = annotation
            continue
        try:
            hints[name] = eval(annotation, namespace)  # the author's own annotation
        except Exception:  # an unresolvable annotation validates as Any
            continue
    return hints


class _FlowParameterInfo:
    """Per-flow cache: annotations and lazily built pydantic adapters."""

    def __init__(self, flow: Flow[..., Any]) -> None:
        self.signature = flow.signature
        self.hints = _type_hints(flow.fn)
        self.adapters: dict[str, Any] = {}
        self.accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD
                               for p in self.signature.parameters.values())

    def annotation(self, name: str) -> Any:
        param = self.signature.parameters.get(name)
        if param is None or param.kind in (inspect.Parameter.VAR_KEYWORD,
                                           inspect.Parameter.VAR_POSITIONAL):
            return Any
        hint = self.hints.get(name, param.annotation)
        return Any if hint is _EMPTY or isinstance(hint, str) else hint

    def adapter(self, name: str) -> Any:
        adapter = self.adapters.get(name)
        if adapter is None:
            from pydantic import ConfigDict, TypeAdapter

            annotation = self.annotation(name)
            try:
                adapter = TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))
            except Exception:  # TypeAdapter refuses a config for models
                adapter = TypeAdapter(annotation)
            self.adapters[name] = adapter
        return adapter


def _info(flow: Flow[..., Any]) -> _FlowParameterInfo:
    info = flow._validator
    if info is None:
        info = flow._validator = _FlowParameterInfo(flow)
    return info  # type: ignore[no-any-return]


def _describe_input(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def validate_parameters(flow: Flow[..., Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """Return ``parameters`` coerced to the signature, with defaults filled in.

    Raises :class:`ParameterTypeError` naming every bad, missing or unknown parameter.
    """
    info = _info(flow)
    problems: list[str] = []
    result: dict[str, Any] = {}
    known = info.signature.parameters
    for name, value in parameters.items():
        param = known.get(name)
        if param is None and not info.accepts_any:
            problems.append(f"unknown parameter {name!r} (the flow takes: "
                            f"{', '.join(known) or 'no parameters'})")
            continue
        if param is not None and param.kind in (inspect.Parameter.VAR_KEYWORD,
                                                inspect.Parameter.VAR_POSITIONAL):
            result[name] = value
            continue
        annotation = info.annotation(name)
        if annotation is Any or (annotation in _PASS_THROUGH and type(value) is annotation):
            result[name] = value
            continue
        try:
            result[name] = info.adapter(name).validate_python(value)
        except Exception as exc:  # pydantic's ValidationError, reworded below
            problems.append(_explain(name, value, exc))
    for name, param in known.items():
        if name in result or param.kind in (inspect.Parameter.VAR_KEYWORD,
                                            inspect.Parameter.VAR_POSITIONAL):
            continue
        if any(name in p for p in problems):
            continue
        if param.default is _EMPTY:
            problems.append(f"missing required parameter {name!r}")
        else:
            result[name] = param.default
    if problems:
        raise ParameterTypeError(
            f"Flow {flow.name!r} received invalid parameters: " + "; ".join(problems)
            + ". Pass values that match the flow function's signature."
        )
    return result


def _explain(name: str, value: Any, exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        details = []
        for err in errors():
            loc = ".".join(str(p) for p in err.get("loc", ()))
            where = f"{name}.{loc}" if loc else name
            details.append(f"{where}: {err.get('msg')}")
        text = ", ".join(details)
    else:
        text = f"{name}: {exc}"
    return f"parameter {text} (got {_describe_input(value)})"


def parameter_schema(flow: Flow[..., Any]) -> dict[str, Any]:
    """The JSON schema of the flow's parameters (Prefect layout)."""
    from pydantic import ConfigDict, Field, create_model
    from pydantic.json_schema import GenerateJsonSchema

    class _Lenient(GenerateJsonSchema):
        # Types with no JSON form (a client object) become "any value" rather than failing.
        def handle_invalid_for_json_schema(self, schema: Any, error_info: str) -> Any:
            return {}

    info = _info(flow)
    fields: dict[str, Any] = {}
    positions: dict[str, int] = {}
    for position, (name, param) in enumerate(info.signature.parameters.items()):
        if param.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        default = ... if param.default is _EMPTY else param.default
        fields[name] = (info.annotation(name), Field(default, title=name))
        positions[name] = position
    model = create_model(
        "Parameters", __config__=ConfigDict(arbitrary_types_allowed=True), **fields
    )
    schema: dict[str, Any] = model.model_json_schema(
        ref_template="#/definitions/{model}", schema_generator=_Lenient
    )
    result: dict[str, Any] = {
        "title": "Parameters",
        "type": "object",
        "properties": schema.get("properties", {}),
        "required": schema.get("required", []),
        "definitions": schema.get("$defs", {}),
    }
    for name, prop in result["properties"].items():
        prop["position"] = positions[name]
    if flow.description:
        result["description"] = flow.description
    return result
