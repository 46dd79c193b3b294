"""Compiling CRD rules: parse and type-check against the schema, worded as cel-go words it.

apiextensions-apiserver v0.32.9 ``pkg/apiserver/schema/cel/compilation.go``
(``Compile``/``compileRule``) compiles each rule with cel-go v0.22.0 in an environment
declaring ``self`` (and ``oldSelf``, optional when ``optionalOldSelf``) as the node's
type. The checker here is Google's C++ CEL (``cel-expr-python``); its messages differ
from cel-go's in a few places, and :func:`_normalise` rewrites them (each rewrite says
which cel-go message it produces, from cel-go v0.22.0 ``checker/errors.go``). Errors are
then rendered as cel-go's ``common/error.go`` ``ToDisplayString`` renders them, sorted
by position as ``common/errors.go`` sorts them.

cel-go's AST validators that Kubernetes enables since 1.29 (``base.go``:
``ValidateDurationLiterals``, ``ValidateTimestampLiterals``, ``ValidateRegexLiterals``,
``ValidateHomogeneousAggregateLiterals``; cel-go ``cel/validator.go``) run on the
checked tree here, as do two checks the C++ checker lacks: ``ext.Strings`` version 2
has no ``reverse`` (version 3).

Known differences, all rare in CRD rules: cross-type numeric ordering (``1 < 2.0``),
which cel-go accepts since Kubernetes 1.28, is refused; ``format.named`` and
``<Format>.validate`` are declared without their ``optional`` result type; for
``optionalOldSelf`` rules ``oldSelf`` is compiled as ``optional.of(oldSelf)``, so
columns of errors after it in the same line are shifted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Final

from cel_expr_python import cel
from cel_expr_python.ext import ext_optional, ext_strings

from headwater_dev.cel import checked as ast
from headwater_dev.cel import declarations, library, values

SCOPED_VAR: Final = "self"
OLD_SCOPED_VAR: Final = "oldSelf"
# The type name compilation.go generateUniqueSelfTypeName gives `self` is
# `selfType<time.Now().Nanosecond()>`: a different number every time. A fixed one here.
SELF_TYPE_NAME: Final = "selfType0"


@dataclass(frozen=True)
class CompileError:
    """Why a rule or messageExpression did not compile (``compilationResult.Error``)."""

    detail: str


@dataclass
class Compiled:
    """A checked rule: its tree, whether it reads ``oldSelf``, and which of ``self``'s
    fields it can read (:func:`_self_fields`)."""

    tree: ast.Checked
    uses_old_self: bool
    optional_old_self: bool = False
    self_fields: frozenset[str] | None = None


@dataclass
class Environment:
    """The CEL environment of one schema node: ``self`` and ``oldSelf`` of its type."""

    decl: declarations.Decl
    protos: declarations.ProtoTypes = field(init=False)
    signature: str = field(init=False)
    _compiled: dict[tuple[str, str, bool], Compiled | CompileError] = field(
        init=False, default_factory=dict, repr=False)
    """Compilations already made (rules are compiled on every write of a resource)."""

    def __post_init__(self) -> None:
        declarations.assign_type_names(self.decl, SELF_TYPE_NAME)
        self.protos, self.signature = declarations.descriptor_pool(self.decl)

    @cached_property
    def env(self) -> cel.Env:
        self_type = cel_type(self.signature)
        return cel.NewEnv(
            descriptor_pool=self.protos.pool,
            variables={SCOPED_VAR: self_type, OLD_SCOPED_VAR: self_type},
            functions=library.function_decls(),
            extensions=[ext_strings.ExtStrings(), ext_optional.ExtOptional()])

    def compile(self, source: str, *, optional_old_self: bool = False
                ) -> ast.Checked | CompileError:
        """Parse and check ``source``; the tree, or cel-go's ``issues.String()``."""
        text = _optional_old_self(source) if optional_old_self else source
        try:
            expression = self.env.compile(text)
        except RuntimeError as error:
            return CompileError(self._render(source, _parse_errors(str(error))))
        tree = ast.decode(expression.serialize(), source)
        problems = list(_validate(tree))
        if problems:
            return CompileError(self._render(source, problems))
        return tree

    def compile_rule(self, rule: str, *, optional_old_self: bool) -> Compiled | CompileError:
        """``compileRule``'s first half: a boolean expression (memoized)."""
        key = ("rule", rule, optional_old_self)
        if key not in self._compiled:
            self._compiled[key] = self._compile_rule(rule, optional_old_self=optional_old_self)
        return self._compiled[key]

    def _compile_rule(self, rule: str, *, optional_old_self: bool) -> Compiled | CompileError:
        tree = self.compile(rule, optional_old_self=optional_old_self)
        if isinstance(tree, CompileError):
            return CompileError("compilation failed: " + tree.detail)
        if tree.root.type.kind != "bool":
            return CompileError("cel expression must evaluate to a bool")
        return Compiled(tree, _uses_old_self(tree.root), optional_old_self,
                        _self_fields(tree.root))

    def compile_message(self, expression: str, *, optional_old_self: bool
                        ) -> Compiled | CompileError:
        """``compileRule``'s messageExpression half: a string expression (memoized)."""
        key = ("message", expression, optional_old_self)
        if key not in self._compiled:
            self._compiled[key] = self._compile_message(expression,
                                                        optional_old_self=optional_old_self)
        return self._compiled[key]

    def _compile_message(self, expression: str, *, optional_old_self: bool
                         ) -> Compiled | CompileError:
        tree = self.compile(expression, optional_old_self=optional_old_self)
        if isinstance(tree, CompileError):
            return CompileError("messageExpression compilation failed: " + tree.detail)
        if tree.root.type.kind != "string":
            return CompileError("messageExpression must evaluate to a string")
        return Compiled(tree, _uses_old_self(tree.root), optional_old_self,
                        _self_fields(tree.root))

    def _render(self, source: str, problems: list[_Problem]) -> str:
        rendered = []
        for problem in sorted(problems, key=lambda p: (p.line, p.column)):
            message = _normalise(problem.message, self.protos.display_names)
            rendered.append(_display(source, problem.line, problem.column, message))
        return "\n".join(rendered)


