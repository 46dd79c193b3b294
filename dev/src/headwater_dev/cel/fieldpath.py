"""A rule's ``fieldPath``: checked against the schema, and the field it reports at.

apiextensions-apiserver v0.32.9 ``pkg/apiserver/schema/cel/validation.go``
``ValidFieldPath``: a JSON path of ``.name`` and ``['key']`` steps (single-quoted, with
the escapes ``unescapeSingleQuote`` knows) through properties and additionalProperties
of the schema; a step into additionalProperties is a map key (``[key]``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from headwater_dev import fielderrors as fe


@dataclass(frozen=True)
class FieldPathError:
    """Why a fieldPath is not valid (Kubernetes' wording)."""

    detail: str


_TOKEN: Final = re.compile(r"'(?:[^'\\]|\\.)*'|[.\[\]]|[^.\[\]']+|'.*")
_ESCAPES: Final = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
                   "v": "\v", "'": "'", "\\": "\\"}


def resolve(path: str, schema: Mapping[str, Any]) -> list[fe.PathPart] | FieldPathError:
    """The path parts ``path`` names in ``schema``, or why it names nothing."""
    tokens = iter(_TOKEN.findall(path))
    parts: list[fe.PathPart] = []
    node: Mapping[str, Any] = schema
    for token in tokens:
        if token == "[":
            name = next(tokens, None)
            if name is None:
                return FieldPathError("unexpected end of JSON path")
            if len(name) < 2 or name[0] != "'" or name[-1] != "'":
                return FieldPathError(f"expected single quoted string but got {name}")
            unquoted = _unescape(name[1:-1])
            if unquoted is None:
                return FieldPathError("invalid string literal")
            step = _step(node, unquoted, parts)
            if isinstance(step, FieldPathError):
                return step
            node = step
            closing = next(tokens, None)
            if closing is None:
                return FieldPathError("unexpected end of JSON path")
            if closing != "]":
                return FieldPathError(f"expected ] but got {closing}")
        elif token == ".":
            name = next(tokens, None)
            if name is None:
                return FieldPathError("unexpected end of JSON path")
            step = _step(node, name, parts)
            if isinstance(step, FieldPathError):
                return step
            node = step
        else:
            return FieldPathError(f"expected [ or . but got: {token}")
    return parts


def _step(node: Mapping[str, Any], name: str, parts: list[fe.PathPart]
          ) -> Mapping[str, Any] | FieldPathError:
    if node.get("properties") is not None:
        parts.append(name)
        found = node["properties"].get(name)
        if found is None:
            return FieldPathError("does not refer to a valid field")
        return found  # type: ignore[no-any-return]
    additional = node.get("additionalProperties")
    if additional is not None:
        parts.append(fe.key(name))
        return additional if isinstance(additional, Mapping) else {}
    return FieldPathError("does not refer to a valid field")


def _unescape(text: str) -> str | None:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            escaped = _ESCAPES.get(text[i + 1])
            if escaped is None:
                return None
            out.append(escaped)
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


__all__ = ["FieldPathError", "resolve"]
