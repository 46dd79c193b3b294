"""The Kubernetes CEL libraries a CRD rule may call, declared for the checker.

Kubernetes 1.32 compiles new CRD rules in the environment of compatibility version
1.31 (apiserver v0.32.9 ``pkg/cel/environment/base.go``, ``DefaultCompatibilityVersion``
is n-1): cel-go's standard library with cross-type numeric comparisons and optional
types, ``ext.Strings`` version 2, ``ext.Sets``, and the Kubernetes libraries in
``pkg/cel/library``: ``lists.go``, ``regex.go``, ``urls.go``, ``quantity.go``, ``ip.go``,
``cidr.go``, ``format.go`` (``authz.go`` needs an ``authorizer`` variable that CRD rules
do not have). Overload ids are Kubernetes' own: the cost estimator keys on them.

The C++ checker refuses further overloads of functions it already declares, so
``list.indexOf``/``list.lastIndexOf`` (strings have them) and ``string(<ip or cidr>)``
are not declared: rules using them are refused although Kubernetes accepts them.

Type parameters of generic overloads (``list(A)``) are declared as ``dyn``: the checker
then infers ``dyn`` where cel-go infers the element type, which only makes a type error
inside such a call surface at evaluation instead of at registration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from cel_expr_python import cel

T = cel.Type
_Adder = Callable[..., None]
QUANTITY: Final = "kubernetes.Quantity"
URL: Final = "kubernetes.URL"
IP: Final = "net.IP"
CIDR: Final = "net.IPNet"
FORMAT: Final = "kubernetes.NamedFormat"

# lists.go comparableTypes / summableTypes (name used in the overload id, type).
_COMPARABLE: Final = ("int", "uint", "double", "bool", "duration", "timestamp", "string",
                      "bytes")
_SUMMABLE: Final = ("int", "uint", "double", "duration")
_FORMAT_NAMES: Final = ("dns1123Label", "dns1123Subdomain", "dns1035Label", "qualifiedName",
                        "dns1123LabelPrefix", "dns1123SubdomainPrefix", "dns1035LabelPrefix",
                        "labelValue", "uri", "uuid", "byte", "date", "datetime")


def _t(name: str) -> cel.Type:
    return {"int": T.INT, "uint": T.UINT, "double": T.DOUBLE, "bool": T.BOOL,
            "duration": T.DURATION, "timestamp": T.TIMESTAMP, "string": T.STRING,
            "bytes": T.BYTES}.get(name) or T(name)


def _member(overload: str, args: list[cel.Type], result: cel.Type) -> cel.Overload:
    return cel.Overload(overload, result, args, is_member=True)


def _global(overload: str, args: list[cel.Type], result: cel.Type) -> cel.Overload:
    return cel.Overload(overload, result, args)


def function_decls() -> list[cel.FunctionDecl]:
    """Every Kubernetes library function, as ``cel.FunctionDecl``s."""
    decls: dict[str, list[cel.Overload]] = {}

    def add(name: str, *overloads: cel.Overload) -> None:
        decls.setdefault(name, []).extend(overloads)

    _lists(add)
    _regex(add)
    _urls(add)
    _quantity(add)
    _ip_cidr(add)
    _format(add)
    _sets(add)
    return [cel.FunctionDecl(name, overloads) for name, overloads in decls.items()]


def _lists(add: _Adder) -> None:
    for name in _COMPARABLE:
        lst = T.List(_t(name))
        add("isSorted", _member(f"list_{name}_is_sorted_bool", [lst], T.BOOL))
        add("max", _member(f"list_{name}_max_{name}", [lst], _t(name)))
        add("min", _member(f"list_{name}_min_{name}", [lst], _t(name)))
    for name in _SUMMABLE:
        add("sum", _member(f"list_{name}_sum_{name}", [T.List(_t(name))], _t(name)))
    # `list.indexOf`/`lastIndexOf` cannot be declared: the C++ checker refuses a second
    # declaration of the string functions of the same name (see the module docstring).


def _regex(add: _Adder) -> None:
    add("find", _member("string_find_string", [T.STRING, T.STRING], T.STRING))
    add("findAll",
        _member("string_find_all_string", [T.STRING, T.STRING], T.List(T.STRING)),
        _member("string_find_all_string_int", [T.STRING, T.STRING, T.INT], T.List(T.STRING)))


def _urls(add: _Adder) -> None:
    url = T(URL)
    add("url", _global("string_to_url", [T.STRING], url))
    for name, overload in (("getScheme", "url_get_scheme"), ("getHost", "url_get_host"),
                           ("getHostname", "url_get_hostname"), ("getPort", "url_get_port"),
                           ("getEscapedPath", "url_get_escaped_path")):
        add(name, _member(overload, [url], T.STRING))
    add("getQuery", _member("url_get_query", [url], T.Map(T.STRING, T.List(T.STRING))))
    add("isURL", _global("is_url_string", [T.STRING], T.BOOL))


def _quantity(add: _Adder) -> None:
    q = T(QUANTITY)
    add("quantity", _global("string_to_quantity", [T.STRING], q))
    add("isQuantity", _global("is_quantity_string", [T.STRING], T.BOOL))
    # quantity.go declares sign as a global overload, so only `sign(q)` type-checks.
    add("sign", _global("quantity_sign", [q], T.INT))
    add("isGreaterThan", _member("quantity_is_greater_than", [q, q], T.BOOL))
    add("isLessThan", _member("quantity_is_less_than", [q, q], T.BOOL))
    add("compareTo", _member("quantity_compare_to", [q, q], T.INT))
    add("asApproximateFloat", _member("quantity_get_float", [q], T.DOUBLE))
    add("asInteger", _member("quantity_get_int", [q], T.INT))
    add("isInteger", _member("quantity_is_integer", [q], T.BOOL))
    add("add", _member("quantity_add", [q, q], q), _member("quantity_add_int", [q, T.INT], q))
    add("sub", _member("quantity_sub", [q, q], q), _member("quantity_sub_int", [q, T.INT], q))


def _ip_cidr(add: _Adder) -> None:
    ip, cidr = T(IP), T(CIDR)
    add("ip", _global("string_to_ip", [T.STRING], ip), _member("cidr_ip", [cidr], ip))
    add("family", _member("ip_family", [ip], T.INT))
    add("ip.isCanonical", _global("ip_is_canonical", [T.STRING], T.BOOL))
    for name, overload in (("isUnspecified", "ip_is_unspecified"),
                           ("isLoopback", "ip_is_loopback"),
                           ("isLinkLocalMulticast", "ip_is_link_local_multicast"),
                           ("isLinkLocalUnicast", "ip_is_link_local_unicast"),
                           ("isGlobalUnicast", "ip_is_global_unicast")):
        add(name, _member(overload, [ip], T.BOOL))
    add("isIP", _global("is_ip", [T.STRING], T.BOOL))
    # `string(ip)`/`string(cidr)` cannot be declared: `string` is a builtin of the
    # C++ checker, which refuses a second declaration.
    add("cidr", _global("string_to_cidr", [T.STRING], cidr))
    add("containsIP", _member("cidr_contains_ip_string", [cidr, T.STRING], T.BOOL),
        _member("cidr_contains_ip_ip", [cidr, ip], T.BOOL))
    add("containsCIDR", _member("cidr_contains_cidr_string", [cidr, T.STRING], T.BOOL),
        _member("cidr_contains_cidr", [cidr, cidr], T.BOOL))
    add("prefixLength", _member("cidr_prefix_length", [cidr], T.INT))
    add("masked", _member("cidr_masked", [cidr], cidr))
    add("isCIDR", _global("is_cidr", [T.STRING], T.BOOL))


def _format(add: _Adder) -> None:
    fmt = T(FORMAT)
    # format.named returns optional(Format), which the Python binding cannot declare:
    # it is declared as returning the format, and `.value()`/`.hasValue()` on it will
    # not type-check (see the module docstring of .compiler).
    for name in _FORMAT_NAMES:
        add(f"format.{name}", _global(f"format-{name}", [], fmt))
    add("validate", _member("format-validate", [fmt, T.STRING], T.List(T.STRING)))


def _sets(add: _Adder) -> None:
    lst = T.List(T.DYN)
    add("sets.contains", _global("list_sets_contains_list", [lst, lst], T.BOOL))
    add("sets.equivalent", _global("list_sets_equivalent_list", [lst, lst], T.BOOL))
    add("sets.intersects", _global("list_sets_intersects_list", [lst, lst], T.BOOL))


__all__ = ["CIDR", "FORMAT", "IP", "QUANTITY", "URL", "function_decls"]
