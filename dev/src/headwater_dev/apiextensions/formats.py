"""The string ``format``s a custom resource's schema is checked against, as on a server.

apiextensions-apiserver v0.32.9 keeps only these formats and *drops every other one*
before validating (``pkg/apiserver/validation/formats.go``
``StripUnsupportedFormatsPostProcess``, the name compared without dashes):
``bsonobjectid``, ``uri``, ``email``, ``hostname``, ``ipv4``, ``ipv6``, ``cidr``,
``mac``, ``uuid``, ``uuid3``, ``uuid4``, ``uuid5``, ``isbn``, ``isbn10``, ``isbn13``,
``creditcard``, ``ssn``, ``hexcolor``, ``rgbcolor``, ``byte``, ``password``, ``date``,
``duration`` and ``datetime`` (``date-time``). So ``int32``, ``int64``, ``float``,
``double`` (and any typo) constrain nothing: a CRD field ``type: integer, format:
int32`` accepts ``2147483648``.

Each supported format is checked as kube-openapi's default registry checks it
(kube-openapi 32ad38e42d3f ``pkg/validation/strfmt``, with govalidator f61b66f89f4a and
Go's ``net``, ``net/url``, ``net/mail`` and ``time`` parsers), ported here:

* ``date-time``: ``strfmt.IsDateTime``: a valid ``2006-01-02`` date, ``T`` (either
  case), then ``hh:mm:ss`` (optional fraction) and ``Z``/``±hh:mm``;
* ``ipv4``: ``k8s.io/utils/net.ParseIPSloppy`` (leading zeros allowed) and a dot;
  ``ipv6``: Go's strict ``net.ParseIP`` and a colon; ``cidr``: ``ParseCIDRSloppy``;
* ``uri``: ``net/url.ParseRequestURI``; ``email``: ``net/mail.ParseAddress`` (address,
  or ``Name <address>``; the group syntax is not accepted here).

Regular expressions run on RE2 (``google-re2``), the engine Go's ``regexp`` implements.
"""

from __future__ import annotations

import binascii
import functools
import ipaddress
import re
import unicodedata
from collections.abc import Callable
from typing import Any, Final

import re2

from headwater_dev.apiextensions.objectmeta import days_in_month

SUPPORTED_FORMATS: Final = frozenset({
    "bsonobjectid", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid",
    "uuid3", "uuid4", "uuid5", "isbn", "isbn10", "isbn13", "creditcard", "ssn", "hexcolor",
    "rgbcolor", "byte", "password", "date", "duration", "datetime"})


def normalize(name: str) -> str:
    """Format names compare without dashes (``strfmt.DefaultNameNormalizer``)."""
    return name.replace("-", "")


def effective_format(schema_format: Any) -> str:
    """The format the validator sees: ``""`` for one the server strips."""
    if schema_format is None:
        return ""
    if not isinstance(schema_format, str) or normalize(schema_format) not in SUPPORTED_FORMATS:
        return ""
    return schema_format


class RegexError(ValueError):
    """A pattern Go's ``regexp`` cannot compile; ``str()`` is Go's ``syntax.Error`` text."""


# RE2's words for a syntax error, and Go's (regexp/syntax ErrorCode) for the same.
_GO_SYNTAX_ERRORS: Final = {
    "no argument for repetition operator": "missing argument to repetition operator",
    "missing )": "missing closing )",
    "missing ]": "missing closing ]",
    "bad repetition operator": "invalid nested repetition operator",
    "invalid repetition size": "invalid repeat count",
    "invalid named capture group": "invalid named capture",
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "trailing \\": "trailing backslash at end of expression",
}


def _go_syntax_error(re2_message: str) -> str:
    code, _, fragment = re2_message.partition(": ")
    if code == "trailing \\":
        fragment = ""
    return f"error parsing regexp: {_GO_SYNTAX_ERRORS.get(code, code)}: `{fragment}`"


_OPTIONS: Final = re2.Options()
_OPTIONS.log_errors = False