def cel_type(signature: str) -> cel.Type:
    """The checker's type for a signature of ``declarations`` (``list(string)``,
    ``map(string, hwcel.T1)``, ``hwcel.T0``, ``int``…).

    Lists and maps are built with ``Type.List``/``Type.Map``: the type ``cel.Type``
    parses from ``"list(string)"`` carries the name but not the kind, and the checker
    then refuses a rule on a list or map node that ranges over ``self``
    (``self.all(k, …)``: "cannot be the range of a comprehension"), which cel-go, and so
    the API server, accepts.
    """
    for prefix, build in (("list(", _list_type), ("map(string, ", _map_type)):
        if signature.startswith(prefix) and signature.endswith(")"):
            return build(signature[len(prefix):-1])
    return cel.Type(signature)


def _list_type(element: str) -> cel.Type:
    return cel.Type.List(cel_type(element))


def _map_type(value: str) -> cel.Type:
    return cel.Type.Map(cel.Type.STRING, cel_type(value))


# --- errors ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Problem:
    line: int
    column: int  # 0-based, as cel-go's Location
    message: str


_ERROR_HEAD: Final = re.compile(r"ERROR: <input>:(-?\d+):(-?\d+): ")


def _parse_errors(text: str) -> list[_Problem]:
    """The errors in the C++ checker's status message (``ERROR: <input>:l:c: msg`` and
    its two snippet lines, each)."""
    text = re.sub(r"^[A-Z_]+: ", "", text)
    text = re.sub(r" \[[A-Z_]+\]$", "", text)
    problems = []
    heads = list(_ERROR_HEAD.finditer(text))
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        message = text[head.end():end].split("\n |", 1)[0].rstrip("\n")
        line, column = int(head.group(1)), int(head.group(2))
        if line < 0:
            # The parser's trailer after a syntax error (`<<nil>> parsetree`): cel-go has none.
            continue
        problems.append(_Problem(line, column - 1, message))
    return problems


def _normalise(message: str, display_names: dict[str, str]) -> str:
    """The C++ checker's wording, rewritten to cel-go's (checker/errors.go)."""
    # cel-go undefinedField: "undefined field '%s'"
    message = re.sub(r"^(undefined field '[^']*') not found in struct '[^']*'$", r"\1", message)
    # cel-go typeDoesNotSupportFieldSelection: "type '%s' does not support field selection"
    message = re.sub(r"^expression of type '(.*)' cannot be the operand of a select operation$",
                     r"type '\1' does not support field selection", message)
    # cel-go parser/macro.go makeQuantifier/MakeMap/MakeFilter: "argument must be a simple name"
    message = re.sub(r"^\w+\(\) variable name must be a simple identifier$",
                     "argument must be a simple name", message)
    # cel-go FormatCELType prints well-known types by their CEL names.
    message = message.replace("google.protobuf.Timestamp", "timestamp")
    message = message.replace("google.protobuf.Duration", "duration")
    message = re.sub(r"optional_type<[^>]*>\(", "optional_type(", message)
    for proto_name, display in display_names.items():
        message = re.sub(rf"\b{re.escape(proto_name)}\b", display, message)
    return message


def _display(source: str, line: int, column: int, message: str) -> str:
    """cel-go ``common.Error.ToDisplayString``: the message, the line, a caret under it."""
    result = f"ERROR: <input>:{line}:{column + 1}: {message}"
    lines = source.split("\n")
    if 1 <= line <= len(lines):
        snippet = lines[line - 1].replace("\t", " ")
        marks = "".join("\uff0e" if len(c.encode()) > 1 else "." for c in snippet[:column])
        at = snippet[column:column + 1]
        marks += "\uff3e" if at and len(at.encode()) > 1 else "^"
        result += f"\n | {snippet}\n | {marks}"
    return result


