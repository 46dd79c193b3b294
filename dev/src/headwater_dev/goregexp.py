"""Which regular expressions Go's ``regexp.Compile`` refuses, with Go's error text.

Kubernetes compiles a CRD schema's ``pattern`` with Go's RE2 dialect and refuses the CRD
when it does not parse ("must be a valid regular expression, but isn't: error parsing
regexp: missing argument to repetition operator: `+`"). Python's ``re`` accepts things
RE2 refuses (lookarounds, backreferences, possessive quantifiers) and words its errors
differently, so this module reproduces the parser's *error decisions* of Go 1.23's
``regexp/syntax`` (``parse``, ``parsePerlFlags``, ``parseRepeat``, ``repeat`` with
``repeatIsValid``, ``parseRightParen``, ``parseClass``, ``parseClassChar``,
``parseNamedClass``, ``parseUnicodeClass``, ``parseEscape``), the parser Kubernetes 1.32
is built with, in the ``syntax.Perl`` mode ``regexp.Compile`` uses. It builds only the
shape of the parse tree the decisions need (what is on the stack; repeat counts).

Not reproduced: the size and nesting limits (``expression too large``, ``expression nests
too deeply``) that only patterns of megabytes reach, and invalid UTF-8 (a decoded JSON
string is always valid).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

_MAX_REPEAT: Final = 1000
_PERL_CLASSES: Final = frozenset({r"\d", r"\D", r"\s", r"\S", r"\w", r"\W"})
_POSIX_CLASSES: Final = frozenset(
    f"[:{neg}{name}:]" for neg in ("", "^") for name in (
        "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print",
        "punct", "space", "upper", "word", "xdigit"))
# Go 1.23 unicode.Categories and unicode.Scripts (Unicode 15.0.0): the names \p{…} knows.
_CATEGORIES: Final = frozenset({
    "C", "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn",
    "N", "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk",
    "Sm", "So", "Z", "Zl", "Zp", "Zs"
})
_SCRIPTS: Final = frozenset({
    "Adlam", "Ahom", "Anatolian_Hieroglyphs", "Arabic", "Armenian", "Avestan", "Balinese",
    "Bamum", "Bassa_Vah", "Batak", "Bengali", "Bhaiksuki", "Bopomofo", "Brahmi", "Braille",
    "Buginese", "Buhid", "Canadian_Aboriginal", "Carian", "Caucasian_Albanian", "Chakma",
    "Cham", "Cherokee", "Chorasmian", "Common", "Coptic", "Cuneiform", "Cypriot",
    "Cypro_Minoan", "Cyrillic", "Deseret", "Devanagari", "Dives_Akuru", "Dogra", "Duployan",
    "Egyptian_Hieroglyphs", "Elbasan", "Elymaic", "Ethiopic", "Georgian", "Glagolitic",
    "Gothic", "Grantha", "Greek", "Gujarati", "Gunjala_Gondi", "Gurmukhi", "Han", "Hangul",
    "Hanifi_Rohingya", "Hanunoo", "Hatran", "Hebrew", "Hiragana", "Imperial_Aramaic",
    "Inherited", "Inscriptional_Pahlavi", "Inscriptional_Parthian", "Javanese", "Kaithi",
    "Kannada", "Katakana", "Kawi", "Kayah_Li", "Kharoshthi", "Khitan_Small_Script", "Khmer",
    "Khojki", "Khudawadi", "Lao", "Latin", "Lepcha", "Limbu", "Linear_A", "Linear_B", "Lisu",
    "Lycian", "Lydian", "Mahajani", "Makasar", "Malayalam", "Mandaic", "Manichaean",
    "Marchen", "Masaram_Gondi", "Medefaidrin", "Meetei_Mayek", "Mende_Kikakui",
    "Meroitic_Cursive", "Meroitic_Hieroglyphs", "Miao", "Modi", "Mongolian", "Mro", "Multani",
    "Myanmar", "Nabataean", "Nag_Mundari", "Nandinagari", "New_Tai_Lue", "Newa", "Nko",
    "Nushu", "Nyiakeng_Puachue_Hmong", "Ogham", "Ol_Chiki", "Old_Hungarian", "Old_Italic",
    "Old_North_Arabian", "Old_Permic", "Old_Persian", "Old_Sogdian", "Old_South_Arabian",
    "Old_Turkic", "Old_Uyghur", "Oriya", "Osage", "Osmanya", "Pahawh_Hmong", "Palmyrene",
    "Pau_Cin_Hau", "Phags_Pa", "Phoenician", "Psalter_Pahlavi", "Rejang", "Runic",
    "Samaritan", "Saurashtra", "Sharada", "Shavian", "Siddham", "SignWriting", "Sinhala",
    "Sogdian", "Sora_Sompeng", "Soyombo", "Sundanese", "Syloti_Nagri", "Syriac", "Tagalog",
    "Tagbanwa", "Tai_Le", "Tai_Tham", "Tai_Viet", "Takri", "Tamil", "Tangsa", "Tangut",
    "Telugu", "Thaana", "Thai", "Tibetan", "Tifinagh", "Tirhuta", "Toto", "Ugaritic", "Vai",
    "Vithkuqi", "Wancho", "Warang_Citi", "Yezidi", "Yi", "Zanabazar_Square"
})


class RegexpError(Exception):
    """``syntax.Error``: ``error parsing regexp: <code>: `<expr>```."""

    def __init__(self, code: str, expr: str) -> None:
        super().__init__(f"error parsing regexp: {code}: `{expr}`")


@dataclass
class _Node:
    """A parse-stack entry: an expression, or the pseudo-operators ``(`` and ``|``."""

    op: str  # "(", "|", "repeat", "other"
    minimum: int = 0
    maximum: int = 0
    subs: list[_Node] = field(default_factory=list)

    @property
    def pseudo(self) -> bool:
        return self.op in ("(", "|")


def compile_error(pattern: str) -> str | None:
    """The error ``regexp.Compile(pattern)`` returns, or None when Go accepts it."""
    try:
        _Parser(pattern).parse()
    except RegexpError as error:
        return str(error)
    return None


class _Parser:
    def __init__(self, whole: str) -> None:
        self.whole = whole
        self.stack: list[_Node] = []

    def parse(self) -> None:
        t = self.whole
        last_repeat = ""
        while t:
            t, repeat = self._step(t, last_repeat)
            last_repeat = repeat
        self._finish_group()
        if len(self.stack) != 1:
            raise RegexpError("missing closing )", self.whole)

    def _step(self, t: str, last_repeat: str) -> tuple[str, str]:
        """Parse one token at the start of ``t``: (the rest, the repeat operator text)."""
        char = t[0]
        if char == "(":
            return self._open(t), ""
        if char == "|":
            self._vertical_bar()
            return t[1:], ""
        if char == ")":
            self._right_paren()
            return t[1:], ""
        if char == "[":
            return self._class(t), ""
        if char in "*+?":
            return self._repeat(t, t[1:], 0, 0, "star", last_repeat), t
        if char == "{":
            parsed = _parse_repeat(t)
            if parsed is None:
                self._push_other()
                return t[1:], ""
            low, high, after = parsed
            if low < 0 or low > _MAX_REPEAT or high > _MAX_REPEAT or 0 <= high < low:
                raise RegexpError("invalid repeat count", t[:len(t) - len(after)])
            return self._repeat(t, after, low, high, "repeat", last_repeat), t
        if char == "\\":
            return self._backslash(t), ""
        self._push_other()
        return t[1:], ""

    # --- stack operations (parser.push/concat/alternate/swapVerticalBar) --------------
    def _push_other(self) -> None:
        self.stack.append(_Node("other"))

    def _collapse_down_to_pseudo(self, op: str) -> None:
        i = len(self.stack)
        while i > 0 and not self.stack[i - 1].pseudo:
            i -= 1
        subs = self.stack[i:]
        del self.stack[i:]
        self.stack.append(_Node(op, subs=subs))

    def _swap_vertical_bar(self) -> bool:
        if len(self.stack) >= 2 and self.stack[-2].op == "|":
            self.stack[-2], self.stack[-1] = self.stack[-1], self.stack[-2]
            return True
        return False

    def _vertical_bar(self) -> None:
        self._collapse_down_to_pseudo("other")
        if not self._swap_vertical_bar():
            self.stack.append(_Node("|"))

    def _finish_group(self) -> None:
        self._collapse_down_to_pseudo("other")
        if self._swap_vertical_bar():
            self.stack.pop()
        # alternate(): everything down to the "(" becomes one alternation.
        self._collapse_down_to_pseudo("other")

    def _right_paren(self) -> None:
        self._finish_group()
        if len(self.stack) < 2 or self.stack[-2].op != "(":
            raise RegexpError("unexpected )", self.whole)
        inner = self.stack.pop()
        self.stack.pop()
        self.stack.append(_Node("other", subs=[inner]))

    def _repeat(self, before: str, after: str, low: int, high: int,  # noqa: PLR0917
                op: str, last_repeat: str) -> str:
        if after.startswith("?"):
            after = after[1:]
        if last_repeat:
            raise RegexpError("invalid nested repetition operator",
                              last_repeat[:len(last_repeat) - len(after)])
        operator = before[:len(before) - len(after)]
        if not self.stack or self.stack[-1].pseudo:
            raise RegexpError("missing argument to repetition operator", operator)
        node = _Node(op, low, high, [self.stack[-1]])
        self.stack[-1] = node
        if op == "repeat" and (low >= 2 or high >= 2) and not _repeat_is_valid(node, 1000):
            raise RegexpError("invalid repeat count", operator)
        return after

    # --- groups and flags (parsePerlFlags) --------------------------------------------
    def _open(self, s: str) -> str:
        if not s.startswith("(?"):
            self.stack.append(_Node("("))
            return s[1:]
        if (len(s) > 4 and s[2:4] == "P<") or (len(s) > 3 and s[2] == "<"):
            return self._named_capture(s, 4 if s[2] == "P" else 3)
        return self._flags(s)

    def _named_capture(self, s: str, name_start: int) -> str:
        end = s.find(">")
        if end < 0:
            raise RegexpError("invalid named capture", s)
        name = s[name_start:end]
        if not name or not all(c == "_" or _isalnum(c) for c in name):
            raise RegexpError("invalid named capture", s[:end + 1])
        self.stack.append(_Node("("))
        return s[end + 1:]

    def _flags(self, s: str) -> str:
        t = s[2:]
        sign, saw_flag = 1, False
        while t:
            c, t = t[0], t[1:]
            if c in "imsU":
                saw_flag = True
            elif c == "-":
                if sign < 0:
                    break
                sign, saw_flag = -1, False
            elif c in ":)":
                if sign < 0 and not saw_flag:
                    break
                if c == ":":
                    self.stack.append(_Node("("))
                return t
            else:
                break
        raise RegexpError("invalid or unsupported Perl syntax", s[:len(s) - len(t)])

    # --- escapes -----------------------------------------------------------------------
    def _backslash(self, t: str) -> str:
        if len(t) >= 2:
            if t[1] in "AbBz":
                self._push_other()
                return t[2:]
            if t[1] == "C":
                raise RegexpError("invalid escape sequence", t[:2])
            if t[1] == "Q":
                literal, _, rest = t[2:].partition("\\E")
                self.stack.extend(_Node("other") for _ in literal)
                return rest
            if t[1] in "pP":
                rest = _unicode_class(t)
                self._push_other()
                return rest
            if t[:2] in _PERL_CLASSES:
                self._push_other()
                return t[2:]
        rest = _escape(t)
        self._push_other()
        return rest

    # --- character classes (parseClass) ------------------------------------------------
    def _class(self, s: str) -> str:
        t = s[1:]
        if t.startswith("^"):
            t = t[1:]
        first = True
        while not t or t[0] != "]" or first:
            first = False
            if len(t) > 2 and t.startswith("[:"):
                rest = _named_class(t)
                if rest is not None:
                    t = rest
                    continue
            if t[:2] in (r"\p", r"\P"):
                t = _unicode_class(t)
                continue
            if t[:2] in _PERL_CLASSES:
                t = t[2:]
                continue
            t = self._class_range(t, s)
        self._push_other()
        return t[1:]

    def _class_range(self, t: str, whole_class: str) -> str:
        start = t
        low, t = _class_char(t, whole_class)
        if len(t) >= 2 and t[0] == "-" and t[1] != "]":
            high, t = _class_char(t[1:], whole_class)
            if high < low:
                raise RegexpError("invalid character class range", start[:len(start) - len(t)])
        return t


def _class_char(s: str, whole_class: str) -> tuple[int, str]:
    """``parseClassChar``: one (possibly escaped) character of a class, as a code point."""
    if not s:
        raise RegexpError("missing closing ]", whole_class)
    if s[0] == "\\":
        return _escape_value(s)
    return ord(s[0]), s[1:]


def _named_class(t: str) -> str | None:
    """``parseNamedClass``: the rest after ``[:name:]``, or None when ``t`` is not one."""
    end = t.find(":]", 2)
    if end < 0:
        return None
    name = t[:end + 2]
    if name not in _POSIX_CLASSES:
        raise RegexpError("invalid character class range", name)
    return t[end + 2:]


def _unicode_class(s: str) -> str:
    """``parseUnicodeClass`` for ``\\p``/``\\P`` at the start of ``s``: the rest."""
    t = s[2:]
    if not t.startswith("{"):
        sequence = s[:3] if t else s[:2]
        name, rest = sequence[2:], s[len(sequence):]
    else:
        end = s.find("}")
        if end < 0:
            raise RegexpError("invalid character class range", s)
        sequence, rest, name = s[:end + 1], s[end + 1:], s[3:end]
    if name.startswith("^"):
        name = name[1:]
    if name != "Any" and name not in _CATEGORIES and name not in _SCRIPTS:
        raise RegexpError("invalid character class range", sequence)
    return rest


def _escape(s: str) -> str:
    return _escape_value(s)[1]


def _escape_value(s: str) -> tuple[int, str]:
    """``parseEscape``: the escaped code point and the rest, or Go's error."""
    t = s[1:]
    if not t:
        raise RegexpError("trailing backslash at end of expression", "")
    c, t = t[0], t[1:]
    if c < "\x80" and not _isalnum(c):
        return ord(c), t
    if c in "1234567" and (not t or not "0" <= t[0] <= "7"):
        raise RegexpError("invalid escape sequence", s[:len(s) - len(t)])
    if c in "01234567":
        value = int(c)
        for _ in range(2):
            if not t or not "0" <= t[0] <= "7":
                break
            value, t = value * 8 + int(t[0]), t[1:]
        return value, t
    if c == "x":
        return _hex_escape(s, t)
    simple = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
    if c in simple:
        return simple[c], t
    raise RegexpError("invalid escape sequence", s[:len(s) - len(t)])


def _hex_escape(s: str, t: str) -> tuple[int, str]:
    def fail(rest: str) -> RegexpError:
        return RegexpError("invalid escape sequence", s[:len(s) - len(rest)])

    if not t:
        raise fail(t)
    c, t = t[0], t[1:]
    if c != "{":
        if not t:
            raise fail(t)
        d, t = t[0], t[1:]
        if _unhex(c) < 0 or _unhex(d) < 0:
            raise fail(t)
        return _unhex(c) * 16 + _unhex(d), t
    value, digits = 0, 0
    while True:
        if not t:
            raise fail(t)
        c, t = t[0], t[1:]
        if c == "}":
            break
        if _unhex(c) < 0:
            raise fail(t)
        value = value * 16 + _unhex(c)
        if value > 0x10FFFF:
            raise fail(t)
        digits += 1
    if digits == 0:
        raise fail(t)
    return value, t


def _parse_repeat(s: str) -> tuple[int, int, str] | None:
    """``parseRepeat``: ``{n}``, ``{n,}`` or ``{n,m}`` (min, max (-1: none), rest)."""
    low_parsed = _parse_int(s[1:])
    if low_parsed is None:
        return None
    low, s = low_parsed
    if not s:
        return None
    if s[0] != ",":
        high = low
    else:
        s = s[1:]
        if not s:
            return None
        if s[0] == "}":
            high = -1
        else:
            high_parsed = _parse_int(s)
            if high_parsed is None:
                return None
            high, s = high_parsed
            if high < 0:
                low = -1
    if not s or s[0] != "}":
        return None
    return low, high, s[1:]


def _parse_int(s: str) -> tuple[int, str] | None:
    if not s or not "0" <= s[0] <= "9":
        return None
    if len(s) >= 2 and s[0] == "0" and "0" <= s[1] <= "9":
        return None
    digits = len(s) - len(s.lstrip("0123456789"))
    value = 0
    for char in s[:digits]:
        if value >= 100_000_000:
            value = -1
            break
        value = value * 10 + int(char)
    return value, s[digits:]


def _repeat_is_valid(node: _Node, n: int) -> bool:
    if node.op == "repeat":
        m = node.maximum
        if m == 0:
            return True
        if m < 0:
            m = node.minimum
        if m > n:
            return False
        if m > 0:
            n //= m
    return all(_repeat_is_valid(sub, n) for sub in node.subs)


def _isalnum(c: str) -> bool:
    return "0" <= c <= "9" or "A" <= c <= "Z" or "a" <= c <= "z"


def _unhex(c: str) -> int:
    if "0" <= c <= "9":
        return ord(c) - ord("0")
    if "a" <= c <= "f":
        return ord(c) - ord("a") + 10
    if "A" <= c <= "F":
        return ord(c) - ord("A") + 10
    return -1


__all__ = ["RegexpError", "compile_error"]