@functools.lru_cache(maxsize=512)
def go_regexp(pattern: str) -> Any:
    """A compiled RE2 (Go ``regexp``) pattern; raises :class:`RegexError` when it is invalid."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as error:
        detail = error.args[0] if error.args else b""
        text = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
        raise RegexError(_go_syntax_error(text)) from None


MEMO_MAX_TEXT: Final = 256
"""Texts up to this long have their verdicts remembered (:func:`go_regexp_matches`,
:func:`validates`): a write checks the same timestamps, names and labels as the writes
before it (every Schedule of a cron fleet says the same ``lastScheduleTime``), and each
verdict is a pure function of pattern (or format) and text."""
_MEMO_ENTRIES: Final = 8192
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def go_regexp_matches(pattern: str, text: str) -> bool:
    """Go's ``regexp.MatchString``: a match anywhere, unless the pattern anchors it."""
    if len(text) <= MEMO_MAX_TEXT:
        return _remembered_match(pattern, text)
    return _go_regexp_matches(pattern, text)


@functools.lru_cache(maxsize=_MEMO_ENTRIES)
def _remembered_match(pattern: str, text: str) -> bool:
    return _go_regexp_matches(pattern, text)


def _go_regexp_matches(pattern: str, text: str) -> bool:
    if _SURROGATE.search(text):
        # Go's JSON decoder turns a lone surrogate into U+FFFD before any check sees it.
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return go_regexp(pattern).search(text) is not None


# --- dates and times --------------------------------------------------------------------
_DATE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_TIME_OF_DAY: Final = r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$"


def is_date(text: str) -> bool:
    """``time.Parse("2006-01-02", text)`` succeeds."""
    match = _DATE.fullmatch(text)
    if match is None:
        return False
    year, month, day = (int(part) for part in match.groups())
    return 1 <= month <= 12 and 1 <= day <= days_in_month(year, month)


def is_date_time(text: str) -> bool:
    """``strfmt.IsDateTime``."""
    if len(text) < 4:
        return False
    parts = text.lower().split("t")
    if len(parts) < 2 or not is_date(parts[0]):
        return False
    match = go_regexp(_TIME_OF_DAY).search(parts[1])
    if match is None:
        return False
    hour, minute, second = (str(match.group(n)) for n in (1, 2, 3))
    return hour <= "23" and minute <= "59" and second <= "59"


_SCALA_DURATION: Final = r"((\d+)\s*([A-Za-zµ]+))"
_TIME_UNITS: Final = (("ns", "nano"), ("us", "µs", "micro"), ("ms", "milli"), ("s", "sec"),
                      ("m", "min"), ("h", "hr", "hour"), ("d", "day"), ("w", "wk", "week"))
_GO_UNITS: Final = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6,
                    "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_GO_COMPONENT: Final = re.compile(r"([0-9]*)(\.([0-9]*))?([^0-9.]*)")


def is_go_duration(text: str) -> bool:
    """``time.ParseDuration`` succeeds (units ns to h, at most 2^63-1 ns)."""
    rest = text[1:] if text[:1] in ("-", "+") else text
    if rest == "0":
        return True
    if not rest:
        return False
    total = 0
    while rest:
        match = _GO_COMPONENT.match(rest)
        assert match is not None
        whole, dot, fraction, unit = match.group(1), match.group(2), match.group(3), match.group(4)
        if (not whole and not fraction) or unit not in _GO_UNITS or (dot and not whole and (
                not fraction)):
            return False
        if whole and int(whole) > 2**63:
            return False
        scale = _GO_UNITS[unit]
        value = int(whole or "0")
        if value > 2**63 // scale:
            return False
        total += value * scale + (int(fraction[:19]) * scale // 10 ** len(fraction[:19])
                                  if fraction else 0)
        if total > 2**63:
            return False
        rest = rest[match.end():]
    return total <= 2**63 - 1 or text.startswith("-")


def is_duration(text: str) -> bool:
    """``strfmt.IsDuration``: Go's ``time.ParseDuration``, else the Scala-like forms."""
    if is_go_duration(text):
        return True
    understood = False
    for match in go_regexp(_SCALA_DURATION).finditer(text):
        if int(match.group(2)) > 2**63 - 1:
            return False  # strconv.Atoi fails, and ParseDuration returns that error
        unit = match.group(3).strip().lower()
        for variants in _TIME_UNITS:
            last = len(variants) - 1
            if any((index == last and unit.startswith(variant))
                   or variant.casefold() == unit.casefold()
                   for index, variant in enumerate(variants)):
                understood = True
    return understood


