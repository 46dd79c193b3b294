"""Kubernetes' string formats (names, labels, keys, ports), worded as apimachinery words them.

Each ``is_*`` function returns the list of problems (empty when valid), exactly as
k8s.io/apimachinery v0.32.9 ``pkg/util/validation/validation.go`` does (``IsDNS1123Label``,
``IsDNS1123Subdomain``, ``IsQualifiedName``, ``IsValidLabelValue``, ``IsConfigMapKey``,
``IsEnvVarName``, ``IsCIdentifier``, ``IsValidPortName``, ``IsValidPortNum``, ...), and
the ``name_is_*`` functions are the ``ValidateNameFunc``s of ``pkg/api/validation/generic.go``
and ``pkg/api/validation/path/name.go``: ``(name, prefix) -> problems``, where ``prefix``
means the value is a ``generateName``. Lengths are in bytes, as Go's ``len`` counts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

NameRule = Callable[[str, bool], list[str]]

_QNAME_CHAR: Final = "[A-Za-z0-9]"
_QNAME_EXT_CHAR: Final = "[-A-Za-z0-9_.]"
QUALIFIED_NAME_FMT: Final = f"({_QNAME_CHAR}{_QNAME_EXT_CHAR}*)?{_QNAME_CHAR}"
_QUALIFIED_NAME_MSG: Final = ("must consist of alphanumeric characters, '-', '_' or '.', and "
                              "must start and end with an alphanumeric character")
QUALIFIED_NAME_MAX_LENGTH: Final = 63
LABEL_VALUE_FMT: Final = f"({QUALIFIED_NAME_FMT})?"
_LABEL_VALUE_MSG: Final = ("a valid label must be an empty string or consist of alphanumeric "
                           "characters, '-', '_' or '.', and must start and end with an "
                           "alphanumeric character")
LABEL_VALUE_MAX_LENGTH: Final = 63
DNS1123_LABEL_FMT: Final = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_MSG: Final = ("a lowercase RFC 1123 label must consist of lower case "
                             "alphanumeric characters or '-', and must start and end with an "
                             "alphanumeric character")
DNS1123_LABEL_MAX_LENGTH: Final = 63
DNS1123_SUBDOMAIN_FMT: Final = f"{DNS1123_LABEL_FMT}(\\.{DNS1123_LABEL_FMT})*"
_DNS1123_SUBDOMAIN_MSG: Final = ("a lowercase RFC 1123 subdomain must consist of lower case "
                                 "alphanumeric characters, '-' or '.', and must start and end "
                                 "with an alphanumeric character")
DNS1123_SUBDOMAIN_MAX_LENGTH: Final = 253
DNS1035_LABEL_FMT: Final = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_MSG: Final = ("a DNS-1035 label must consist of lower case alphanumeric "
                             "characters or '-', start with an alphabetic character, and end "
                             "with an alphanumeric character")
C_IDENTIFIER_FMT: Final = "[A-Za-z_][A-Za-z0-9_]*"
_C_IDENTIFIER_MSG: Final = ("a valid C identifier must start with alphabetic character or "
                            "'_', followed by a string of alphanumeric characters or '_'")
ENV_VAR_NAME_FMT: Final = "[-._a-zA-Z][-._a-zA-Z0-9]*"
_ENV_VAR_NAME_MSG: Final = ("a valid environment variable name must consist of alphabetic "
                            "characters, digits, '_', '-', or '.', and must not start with a "
                            "digit")
CONFIG_MAP_KEY_FMT: Final = "[-._a-zA-Z0-9]+"
_CONFIG_MAP_KEY_MSG: Final = ("a valid config key must consist of alphanumeric characters, "
                              "'-', '_' or '.'")
HTTP_HEADER_NAME_FMT: Final = "[-A-Za-z0-9]+"
_HTTP_HEADER_NAME_MSG: Final = "a valid HTTP header must consist of alphanumeric characters or '-'"


def _full(fmt: str) -> re.Pattern[str]:
    # Go's regexp "^...$": $ matches only at the very end (no trailing-newline leniency).
    return re.compile(f"(?:{fmt})\\Z")


_QUALIFIED_NAME_RE: Final = _full(QUALIFIED_NAME_FMT)
_LABEL_VALUE_RE: Final = _full(LABEL_VALUE_FMT)
_DNS1123_LABEL_RE: Final = _full(DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE: Final = _full(DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE: Final = _full(DNS1035_LABEL_FMT)
_C_IDENTIFIER_RE: Final = _full(C_IDENTIFIER_FMT)
_ENV_VAR_NAME_RE: Final = _full(ENV_VAR_NAME_FMT)
_CONFIG_MAP_KEY_RE: Final = _full(CONFIG_MAP_KEY_FMT)
_HTTP_HEADER_NAME_RE: Final = _full(HTTP_HEADER_NAME_FMT)
_PORT_NAME_CHARSET_RE: Final = _full("[-a-z0-9]+")


def byte_length(value: str) -> int:
    """Go's ``len(string)``: UTF-8 bytes."""
    return len(value.encode("utf-8"))


