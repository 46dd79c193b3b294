"""Templates over a FlowRun: notification messages and parameters mapped from one run to another.

Automations render a message from the run that triggered them ("{{ run.name }} is
{{ run.phase }}"), and both automations and Deployment triggers map the triggering run's
fields into a new run's parameters (``start_date: "{{ run.parameters.start_date }}"``).
Both go through :func:`render` over the context :func:`flowrun_context` builds, so a
field means the same thing wherever a user writes it (docs/automations.md lists them).

What it must respect:

* **Templates come from custom resources, written by anyone who may create one**, so
  they run in Jinja's sandbox (no attribute walks to Python internals) and an undefined
  name is an error naming it, never an empty string that silently reaches a receiver.
* **A value keeps its type.** A template that is exactly one expression
  (``"{{ run.parameters.limit }}"``) renders to that value — an int stays an int, a list a
  list — as Prefect's deployment triggers and Ansible's native templates do; anything
  else renders to a string.
* Pure: no I/O. The caller supplies whatever the context needs (the UI link, a logs
  excerpt) already fetched; secrets never enter a context.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Final

import jinja2
from headwater import contract
from jinja2.nativetypes import NativeCodeGenerator, native_concat
from jinja2.sandbox import ImmutableSandboxedEnvironment

from headwater_operator.kubetime import parse_time


class TemplateError(ValueError):
    """A template that does not parse or does not render; the message names the field."""


class _NativeSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, rendering a lone expression to its value (jinja2.nativetypes' way)."""

    code_generator_class = NativeCodeGenerator
    concat = staticmethod(native_concat)  # type: ignore[assignment]  # jinja2.nativetypes does the same


_STRING: Final = ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
_NATIVE: Final = _NativeSandbox(undefined=jinja2.StrictUndefined, autoescape=False)


def _expression_only(template: str) -> bool:
    stripped = template.strip()
    return (stripped.startswith("{{") and stripped.endswith("}}")
            and stripped.count("{{") == 1 and "{%" not in stripped)


@functools.lru_cache(maxsize=1024)
def _compiled(template: str, native: bool) -> jinja2.Template:
    """A template compiled once (compiling costs far more than rendering, and an
    automation renders the same few templates for every run)."""
    return (_NATIVE if native else _STRING).from_string(template)


def render(template: str, context: Mapping[str, Any], *, field: str) -> Any:
    """``template`` rendered over ``context``; ``field`` (e.g. ``spec.actions[0].message``)
    names where the template came from in any error."""
    native = _expression_only(template)
    try:
        compiled = _compiled(template.strip() if native else template, native)
        value: Any = compiled.render(context)
        if isinstance(value, jinja2.Undefined):  # a lone expression is not str()-ed
            value._fail_with_undefined_error()
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"{field}: template does not parse (line {error.lineno}): "
                            f"{error.message}; fix the Jinja syntax") from None
    except jinja2.UndefinedError as error:
        raise TemplateError(f"{field}: {error.message}; use one of the fields "
                            "docs/automations.md lists") from None
    except jinja2.exceptions.SecurityError as error:
        raise TemplateError(f"{field}: {error}; templates may only read run fields") from None
    except (TypeError, ValueError, ArithmeticError) as error:
        raise TemplateError(f"{field}: template failed: {error}") from None
    return value if native else str(value)


def check(template: str, *, field: str) -> None:
    """Raise :class:`TemplateError` when ``template`` does not parse (admission checks)."""
    try:
        _STRING.parse(template)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"{field}: template does not parse (line {error.lineno}): "
                            f"{error.message}; fix the Jinja syntax") from None


def flowrun_context(body: Mapping[str, Any], *, ui_url: str | None = None,
                    logs: str | None = None) -> dict[str, Any]:
    """The ``run`` a template sees, from a FlowRun's object as the API server returns it.

    ``ui_url`` is the UI's public address (the operator's ``--ui-url``); with it,
    ``run.url`` links the run's page, else it is ``None``. ``logs`` is an excerpt of the
    run's log the caller fetched (``None`` when it has none).
    """
    metadata: Mapping[str, Any] = body.get("metadata") or {}
    spec: Mapping[str, Any] = body.get("spec") or {}
    status: Mapping[str, Any] = body.get("status") or {}
    namespace = metadata.get("namespace", "")
    name = metadata.get("name", "")
    start, end = parse_time(status.get("startTime")), parse_time(status.get("endTime"))
    duration = status.get("durationSeconds")
    if duration is None and start is not None and end is not None:
        duration = (end - start).total_seconds()
    labels: Mapping[str, str] = metadata.get("labels") or {}
    deployment = (spec.get("deploymentRef") or {}).get("name")
    flow = (spec.get("flowRef") or {}).get("name")
    url = contract.run_ui_url(ui_url, namespace, name)
    run = {
        "name": name,
        "namespace": namespace,
        "uid": metadata.get("uid", ""),
        "labels": dict(labels),
        "deployment": deployment,
        "flow": flow,
        "parameters": dict(spec.get("parameters") or {}),
        "phase": status.get("phase"),
        "reason": status.get("reason"),
        "message": status.get("message"),
        "attempts": status.get("attempts", 0),
        "scheduled_time": status.get("scheduledTime") or spec.get("scheduledTime"),
        "start_time": status.get("startTime"),
        "end_time": status.get("endTime"),
        "duration_seconds": duration,
        "assets": [asset.get("key") for asset in status.get("assets") or []],
        "url": url,
        "logs": logs,
    }
    return {"run": run}
