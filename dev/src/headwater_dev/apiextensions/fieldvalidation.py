"""``fieldValidation``: what the API server says of duplicate and unknown fields of a resource.

Every write takes ``?fieldValidation=Ignore|Warn|Strict``; a request without it is
``Warn`` (apiserver v0.32.9 ``pkg/endpoints/handlers/rest.go`` ``fieldValidation``;
kubectl 1.32 sends ``Strict`` by default). With Warn or Strict the body is decoded
strictly, which for a custom resource yields (apiextensions-apiserver v0.32.9
``pkg/apiserver/customresource_handler.go`` ``schemaCoercingDecoder.Decode``):

1. ``duplicate field "<path>"`` for each key repeated in a JSON object, in the order the
   decoder meets the repeats, once each, at most 100 (sigs.k8s.io/json 9aa6b5e7a4b3
   ``kubernetes_patch.go``: ``spec.ports[0].hostPort``; the last value wins);
2. then ``unknown field "<path>"`` for each field pruning drops
   (:func:`.pruning.unknown_fields`: ``metadata.foo``, ``spec.concurency``, ...).

Create and update (``create.go``, ``update.go``): Strict refuses the request with 400
BadRequest, ``<Kind> in version "<v>" cannot be handled as a <Kind>: strict decoding
error: <errors joined by ", ">`` (:func:`strict_decoding_message`,
:func:`decode_error_message`); Warn answers normally with one ``Warning`` header per
error, its text the error (:func:`strict_decoding_warnings`); Ignore says nothing.

Patch (``patch.go``): the patch document's own duplicates come first (JSON patch:
``json patch duplicate field "path"``, ``json patch unknown field "foo"`` for the
operations), then those of the patched object; Strict refuses with **422** Invalid on
the field ``patch``, its value the patched object's JSON, and an empty kind and name:
``  "" is invalid: patch: Invalid value: "{…}": strict decoding error: …``
(:func:`patch_strict_error`). Server-side apply is different again (400, ``error strict
decoding YAML: …``) and not covered here.

The emulator takes JSON bodies only; YAML bodies' ``line N: key "x" already set in
map`` errors are out of scope.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from headwater_dev import fielderrors as fe
from headwater_dev.apiextensions.schemaview import go_json

MAX_STRICT_ERRORS: Final = 100
"""The JSON decoder keeps at most this many strict errors (``saveStrictError``)."""

_WHITESPACE: Final = re.compile(r"[ \t\n\r]*")
_DECODER: Final = json.JSONDecoder()
_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


@dataclass
class _Scanner:
    """A JSON reader that keeps the decoder's field path and notes repeated keys."""

    text: str
    position: int = 0
    stack: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    def skip(self) -> None:
        match = _WHITESPACE.match(self.text, self.position)
        assert match is not None
        self.position = match.end()

    def value(self) -> None:
        self.skip()
        char = self.text[self.position:self.position + 1]
        if char == "{":
            self.object()
        elif char == "[":
            self.array()
        elif char == '"':
            self.string()
        else:
            for literal in ("true", "false", "null"):
                if self.text.startswith(literal, self.position):
                    self.position += len(literal)
                    return
            number = _NUMBER.match(self.text, self.position)
            if number is None or number.end() == self.position:
                raise ValueError(f"invalid JSON at offset {self.position}")
            self.position = number.end()

    def string(self) -> str:
        text, self.position = _DECODER.raw_decode(self.text, self.position)
        return str(text)

    def object(self) -> None:
        self.position += 1
        seen: set[str] = set()
        self.skip()
        if self.text.startswith("}", self.position):
            self.position += 1
            return
        while True:
            self.skip()
            if not self.text.startswith('"', self.position):
                raise ValueError(f"invalid JSON at offset {self.position}")
            name = self.string()
            if name in seen:
                self.note_duplicate(name)
            seen.add(name)
            self.skip()
            if not self.text.startswith(":", self.position):
                raise ValueError(f"invalid JSON at offset {self.position}")
            self.position += 1
            self.stack.append(f".{name}" if self.stack else name)
            self.value()
            self.stack.pop()
            self.skip()
            if self.text.startswith(",", self.position):
                self.position += 1
                continue
            if self.text.startswith("}", self.position):
                self.position += 1
                return
            raise ValueError(f"invalid JSON at offset {self.position}")

    def array(self) -> None:
        self.position += 1
        self.skip()
        if self.text.startswith("]", self.position):
            self.position += 1
            return
        index = 0
        while True:
            self.stack.append(f"[{index}]")
            self.value()
            self.stack.pop()
            index += 1
            self.skip()
            if self.text.startswith(",", self.position):
                self.position += 1
                continue
            if self.text.startswith("]", self.position):
                self.position += 1
                return
            raise ValueError(f"invalid JSON at offset {self.position}")

    def note_duplicate(self, name: str) -> None:
        path = "".join(self.stack) + "." + name if self.stack else name
        if path not in self.duplicates and len(self.duplicates) < MAX_STRICT_ERRORS:
            self.duplicates.append(path)


