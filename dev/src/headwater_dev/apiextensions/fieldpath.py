"""Field paths into a structural schema: a rule's ``fieldPath``, a ``selectableFields`` path.

apiextensions-apiserver v0.32.9 pkg/apiserver/schema/cel/validation.go
``ValidFieldPath`` (with ``unescapeSingleQuote``): a path of ``.name`` steps and
``['key']`` steps (single-quoted, with ``\\'``-style escapes) that must name a declared
property (or any key where the node has ``additionalProperties``). It is checked outside
the CEL compiler, so this module owns it; its error texts appear in CRD errors
("is an invalid path: does not refer to a valid field").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from .internal import Schema
from .structural import new_structural_error

_ESCAPES: Final = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
                   "v": "\v", "'": "'", "\\": "\\"}
_TOKENS: Final = re.compile(r"'(?:[^'\\]|\\.)*'?|[.\[\]]|[^.\[\]]+", re.DOTALL)


class FieldPathError(Exception):
    """Why a field path does not lead anywhere in the schema (Go's error text)."""


@dataclass(frozen=True)
class Found:
    """Where a valid path leads: its canonical path and the schema there."""

    path: str
    root: str  # the first step's name (``metadata``, ``spec``, …)
    schema: Schema | None


def valid_field_path(json_path: str, schema: Schema | None, *,
                     allow_array_notation: bool = True) -> Found:
    """``ValidFieldPath``: follow ``json_path`` through ``schema`` or raise why not."""
    tokens = _tokenize(json_path)
    steps: list[str] = []
    node = schema
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "[":
            if not allow_array_notation:
                raise FieldPathError("array notation is not allowed")
            name = _bracketed_name(tokens, i)
            node, step = _descend(node, name)
            _closing_bracket(tokens, i + 2)
            i += 3
        elif token == ".":
            if i + 1 >= len(tokens):
                raise FieldPathError("unexpected end of JSON path")
            node, step = _descend(node, tokens[i + 1])
            i += 2
        else:
            raise FieldPathError(f"expected [ or . but got: {token}")
        steps.append(step)
    return Found(path="".join(steps).lstrip("."), root=_root(steps), schema=node)


def path_valid(schema: Schema, json_path: str) -> bool:
    """``pathValid``: a rule's ``fieldPath`` leads somewhere (unknown when not structural)."""
    if new_structural_error(schema) is not None:
        return True
    try:
        valid_field_path(json_path, schema)
    except FieldPathError:
        return False
    return True


def _tokenize(text: str) -> list[str]:
    """Go's scanner split: ``.``, ``[``, ``]`` alone, quoted strings whole, names between."""
    return _TOKENS.findall(text)


def _bracketed_name(tokens: list[str], i: int) -> str:
    if i + 1 >= len(tokens):
        raise FieldPathError("unexpected end of JSON path")
    quoted = tokens[i + 1]
    if len(quoted) < 2 or quoted[0] != "'" or quoted[-1] != "'":
        raise FieldPathError(f"expected single quoted string but got {quoted}")
    return _unescape(quoted[1:-1])


def _closing_bracket(tokens: list[str], i: int) -> None:
    if i >= len(tokens):
        raise FieldPathError("unexpected end of JSON path")
    if tokens[i] != "]":
        raise FieldPathError(f"expected ] but got {tokens[i]}")


def _unescape(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        directive = match.group(0)[1]
        if directive not in _ESCAPES:
            raise FieldPathError(f"invalid string literal: invalid escape char {match.group(0)}")
        return _ESCAPES[directive]

    return re.sub(r"\\.", one, text, flags=re.DOTALL)


def _descend(node: Schema | None, name: str) -> tuple[Schema | None, str]:
    """One step: a declared property (``.name``) or an additionalProperties key."""
    if node is None:
        raise FieldPathError("does not refer to a valid field")
    properties: Mapping[str, Schema] = node.get("properties") or {}
    if properties:  # NewStructural keeps no empty properties map
        if name not in properties:
            raise FieldPathError("does not refer to a valid field")
        return properties[name], f".{name}"
    if "additionalProperties" not in node:
        raise FieldPathError("does not refer to a valid field")
    additional = node["additionalProperties"]
    return (additional if isinstance(additional, dict) else None), f"[{name}]"


def _root(steps: list[str]) -> str:
    if not steps:
        return ""
    first = steps[0]
    return first[1:] if first.startswith(".") else first[1:-1]


__all__ = ["FieldPathError", "Found", "path_valid", "valid_field_path"]