# --- network addresses ------------------------------------------------------------------
def _dtoi(text: str) -> tuple[int, int] | None:
    """Go's ``dtoi``: a decimal prefix (value, length), or None."""
    digits = re.match(r"[0-9]+", text)
    if digits is None:
        return None
    return int(digits.group()), digits.end()


def _parse_ipv4_sloppy(text: str) -> bool:
    rest = text
    for part in range(4):
        if not rest:
            return False
        if part:
            if rest[0] != ".":
                return False
            rest = rest[1:]
        number = _dtoi(rest)
        if number is None or number[0] > 0xFF:
            return False
        rest = rest[number[1]:]
    return rest == ""


def _xtoi(text: str) -> tuple[int, int] | None:
    digits = re.match(r"[0-9A-Fa-f]+", text)
    if digits is None:
        return None
    return int(digits.group(), 16), digits.end()


def _parse_ipv6_sloppy(text: str) -> bool:
    """Go 1.16's ``parseIPv6`` (what ``ParseIPSloppy`` keeps): embedded IPv4 sloppy too."""
    rest, groups, ellipsis = text, 0, -1
    if rest.startswith("::"):
        ellipsis, rest = 0, rest[2:]
        if not rest:
            return True
    while groups < 16:
        number = _xtoi(rest)
        if number is None or number[0] > 0xFFFF:
            return False
        if number[1] < len(rest) and rest[number[1]] == ".":
            if (ellipsis < 0 and groups != 12) or groups + 4 > 16 or (
                    not _parse_ipv4_sloppy(rest)):
                return False
            rest, groups = "", groups + 4
            break
        groups += 2
        rest = rest[number[1]:]
        if not rest:
            break
        if rest[0] != ":" or len(rest) == 1:
            return False
        rest = rest[1:]
        if rest[0] == ":":
            if ellipsis >= 0:
                return False
            ellipsis, rest = groups, rest[1:]
            if not rest:
                break
    if rest:
        return False
    return ellipsis >= 0 if groups < 16 else ellipsis < 0


def parse_ip_sloppy(text: str) -> bool:
    """``netutils.ParseIPSloppy(text) != nil``."""
    for char in text:
        if char == ".":
            return _parse_ipv4_sloppy(text)
        if char == ":":
            return _parse_ipv6_sloppy(text)
    return False


def is_ipv4(text: str) -> bool:
    """The ``ipv4`` format."""
    return parse_ip_sloppy(text) and "." in text


def parse_ip_strict(text: str) -> bool:
    """Go's ``net.ParseIP(text) != nil`` (``netip.ParseAddr``, no zone, no leading zeros)."""
    if "%" in text:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_ipv6(text: str) -> bool:
    """The ``ipv6`` format: Go's ``net.ParseIP`` and a colon."""
    return ":" in text and parse_ip_strict(text)


def is_cidr(text: str) -> bool:
    """``netutils.ParseCIDRSloppy`` succeeds."""
    address, slash, mask = text.partition("/")
    if not slash:
        return False
    if _parse_ipv4_sloppy(address):
        bits = 32
    elif _parse_ipv6_sloppy(address):
        bits = 128
    else:
        return False
    number = _dtoi(mask)
    return number is not None and number[1] == len(mask) and number[0] <= bits


def _xtoi2(text: str, separator: str) -> bool:
    if len(text) > 2 and text[2] != separator:
        return False
    return re.fullmatch(r"[0-9A-Fa-f]{2}", text[:2]) is not None


