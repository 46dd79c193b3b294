"""DNS name checks with apimachinery 1.32's messages, for CRD names, groups and versions.

apimachinery v0.32.9 pkg/util/validation/validation.go (``IsDNS1035Label``,
``IsDNS1123Subdomain``, ``RegexError``, ``MaxLenError``) and pkg/api/validation/generic.go
(``NameIsDNSSubdomain``, ``maskTrailingDash``). Lengths are in bytes, as Go's ``len``.
"""

from __future__ import annotations

import re
from typing import Final

_DNS1123_LABEL_FMT: Final = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT: Final = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT: Final = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN: Final = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL: Final = re.compile(_DNS1035_LABEL_FMT)
_SUBDOMAIN_MESSAGE: Final = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character")
_DNS1035_MESSAGE: Final = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character")


def regex_error(message: str, fmt: str, *examples: str) -> str:
    """``RegexError``: the rule, examples, and the regular expression it checks."""
    if not examples:
        return f"{message} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def max_len_error(length: int) -> str:
    """``MaxLenError``."""
    return f"must be no more than {length} characters"


def is_dns1035_label(value: str) -> list[str]:
    """``IsDNS1035Label``: at most 63 bytes, ``[a-z]([-a-z0-9]*[a-z0-9])?``."""
    errors = []
    if len(value.encode()) > 63:
        errors.append(max_len_error(63))
    if not _DNS1035_LABEL.fullmatch(value):
        errors.append(regex_error(_DNS1035_MESSAGE, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errors


def is_dns1123_subdomain(value: str) -> list[str]:
    """``IsDNS1123Subdomain``: at most 253 bytes of dot-separated RFC 1123 labels."""
    errors = []
    if len(value.encode()) > 253:
        errors.append(max_len_error(253))
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errors.append(regex_error(_SUBDOMAIN_MESSAGE, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errors


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    """``NameIsDNSSubdomain``: a generateName prefix may end in a dash."""
    if prefix and len(name.encode()) > 1 and name.endswith("-"):
        # maskTrailingDash keeps name[:len(name)-2]: it drops the character before the
        # dash too. Reproduced, since it decides which prefixes pass.
        name = name[:-2] + "a"
    return is_dns1123_subdomain(name)


__all__ = ["is_dns1035_label", "is_dns1123_subdomain", "max_len_error",
           "name_is_dns_subdomain", "regex_error"]