def max_len_error(length: int) -> str:
    """``MaxLenError``."""
    return f"must be no more than {length} characters"


def regex_error(message: str, fmt: str, *examples: str) -> str:
    """``RegexError``: the message, examples and the regex."""
    if not examples:
        return f"{message} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def empty_error() -> str:
    """``EmptyError``."""
    return "must be non-empty"


def inclusive_range_error(low: int, high: int) -> str:
    """``InclusiveRangeError``."""
    return f"must be between {low} and {high}, inclusive"


def is_qualified_name(value: str) -> list[str]:
    """``IsQualifiedName``: ``[prefix/]name``, the prefix a DNS subdomain."""
    errors: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("prefix part " + empty_error())
        else:
            errors.extend("prefix part " + msg for msg in is_dns1123_subdomain(prefix))
    else:
        return ["a qualified name " + regex_error(
            _QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errors.append("name part " + empty_error())
    elif byte_length(name) > QUALIFIED_NAME_MAX_LENGTH:
        errors.append("name part " + max_len_error(QUALIFIED_NAME_MAX_LENGTH))
    if not _QUALIFIED_NAME_RE.match(name):
        errors.append("name part " + regex_error(
            _QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc"))
    return errors


def is_valid_label_value(value: str) -> list[str]:
    """``IsValidLabelValue``: at most 63 characters of the qualified-name alphabet."""
    errors = []
    if byte_length(value) > LABEL_VALUE_MAX_LENGTH:
        errors.append(max_len_error(LABEL_VALUE_MAX_LENGTH))
    if not _LABEL_VALUE_RE.match(value):
        errors.append(regex_error(_LABEL_VALUE_MSG, LABEL_VALUE_FMT,
                                  "MyValue", "my_value", "12345"))
    return errors


def is_dns1123_label(value: str) -> list[str]:
    """``IsDNS1123Label``."""
    errors = []
    if byte_length(value) > DNS1123_LABEL_MAX_LENGTH:
        errors.append(max_len_error(DNS1123_LABEL_MAX_LENGTH))
    if not _DNS1123_LABEL_RE.match(value):
        if _DNS1123_SUBDOMAIN_RE.match(value):
            errors.append("must not contain dots")
        else:
            errors.append(regex_error(_DNS1123_LABEL_MSG, DNS1123_LABEL_FMT,
                                      "my-name", "123-abc"))
    return errors


def is_dns1123_subdomain(value: str) -> list[str]:
    """``IsDNS1123Subdomain``."""
    errors = []
    if byte_length(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errors.append(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errors.append(regex_error(_DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errors


def is_dns1035_label(value: str) -> list[str]:
    """``IsDNS1035Label``."""
    errors = []
    if byte_length(value) > DNS1123_LABEL_MAX_LENGTH:
        errors.append(max_len_error(DNS1123_LABEL_MAX_LENGTH))
    if not _DNS1035_LABEL_RE.match(value):
        errors.append(regex_error(_DNS1035_LABEL_MSG, DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errors


def is_c_identifier(value: str) -> list[str]:
    """``IsCIdentifier``."""
    if not _C_IDENTIFIER_RE.match(value):
        return [regex_error(_C_IDENTIFIER_MSG, C_IDENTIFIER_FMT, "my_name", "MY_NAME", "MyName")]
    return []


def _chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_env_var_name(value: str) -> list[str]:
    """``IsEnvVarName`` (1.32 default: ``RelaxedEnvironmentVariableValidation`` is off)."""
    errors = []
    if not _ENV_VAR_NAME_RE.match(value):
        errors.append(regex_error(_ENV_VAR_NAME_MSG, ENV_VAR_NAME_FMT,
                                  "my.env-name", "MY_ENV.NAME", "MyEnvName1"))
    return errors + _chdir_prefix(value)


def is_config_map_key(value: str) -> list[str]:
    """``IsConfigMapKey``: ConfigMap and Secret data keys."""
    errors = []
    if byte_length(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errors.append(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _CONFIG_MAP_KEY_RE.match(value):
        errors.append(regex_error(_CONFIG_MAP_KEY_MSG, CONFIG_MAP_KEY_FMT,
                                  "key.name", "KEY_NAME", "key-name"))
    return errors + _chdir_prefix(value)


def is_http_header_name(value: str) -> list[str]:
    """``IsHTTPHeaderName``."""
    if not _HTTP_HEADER_NAME_RE.match(value):
        return [regex_error(_HTTP_HEADER_NAME_MSG, HTTP_HEADER_NAME_FMT, "X-Header-Name")]
    return []


def is_valid_port_num(port: int) -> list[str]:
    """``IsValidPortNum``: 1-65535."""
    return [] if 1 <= port <= 65535 else [inclusive_range_error(1, 65535)]


def is_valid_port_name(port: str) -> list[str]:
    """``IsValidPortName``: an IANA service name."""
    errors = []
    if byte_length(port) > 15:
        errors.append(max_len_error(15))
    if not _PORT_NAME_CHARSET_RE.match(port):
        errors.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", port):
        errors.append("must contain at least one letter (a-z)")
    if "--" in port:
        errors.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errors.append("must not begin or end with a hyphen")
    return errors


MAX_INT32: Final = 2**31 - 1


def is_valid_user_id(uid: int) -> list[str]:
    """``IsValidUserID`` (and ``IsValidGroupID``): 0 to 2^31-1."""
    return [] if 0 <= uid <= MAX_INT32 else [inclusive_range_error(0, MAX_INT32)]


# --- ValidateNameFunc ----------------------------------------------------------------------
def _mask_trailing_dash(name: str) -> str:
    # generic.go maskTrailingDash: a generateName may end in '-'; it drops the last two
    # bytes and appends 'a' (sic), so "ab-" is checked as "aa".
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    """``NameIsDNSSubdomain``: pods, configmaps, secrets, serviceaccounts, leases, nodes."""
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    """``NameIsDNSLabel``: namespaces."""
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    """``NameIsDNS1035Label``: services."""
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


def name_is_path_segment(name: str, prefix: bool) -> list[str]:
    """``path.ValidatePathSegmentName``: custom resources and core/v1 events' names."""
    if not prefix:
        for illegal in (".", ".."):
            if name == illegal:
                return [f"may not be '{illegal}'"]
    return [f"may not contain '{bad}'" for bad in ("/", "%") if bad in name]


def no_name_rule(name: str, prefix: bool) -> list[str]:
    """Kinds whose names the API server does not check beyond the path."""
    return []