def is_mac(text: str) -> bool:
    """``net.ParseMAC`` succeeds (6, 8 or 20 octets, ``:``/``-`` or dotted form)."""
    if len(text) < 14:
        return False
    if text[2] in ":-":
        if (len(text) + 1) % 3:
            return False
        count = (len(text) + 1) // 3
        return count in (6, 8, 20) and all(
            _xtoi2(text[3 * i:], text[2]) for i in range(count))
    if text[4] == ".":
        if (len(text) + 1) % 5:
            return False
        count = 2 * (len(text) + 1) // 5
        return count in (6, 8, 20) and all(
            _xtoi2(text[5 * i:5 * i + 2], "") and _xtoi2(text[5 * i + 2:], text[4])
            for i in range(count // 2))
    return False


# --- URIs (net/url.ParseRequestURI) ------------------------------------------------------
_HOST_SAFE: Final = frozenset("!$&'()*+,;=:[]<>\"-_.~")
_USERINFO_SAFE: Final = frozenset("-._:~!$&'()*+,;=%@")


def _valid_escapes(text: str, mode: str) -> bool:
    """``url.unescape``'s checks: ``%XX`` well formed; hosts allow few characters."""
    index = 0
    while index < len(text):
        char = text[index]
        if char == "%":
            escape = text[index:index + 3]
            if re.fullmatch(r"%[0-9A-Fa-f]{2}", escape) is None:
                return False
            if mode == "host" and int(escape[1], 16) < 8 and escape != "%25":
                return False
            if mode == "zone":
                byte = int(escape[1:], 16)
                if escape != "%25" and byte != 0x20 and _host_must_escape(chr(byte)):
                    return False
            index += 3
            continue
        if mode in ("host", "zone") and ord(char) < 0x80 and _host_must_escape(char):
            return False
        index += 1
    return True


def _host_must_escape(char: str) -> bool:
    return not (char.isascii() and char.isalnum()) and char not in _HOST_SAFE


def _valid_port(port: str) -> bool:
    return port == "" or (port[0] == ":" and all("0" <= c <= "9" for c in port[1:]))


def _valid_host(host: str) -> bool:
    if host.startswith("["):
        close = host.rfind("]")
        if close < 0 or not _valid_port(host[close + 1:]):
            return False
        zone = host[:close].find("%25")
        if zone >= 0:
            return (_valid_escapes(host[:zone], "host") and _valid_escapes(host[zone:close], "zone")
                    and _valid_escapes(host[close:], "host"))
    elif (colon := host.rfind(":")) >= 0 and not _valid_port(host[colon:]):
        return False
    return _valid_escapes(host, "host")


def _valid_authority(authority: str) -> bool:
    at = authority.rfind("@")
    if not _valid_host(authority[at + 1:]):
        return False
    userinfo = authority[:at] if at >= 0 else ""
    return all((c.isascii() and c.isalnum()) or c in _USERINFO_SAFE for c in userinfo) and (
        _valid_escapes(userinfo, "userinfo"))


def is_request_uri(text: str) -> bool:
    """``url.ParseRequestURI`` succeeds (an absolute URI, or an absolute path)."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text) or text == "":
        return False
    if text == "*":
        return True
    scheme, rest = "", text
    for index, char in enumerate(text):
        if char.isascii() and char.isalpha():
            continue
        if char.isascii() and (char.isdigit() or char in "+-."):
            if index == 0:
                break
            continue
        if char == ":":
            if index == 0:
                return False  # missing protocol scheme
            scheme, rest = text[:index], text[index + 1:]
        break
    if not (rest.endswith("?") and rest.count("?") == 1):
        rest = rest.partition("?")[0]
    else:
        rest = rest[:-1]
    if not rest.startswith("/"):
        return scheme != ""  # an opaque URI, or "invalid URI for request"
    if scheme and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        if not _valid_authority(authority):
            return False
        rest = slash + path
    return _valid_escapes(rest, "path")


# --- email (net/mail.ParseAddress) --------------------------------------------------------
_SPECIALS: Final = frozenset('()<>[]:;@\\,"')


def _is_atext(char: str, dot: bool) -> bool:
    if char == ".":
        return dot
    return char not in _SPECIALS and ("!" <= char <= "~" or ord(char) >= 0x80)


class _MailParser:
    """The part of ``net/mail``'s ``addrParser`` one address needs."""

    def __init__(self, text: str) -> None:
        self.s = text

    def skip_space(self) -> None:
        self.s = self.s.lstrip(" \t")

    def skip_cfws(self) -> bool:
        self.skip_space()
        while self.s.startswith("("):
            depth, index = 0, 0
            while index < len(self.s):
                if self.s[index] == "\\":
                    index += 1
                elif self.s[index] == "(":
                    depth += 1
                elif self.s[index] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                index += 1
            if depth:
                return False
            self.s = self.s[index + 1:]
            self.skip_space()
        return True

    def atom(self, dot: bool, permissive: bool) -> str | None:
        length = 0
        while length < len(self.s) and _is_atext(self.s[length], dot):
            length += 1
        if length == 0:
            return None
        atom, self.s = self.s[:length], self.s[length:]
        if not permissive and (atom.startswith(".") or ".." in atom or atom.endswith(".")):
            return None
        return atom

    def quoted_string(self) -> str | None:
        index, out = 1, list[str]()
        while index < len(self.s):
            char = self.s[index]
            if char == '"':
                self.s = self.s[index + 1:]
                return "".join(out)
            if char == "\\":
                index += 1
                if index >= len(self.s):
                    return None
                char = self.s[index]
            elif not (char in " \t" or "!" <= char <= "~" or ord(char) >= 0x80):
                return None
            out.append(char)
            index += 1
        return None

    def addr_spec(self) -> bool:
        saved = self.s
        self.skip_space()
        if self.s.startswith('"'):
            local = self.quoted_string()
            ok = bool(local)
        else:
            ok = self.atom(dot=True, permissive=False) is not None
        if ok and self.s.startswith("@"):
            self.s = self.s[1:]
            self.skip_space()
            if self.s.startswith("["):
                # A domain literal: dtext only, and (since Go 1.21) an IP address.
                close = self.s.find("]")
                literal = self.s[1:close]
                ok = close > 0 and all("!" <= c <= "Z" or "^" <= c <= "~" or ord(c) >= 0x80
                                       for c in literal) and parse_ip_strict(literal)
                self.s = self.s[close + 1:] if ok else self.s
            else:
                ok = self.atom(dot=True, permissive=False) is not None
        else:
            ok = False
        if not ok:
            self.s = saved
        return ok

    def phrase(self) -> bool:
        """``consumePhrase``: words until one fails; an error counts only with no word."""
        words = 0
        while True:
            self.skip_space()
            if not self.s:
                return words > 0
            word = (self.quoted_string() if self.s.startswith('"')
                    else self.atom(dot=True, permissive=True))
            if word is None:
                return words > 0
            words += 1


def is_email(text: str) -> bool:
    """``net/mail.ParseAddress`` succeeds with a non-empty address."""
    parser = _MailParser(text)
    parser.skip_space()
    if not parser.s:
        return False
    if not parser.addr_spec():
        if not parser.s.startswith("<") and not parser.phrase():
            return False
        parser.skip_space()
        if not parser.s.startswith("<"):
            return False
        parser.s = parser.s[1:]
        if not parser.addr_spec() or not parser.s.startswith(">"):
            return False
        parser.s = parser.s[1:]
    return parser.skip_cfws() and parser.s == ""


# --- the rest of the registry -------------------------------------------------------------
def _hostname_char(char: str, dash: bool = False, digits: bool = True) -> bool:
    """One character of ``HostnamePattern``'s classes: ASCII letters and digits, \\p{L}, \\p{S}."""
    if char.isascii():
        return char.isalpha() or (digits and char.isdigit()) or (dash and char == "-")
    category = unicodedata.category(char)
    return category.startswith("L") or (digits and category.startswith("S"))


def _hostname_pattern(text: str) -> bool:
    """``strfmt.HostnamePattern``, matched by hand (RE2's DFA outgrows its memory on it).

    Either one label (a character, an optional dash, up to 62 more), or one or more
    labels of 1 to 63 characters (inner dashes only) each followed by a dot, then a
    top-level domain of 2 to 63 letters.
    """
    if not text:
        return False
    if "." not in text:
        rest = text[1:]
        rest = rest[1:] if rest.startswith("-") else rest
        return _hostname_char(text[0]) and len(rest) <= 62 and all(map(_hostname_char, rest))
    *labels, top = text.split(".")
    return 2 <= len(top) <= 63 and all(_hostname_char(c, digits=False) for c in top) and all(
        1 <= len(label) <= 63 and _hostname_char(label[0]) and _hostname_char(label[-1])
        and all(_hostname_char(c, dash=True) for c in label) for label in labels)


def is_hostname(text: str) -> bool:
    """``strfmt.IsHostname``."""
    return (_hostname_pattern(text) and len(text.encode()) <= 255
            and all(len(part.encode()) <= 63 for part in text.split(".")))


def _isbn10(text: str) -> bool:
    digits = go_regexp(r"[\s-]+").sub("", text)
    if go_regexp(r"^(?:[0-9]{9}X|[0-9]{10})$").search(digits) is None:
        return False
    total = sum((i + 1) * int(digits[i]) for i in range(9))
    total += 100 if digits[9] == "X" else 10 * int(digits[9])
    return total % 11 == 0


def _isbn13(text: str) -> bool:
    digits = go_regexp(r"[\s-]+").sub("", text)
    if go_regexp(r"^(?:[0-9]{13})$").search(digits) is None:
        return False
    total = sum((1, 3)[i % 2] * int(digits[i]) for i in range(12))
    return int(digits[12]) - (10 - total % 10) % 10 == 0


_CREDIT_CARD: Final = (r"^(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|6(?:011|5[0-9][0-9])[0-9]{12}"
                       r"|3[47][0-9]{13}|3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35\d{3})"
                       r"\d{11})$")


def is_credit_card(text: str) -> bool:
    """``govalidator.IsCreditCard``: the issuer patterns and the Luhn checksum."""
    digits = go_regexp("[^0-9]+").sub("", text)
    if not go_regexp_matches(_CREDIT_CARD, digits):
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value >= 10 else value
    return total % 10 == 0


def _is_base64(text: str) -> bool:
    pattern = (r"^(?:[A-Za-z0-9+\/]{4})*(?:[A-Za-z0-9+\/]{2}==|[A-Za-z0-9+\/]{3}=|"
               r"[A-Za-z0-9+\/]{4})$")
    return go_regexp_matches(pattern, text)


def _is_bson_object_id(text: str) -> bool:
    if len(text) != 24:
        return False
    try:
        binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        return False
    return True


_UUID: Final = r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?%s[0-9a-f]{3}-?%s[0-9a-f]{3}-?[0-9a-f]{12}$"

_CHECKS: Final[dict[str, Callable[[str], bool]]] = {
    "bsonobjectid": _is_bson_object_id,
    "uri": is_request_uri,
    "email": is_email,
    "hostname": is_hostname,
    "ipv4": is_ipv4,
    "ipv6": is_ipv6,
    "cidr": is_cidr,
    "mac": is_mac,
    "uuid": lambda s: go_regexp_matches(_UUID % ("[0-9a-f]", "[0-9a-f]"), s),
    "uuid3": lambda s: go_regexp_matches(_UUID % ("3", "[0-9a-f]"), s),
    "uuid4": lambda s: go_regexp_matches(_UUID % ("4", "[89ab]"), s),
    "uuid5": lambda s: go_regexp_matches(_UUID % ("5", "[89ab]"), s),
    "isbn": lambda s: _isbn10(s) or _isbn13(s),
    "isbn10": _isbn10,
    "isbn13": _isbn13,
    "creditcard": is_credit_card,
    "ssn": lambda s: go_regexp_matches(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$", s),
    "hexcolor": lambda s: go_regexp_matches(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$", s),
    "rgbcolor": lambda s: go_regexp_matches(
        r"^rgb\(\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])"
        r"\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*\)$", s),
    "byte": _is_base64,
    "password": lambda _s: True,
    "date": is_date,
    "duration": is_duration,
    "datetime": is_date_time,
}


def validates(schema_format: str, text: str) -> bool:
    """Whether ``text`` is valid in the (supported) format ``schema_format``."""
    if len(text) <= MEMO_MAX_TEXT:
        return _remembered_validates(schema_format, text)
    return _CHECKS[normalize(schema_format)](text)


@functools.lru_cache(maxsize=_MEMO_ENTRIES)
def _remembered_validates(schema_format: str, text: str) -> bool:
    return _CHECKS[normalize(schema_format)](text)


__all__ = [
    "SUPPORTED_FORMATS",
    "RegexError",
    "effective_format",
    "go_regexp",
    "go_regexp_matches",
    "is_cidr",
    "is_credit_card",
    "is_date",
    "is_date_time",
    "is_duration",
    "is_email",
    "is_go_duration",
    "is_hostname",
    "is_ipv4",
    "is_ipv6",
    "is_mac",
    "is_request_uri",
    "normalize",
    "parse_ip_sloppy",
    "parse_ip_strict",
    "validates",
]