class _Repeated(Exception):
    """A JSON object of the document repeats a key (:func:`_has_repeated_keys`)."""


def _no_repeats(pairs: list[tuple[str, Any]]) -> None:
    if len({name for name, _ in pairs}) != len(pairs):
        raise _Repeated


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def _has_repeated_keys(text: str) -> bool:
    """Whether any object of the JSON document ``text`` repeats a key, or it is not JSON.

    The C decoder hands each object's key-value pairs to a hook, so this costs a tenth of
    :class:`_Scanner`'s walk in Python; nearly every body repeats nothing, and only one
    that does (or that is not JSON: ``NaN`` too, which Python's decoder would take) needs
    the walk, which names the paths or raises.
    """
    try:
        json.loads(text, object_pairs_hook=_no_repeats, parse_constant=_not_json)
    except (_Repeated, ValueError):
        return True
    return False


def duplicate_fields(body: str | bytes) -> list[str]:
    """The paths of the keys repeated in a JSON document, as the strict decoder names them.

    Raises ``ValueError`` when ``body`` is not JSON (the decode fails before this matters).
    """
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    if not _has_repeated_keys(text):
        return []
    scanner = _Scanner(text)
    scanner.value()
    scanner.skip()
    if scanner.position != len(text):
        raise ValueError(f"invalid JSON at offset {scanner.position}")
    return scanner.duplicates


def strict_errors(duplicates: Sequence[str], unknown: Sequence[str]) -> list[str]:
    """The strict decoding errors of a body: its duplicate fields, then the unknown fields."""
    return ([f"duplicate field {fe.go_quote(path)}" for path in duplicates]
            + [f"unknown field {fe.go_quote(path)}" for path in unknown])


def strict_decoding_message(errors: Sequence[str]) -> str:
    """``runtime.strictDecodingError.Error()``."""
    return "strict decoding error: " + ", ".join(errors)


def decode_error_message(kind: str, version: str, detail: str) -> str:
    """The 400 BadRequest message of a body that failed to decode (``transformDecodeError``)."""
    return f"{kind} in version {fe.go_quote(version)} cannot be handled as a {kind}: {detail}"


def strict_decoding_warnings(errors: Sequence[str]) -> list[str]:
    """The ``Warning`` texts of ``fieldValidation=Warn``: one per strict error, as worded."""
    return list(errors)


def patch_strict_error(patched: Mapping[str, Any], errors: Sequence[str]) -> fe.FieldError:
    """The field error of a patch refused by ``fieldValidation=Strict`` (``patch.go``).

    The caller answers ``fielderrors.invalid_error("", "", "", [this])``: a 422 whose
    message starts ``  "" is invalid: patch: Invalid value: "{…}"``.
    """
    return fe.invalid("patch", go_json(patched), strict_decoding_message(errors))


__all__ = [
    "MAX_STRICT_ERRORS",
    "decode_error_message",
    "duplicate_fields",
    "patch_strict_error",
    "strict_decoding_message",
    "strict_decoding_warnings",
    "strict_errors",
]