def _location(tree: ast.Checked, node_id: int) -> tuple[int, int]:
    offset = tree.positions.get(node_id, 0)
    before = tree.source[:offset]
    line = before.count("\n") + 1
    return line, offset - (before.rfind("\n") + 1)


# --- the AST validators (cel-go cel/validator.go) -------------------------------------
def _walk(node: ast.Node) -> Iterator[ast.Node]:
    yield node
    for child in (node.target, node.iter_range, node.accu_init, node.loop_condition,
                  node.loop_step, node.result, *node.args):
        if child is not None:
            yield from _walk(child)
    for key, value, _ in node.entries:
        yield from _walk(key)
        yield from _walk(value)


def _validate(tree: ast.Checked) -> Iterator[_Problem]:
    for node in _walk(tree.root):
        if node.kind == "call":
            yield from _validate_call(tree, node)
        elif node.kind == "list":
            yield from _homogeneous(tree, [(e, i in node.optional_indices)
                                           for i, e in enumerate(node.args)])
        elif node.kind == "map":
            yield from _homogeneous(tree, [(k, False) for k, _, _ in node.entries])
            yield from _homogeneous(tree, [(v, o) for _, v, o in node.entries])


def _validate_call(tree: ast.Checked, node: ast.Node) -> Iterator[_Problem]:
    if node.name == "reverse" and "string_reverse" in node.overloads:
        # ext.Strings version 2 (Kubernetes 1.29+) has no reverse: an undeclared function.
        yield _Problem(*_location(tree, node.id),
                       "undeclared reference to 'reverse' (in container '')")
        return
    if node.name not in ("duration", "timestamp", "matches") or not node.args:
        return
    literal = node.args[0]
    if literal.kind != "const" or not isinstance(literal.value, str):
        return
    if not _literal_valid(node.name, literal.value):
        yield _Problem(*_location(tree, literal.id), f"invalid {node.name} argument")


def _literal_valid(function: str, text: str) -> bool:
    try:
        if function == "duration":
            values.parse_duration(text)
        elif function == "timestamp":
            values.parse_timestamp(text)
        else:
            values.compile_regex(text)
    except ValueError:
        return False
    return True


def _homogeneous(tree: ast.Checked, items: list[tuple[ast.Node, bool]]) -> Iterator[_Problem]:
    first: ast.CelType | None = None
    for node, optional in items:
        kind = node.type
        if optional and kind.params:
            kind = kind.params[0]
        if first is None:
            first = kind
            continue
        if not _equivalent(first, kind):
            yield _Problem(*_location(tree, node.id),
                           f"expected type '{format_type(first)}' but found "
                           f"'{format_type(kind)}'")
            return


def _equivalent(a: ast.CelType, b: ast.CelType) -> bool:
    if a.kind == "dyn" and b.kind == "dyn":
        return True
    return a == b


def format_type(t: ast.CelType) -> str:
    """cel-go ``FormatCELType``."""
    if t.kind in ("list", "map", "type") and t.params:
        inner = ", ".join(format_type(p) for p in t.params)
        return f"{t.kind}({inner})"
    if t.kind in ("message", "abstract"):
        return t.name
    if t.kind == "null":
        return "null"
    return t.kind


def _uses_old_self(node: ast.Node) -> bool:
    return any(n.kind == "ident" and n.name == OLD_SCOPED_VAR for n in _walk(node))


def _self_fields(root: ast.Node) -> frozenset[str] | None:
    """The fields (CEL-escaped) of ``self`` the expression selects or tests with ``has``,
    when ``self`` appears only as the operand of such selections; None when it appears
    anywhere else (compared, passed to a function, iterated), where all of it may be read.
    An identifier ``self`` bound by a comprehension counts too: a superset is safe."""
    fields: set[str] = set()
    selected: set[int] = set()
    for node in _walk(root):
        target = node.target
        if node.kind == "select" and target is not None and target.kind == "ident" and (
                target.name == SCOPED_VAR):
            fields.add(node.name)
            selected.add(id(target))
    for node in _walk(root):
        if node.kind == "ident" and node.name == SCOPED_VAR and id(node) not in selected:
            return None
    return frozenset(fields)


_OLD_SELF: Final = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\.\s*oldSelf\b)|"""
                              r"""\boldSelf\b""")


def _optional_old_self(source: str) -> str:
    """``oldSelf`` as the optional it is for an ``optionalOldSelf`` rule."""
    return _OLD_SELF.sub(lambda m: m.group(1) or "optional.of(oldSelf)", source)


__all__ = ["OLD_SCOPED_VAR", "SCOPED_VAR", "CompileError", "Compiled", "Environment",
           "format_type"]
